#!/usr/bin/env bash
# Go worker vs Python Celery worker, side by side on the same Redis with the
# same concurrency (`make bench`; docs/bench.md explains the method).
#
# For each worker configuration — Go (omics-worker worker), Python prefork
# (Omicsomics config) without and with worker_max_tasks_per_child=50 — it
# measures:
#   startup   exec of the worker -> SUCCESS of a noop enqueued before it started
#   idle RSS  RSS and PSS summed over the process tree, 1 s after that answer
#   tasks/s   diag.noop and diag.progress(steps=5) bursts fed by `omics-worker
#             loadgen` (first enqueue -> last SUCCESS), with peak RSS and Redis
#             round trips per task (INFO total_reads_processed delta)
#   latency   p50/p99 enqueue -> SUCCESS at a fixed rate (LAT_RATE tasks/s),
#             below every worker's capacity, so it measures service time and
#             not queueing
# and prints a table with the Go/Python ratios; results go to
# bench-results/bench-<time>.json.
#
# RabbitMQ column: when RabbitMQ answers on 127.0.0.1:5672 (and rabbitmqctl
# is there), the Go and the Python worker run again with an amqp:// broker
# in a private vhost (created and deleted here; results still in the
# private Redis), same -c and prefetch multiplier, kinds "go-amqp" and
# "py-amqp"; loadgen publishes over AMQP (persistent, publisher confirms).
# Redis round trips do not apply there; worker CPU per task does.
#
# Environment (defaults in brackets):
#   BIN [bin/omics-worker]   the binary (built if missing)
#   BENCH_C [2]              concurrency of every worker
#   GO_N [30000] GO_N_PROGRESS [10000]  burst sizes for the Go worker
#   PY_N [3000]              burst size for the Python worker
#   PY_N_RECYCLE [1500]      burst size for Python with max_tasks_per_child=50
#   LAT_N [500] LAT_RATE [100]  rated latency runs
#   BENCH_REDIS_URL          use this Redis instead of a private redis-server
#                            (round-trip counts then include other clients)
#   GO_AMQP_N [10000] GO_AMQP_N_PROGRESS [5000]  Go bursts on RabbitMQ
#   PY_AMQP_N [3000]         Python bursts on RabbitMQ
#   BENCH_AMQP [auto]        "0" skips the RabbitMQ column, "1" requires it
#   BENCH_ONLY               "go", "py", "py50", "go-amqp" or "py-amqp" to
#                            run one configuration
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-bin/omics-worker}
C=${BENCH_C:-2}
GO_N=${GO_N:-30000}
GO_N_PROGRESS=${GO_N_PROGRESS:-10000}
PY_N=${PY_N:-3000}
PY_N_RECYCLE=${PY_N_RECYCLE:-1500}
LAT_N=${LAT_N:-500}
LAT_RATE=${LAT_RATE:-100}
GO_AMQP_N=${GO_AMQP_N:-10000}
GO_AMQP_N_PROGRESS=${GO_AMQP_N_PROGRESS:-5000}
PY_AMQP_N=${PY_AMQP_N:-3000}
PY=/usr/bin/python3

if [[ ! -x $BIN ]]; then
	echo "bench: building $BIN" >&2
	CGO_ENABLED=0 go build -trimpath -o "$BIN" ./cmd/omics-worker
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
if ! $PY -c 'import celery, redis' 2>/dev/null; then
	echo "bench: $PY cannot import celery/redis (apt-get install python3-celery python3-redis)" >&2
	exit 1
fi

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench-results
RUNS=$OUT/runs-$STAMP
mkdir -p "$RUNS"
TMP=$(mktemp -d /tmp/omics-bench.XXXXXX)

PIDS=()
VHOST=
cleanup() {
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	[[ -n $VHOST ]] && rabbitmqctl delete_vhost "$VHOST" >/dev/null 2>&1
	rm -rf "$TMP"
}
trap cleanup EXIT

# --- Redis: a private server on a free loopback port (isolated counters) ---
if [[ -n ${BENCH_REDIS_URL:-} ]]; then
	URL=$BENCH_REDIS_URL
	echo "bench: using $URL (shared: round-trip counts include other clients)" >&2
else
	command -v redis-server >/dev/null || {
		echo "bench: redis-server not found; set BENCH_REDIS_URL=redis://127.0.0.1:6379/13" >&2
		exit 1
	}
	PORT=
	for p in $(seq 16390 16490); do
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
			PORT=$p
			break
		fi
	done
	[[ -n $PORT ]] || { echo "bench: no free port in 16390-16490" >&2; exit 1; }
	redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
		--dir "$TMP" --logfile "$TMP/redis.log" --databases 16 &
	REDIS_PID=$!
	PIDS+=("$REDIS_PID")
	for _ in $(seq 50); do
		redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
		sleep 0.1
	done
	URL=redis://127.0.0.1:$PORT/13
	echo "bench: private redis-server pid $REDIS_PID on port $PORT" >&2
fi

# --- RabbitMQ: a private vhost on the machine's server (the column is
# skipped when it is not running, unless BENCH_AMQP=1) ---
AMQP_URL=
if [[ ${BENCH_AMQP:-auto} != 0 ]]; then
	if command -v rabbitmqctl >/dev/null && (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null \
		&& $PY -c 'import amqp' 2>/dev/null; then
		VHOST=omics-bench-$$
		rabbitmqctl add_vhost "$VHOST" >/dev/null
		rabbitmqctl set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null
		AMQP_URL=amqp://guest:guest@127.0.0.1:5672/$VHOST
		echo "bench: RabbitMQ vhost $VHOST" >&2
	elif [[ ${BENCH_AMQP:-auto} == 1 ]]; then
		echo "bench: BENCH_AMQP=1 but RabbitMQ (127.0.0.1:5672, rabbitmqctl, python3-amqp) is not available" >&2
		exit 1
	else
		echo "bench: RabbitMQ not available; skipping the RabbitMQ column" >&2
	fi
fi

# BURL is the broker URL of the configuration being measured (the Redis
# URL, or AMQP_URL for the *-amqp kinds); RSTATS its loadgen flag for
# Redis counters (none on RabbitMQ).
BURL=$URL
RSTATS=--redis-stats
lg() { "$BIN" loadgen -b "$BURL" --backend "$URL" "$@"; }

# tree_pids PID: PID and its descendants.
tree_pids() {
	local p=$1 c
	echo "$p"
	for c in $(pgrep -P "$p" 2>/dev/null); do
		tree_pids "$c"
	done
}

# tree_mem PID: "rss_kib pss_kib" summed over the tree (smaps_rollup).
tree_mem() {
	local rss=0 pss=0 p r s
	for p in $(tree_pids "$1"); do
		r=$(awk '/^Rss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
		s=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
		rss=$((rss + ${r:-0}))
		pss=$((pss + ${s:-0}))
	done
	echo "$rss $pss"
}

now_ns() { date +%s%N; }

WPID=
# start_worker KIND QUEUE [EXTRA FLAGS...]: starts the worker in the
# background, sets WPID.
start_worker() {
	local kind=$1 q=$2
	shift 2
	case $kind in
	go | go-amqp)
		"$BIN" worker --diagnostic-tasks -Q "$q" -c "$C" --prefetch-multiplier 1 \
			--time-limit 3600 --soft-time-limit 3300 \
			-b "$BURL" --result-backend "$URL" -l warning "$@" >"$TMP/$kind.log" 2>&1 &
		;;
	py | py50 | py-amqp)
		local mtpc=
		[[ $kind == py50 ]] && mtpc=50
		(
			cd "$ROOT/testdata/interop/bench"
			export CELERY_BROKER_URL=$BURL CELERY_RESULT_BACKEND=$URL OMICS_TEST_QUEUE=$q \
				OMICS_TEST_MAX_TASKS_PER_CHILD=$mtpc PYTHONPATH=.. PYTHONDONTWRITEBYTECODE=1
			exec $PY -m celery -A bench_app worker -c "$C" --prefetch-multiplier 1 -Q "$q" \
				-l warning -n "bench-$kind@%h" "$@"
		) >"$TMP/$kind.log" 2>&1 &
		;;
	esac
	WPID=$!
	PIDS+=("$WPID")
}

stop_worker() {
	kill -TERM "$WPID" 2>/dev/null || true
	wait "$WPID" 2>/dev/null || true
}

# startup_run KIND QUEUE NAME [FLAGS...]: enqueue one noop, start the
# worker, set STARTUP_MS to the ms from exec to its SUCCESS; the worker
# keeps running (WPID).
startup_run() {
	local kind=$1 q=$2 name=$3
	shift 3
	rm -f "$TMP/ready"
	lg -Q "$q" -n 1 --ready-file "$TMP/ready" --timeout 60s --label "$kind $name" \
		>"$RUNS/$kind-$name.txt" &
	local lgpid=$!
	for _ in $(seq 300); do [[ -e $TMP/ready ]] && break; sleep 0.01; done
	local t0 last
	t0=$(now_ns)
	start_worker "$kind" "$q" "$@"
	if ! wait "$lgpid"; then
		echo "bench: $kind did not answer the startup task; log:" >&2
		cat "$TMP/$kind.log" >&2
		exit 1
	fi
	last=$(tail -1 "$RUNS/$kind-$name.txt" | jq .last_result_unix_ns)
	STARTUP_MS=$(awk -v ns="$((last - t0))" 'BEGIN{printf "%.1f", ns/1e6}')
}

# bench_worker KIND NOOP_N PROGRESS_N
bench_worker() {
	local kind=$1 nn=$2 np=$3 q
	BURL=$URL RSTATS=--redis-stats
	if [[ $kind == *-amqp ]]; then
		BURL=$AMQP_URL RSTATS=
	fi
	q=bench_${kind}_$$_$(date +%s)
	echo "== $kind: queue $q" >&2

	# Startup: the task waits in the queue before the worker exists. Once
	# with --without-mingle (no 1 s neighbour discovery before consuming),
	# then with the defaults (mingle on, as `celery worker`); that worker
	# stays up for the rest.
	local startup_nomingle_ms startup_ms
	startup_run "$kind" "$q" nomingle --without-mingle
	startup_nomingle_ms=$STARTUP_MS
	stop_worker
	startup_run "$kind" "$q" startup
	startup_ms=$STARTUP_MS
	sleep 1
	local mem
	mem=$(tree_mem "$WPID")
	echo "{\"kind\":\"$kind\",\"startup_ms\":$startup_ms,\"startup_without_mingle_ms\":$startup_nomingle_ms,\"idle_rss_kib\":${mem% *},\"idle_pss_kib\":${mem#* },\"procs\":$(tree_pids "$WPID" | wc -l)}" \
		>"$RUNS/$kind-idle.json"
	echo "   startup ${startup_ms} ms (${startup_nomingle_ms} ms without mingle), idle RSS/PSS ${mem% *}/${mem#* } KiB" >&2

	# Warm-up (imports, connections, JIT-free but caches).
	lg -Q "$q" -n 200 --label "$kind warmup" >/dev/null

	# Throughput bursts.
	lg -Q "$q" -n "$nn" --pid "$WPID" $RSTATS --label "$kind noop" | tee "$RUNS/$kind-noop.txt" | sed -n 2p >&2
	lg -Q "$q" -n "$np" --task diag.progress --kwargs '{"steps": 5}' --pid "$WPID" $RSTATS \
		--label "$kind progress" | tee "$RUNS/$kind-progress.txt" | sed -n 2p >&2
	# Latency at a fixed rate.
	lg -Q "$q" -n "$LAT_N" --rate "$LAT_RATE" --pid "$WPID" --label "$kind noop@rate" \
		| tee "$RUNS/$kind-noop-rate.txt" | sed -n 3p >&2
	lg -Q "$q" -n "$LAT_N" --rate "$LAT_RATE" --task diag.progress --kwargs '{"steps": 5}' --pid "$WPID" \
		--label "$kind progress@rate" | tee "$RUNS/$kind-progress-rate.txt" | sed -n 3p >&2
	stop_worker
}

START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
ONLY=${BENCH_ONLY:-}
[[ -z $ONLY || $ONLY == go ]] && bench_worker go "$GO_N" "$GO_N_PROGRESS"
[[ -z $ONLY || $ONLY == py ]] && bench_worker py "$PY_N" "$PY_N"
[[ -z $ONLY || $ONLY == py50 ]] && bench_worker py50 "$PY_N_RECYCLE" "$PY_N_RECYCLE"
if [[ -n $AMQP_URL ]]; then
	[[ -z $ONLY || $ONLY == go-amqp ]] && bench_worker go-amqp "$GO_AMQP_N" "$GO_AMQP_N_PROGRESS"
	[[ -z $ONLY || $ONLY == py-amqp ]] && bench_worker py-amqp "$PY_AMQP_N" "$PY_AMQP_N"
fi
END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

RESULT=$OUT/bench-$STAMP.json
$PY "$ROOT/testdata/interop/bench/bench_table.py" "$RUNS" "$RESULT" \
	--concurrency "$C" --load-start "$START_LOAD" --load-end "$END_LOAD" \
	--cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" --cores "$(nproc)" \
	--redis "$(redis-server --version 2>/dev/null | awk '{print $3}')" \
	--rabbitmq "$([[ -n $AMQP_URL ]] && rabbitmqctl version 2>/dev/null)" \
	--celery "$($PY -c 'import celery; print(celery.__version__)')" \
	--go-version "$("$BIN" version 2>/dev/null | head -1)"
echo "results: $RESULT (per-run output in $RUNS)"
