#!/usr/bin/env bash
# Go worker vs Python Celery worker, side by side on the same Redis with the
# same concurrency and prefetch (`make bench`; docs/bench.md explains the
# method).
#
# Worker configurations ("kinds"), all -c BENCH_C, --prefetch-multiplier 1:
#   go          omics-worker worker --diagnostic-tasks (acks late, track_started)
#   py          Python celery 5.2 (/usr/bin/python3), prefork, Omicsomics config
#   pythreads   the same with -P threads, a "best Python configuration"
#               candidate (no IPC to pool children). With prefetch 1 celery
#               5.2's thread pool does ~2 tasks/s on Redis (celery#6941,
#               open: the consumer fetches again only at its ~1 s timer), so
#               its bursts are small (PY_THREADS_N)
#   py50        prefork with worker_max_tasks_per_child=50 (the production
#               recycling setting, a reference, not a "best" candidate)
#   py55        prefork on celery 5.5 (Debian trixie root of scripts/celery55.sh),
#               when that root exists (BENCH_PY55)
#   go-amqp, py-amqp   go and py on RabbitMQ (below)
# For each it measures:
#   startup   exec of the worker -> SUCCESS of a noop enqueued before it started
#   idle RSS  RSS and PSS summed over the process tree, 1 s after that answer
#   tasks/s   diag.noop and diag.progress(steps=5) bursts fed by `omics-worker
#             loadgen`, each twice:
#               live       loadgen publishes while the worker consumes (a
#                          producer competes for the 2 cores; first enqueue
#                          -> last SUCCESS)
#               prefilled  `loadgen --prefill`: the worker's process tree is
#                          stopped (SIGSTOP) while the whole burst is
#                          published, then continued (SIGCONT); resume ->
#                          last SUCCESS, no producer running
#             with peak RSS, worker CPU per task, and Redis round trips,
#             commands and CPU per task (INFO deltas)
#   latency   p50/p99 enqueue -> SUCCESS at a fixed rate (LAT_RATE tasks/s),
#             below every worker's capacity, so it measures service time and
#             not queueing
# and prints a table with the Go/Python ratios: against py, against the best
# Python 5.2 configuration of each row (the higher tasks/s of py and
# pythreads, per task and mode), against py50 and py55; results (and the
# table) go to bench-results/bench-<time>.json. BENCH_BASELINE=<earlier
# bench-*.json> adds the Go worker's before/after columns.
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
#   PY_N [2000]              burst size for py, pythreads and py55
#   PY_N_RECYCLE [1000]      burst size for py50
#   PY_THREADS_N [20]        burst size for pythreads
#   LAT_N [500] LAT_RATE [100]  rated latency runs (skipped for a worker
#                            whose live noop tasks/s is below 1.5 x LAT_RATE:
#                            they would measure queueing)
#   BENCH_REDIS_URL          use this Redis instead of a private redis-server
#                            (round-trip counts then include other clients)
#   GO_AMQP_N [10000] GO_AMQP_N_PROGRESS [5000]  Go bursts on RabbitMQ
#   PY_AMQP_N [2000]         Python bursts on RabbitMQ
#   BENCH_AMQP [auto]        "0" skips the RabbitMQ column, "1" requires it
#   BENCH_PY55 [auto]        "auto" runs py55 when the celery 5.5 root is
#                            built (scripts/celery55.sh ensure), "1" builds
#                            it if missing, "0" skips it
#   BENCH_ONLY               one kind (go, py, pythreads, py50, py55,
#                            go-amqp, py-amqp), or several, comma separated
#   BENCH_BASELINE           an earlier bench-results/bench-*.json: the table
#                            gets "go before" and "go after/before" columns
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-bin/omics-worker}
C=${BENCH_C:-2}
GO_N=${GO_N:-30000}
GO_N_PROGRESS=${GO_N_PROGRESS:-10000}
PY_N=${PY_N:-2000}
PY_N_RECYCLE=${PY_N_RECYCLE:-1000}
PY_THREADS_N=${PY_THREADS_N:-20}
LAT_N=${LAT_N:-500}
LAT_RATE=${LAT_RATE:-100}
GO_AMQP_N=${GO_AMQP_N:-10000}
GO_AMQP_N_PROGRESS=${GO_AMQP_N_PROGRESS:-5000}
PY_AMQP_N=${PY_AMQP_N:-2000}
PY=/usr/bin/python3
CELERY55=$ROOT/scripts/celery55.sh

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

# tree_pids PID: PID and its descendants.
tree_pids() {
	local p=$1 c
	echo "$p"
	for c in $(pgrep -P "$p" 2>/dev/null); do
		tree_pids "$c"
	done
}

PIDS=()
VHOST=
PY55_ROOT=
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		# A worker left stopped by an interrupted `loadgen --prefill`
		# would keep SIGTERM pending forever: continue it first.
		for c in $(tree_pids "$p"); do kill -CONT "$c" 2>/dev/null || true; done
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	[[ -n $VHOST ]] && rabbitmqctl delete_vhost "$VHOST" >/dev/null 2>&1
	# Only the bind of this checkout: /proc, /dev and /tmp inside the
	# celery 5.5 root may serve other users of it (tests, .ci/run unmounts).
	if [[ -n $PY55_ROOT ]] && mountpoint -q "$PY55_ROOT$ROOT"; then
		umount -l "$PY55_ROOT$ROOT" || true
	fi
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

# --- celery 5.5: the Debian trixie root of scripts/celery55.sh (kind py55),
# built here only with BENCH_PY55=1 ---
PY55=${BENCH_PY55:-auto}
if [[ $PY55 != 0 ]]; then
	if [[ $PY55 == 1 ]] && ! "$CELERY55" ensure; then
		echo "bench: BENCH_PY55=1 but scripts/celery55.sh ensure failed" >&2
		exit 1
	fi
	if [[ -f "$("$CELERY55" path)/.omics-complete" ]]; then
		PY55_ROOT=$("$CELERY55" path)
		echo "bench: celery 5.5 root $PY55_ROOT (kind py55)" >&2
	else
		PY55=0
		echo "bench: no celery 5.5 root ($("$CELERY55" path)); skipping py55 (BENCH_PY55=1 builds it, ~1 min)" >&2
	fi
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
	py | pythreads | py50 | py55 | py-amqp)
		local mtpc= pool=prefork py=$PY
		[[ $kind == py50 ]] && mtpc=50
		[[ $kind == pythreads ]] && pool=threads
		[[ $kind == py55 ]] && py="$CELERY55 python3"
		(
			cd "$ROOT/testdata/interop/bench"
			export CELERY_BROKER_URL=$BURL CELERY_RESULT_BACKEND=$URL OMICS_TEST_QUEUE=$q \
				OMICS_TEST_MAX_TASKS_PER_CHILD=$mtpc PYTHONPATH=.. PYTHONDONTWRITEBYTECODE=1
			# shellcheck disable=SC2086 # $py is a command and its argument
			exec $py -m celery -A bench_app worker -P "$pool" -c "$C" --prefetch-multiplier 1 -Q "$q" \
				-l warning -n "bench-$kind@%h" "$@"
		) >"$TMP/$kind.log" 2>&1 &
		;;
	esac
	WPID=$!
	PIDS+=("$WPID")
}

stop_worker() {
	local c
	for c in $(tree_pids "$WPID"); do kill -CONT "$c" 2>/dev/null || true; done
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

	# Warm-up (imports, connections, JIT-free but caches): 200 tasks, or
	# the burst size if smaller (pythreads).
	lg -Q "$q" -n "$((nn < 200 ? nn : 200))" --label "$kind warmup" >/dev/null

	# Throughput bursts: live (published while the worker consumes), then
	# pre-filled (the worker stopped while the burst is published).
	local mode flag sfx
	for mode in live prefill; do
		flag= sfx=
		[[ $mode == prefill ]] && flag=--prefill sfx=-prefill
		lg -Q "$q" -n "$nn" --pid "$WPID" $RSTATS $flag --label "$kind noop $mode" \
			| tee "$RUNS/$kind-noop$sfx.txt" | sed -n 2p | sed "s/^/   noop $mode: /" >&2
		lg -Q "$q" -n "$np" --task diag.progress --kwargs '{"steps": 5}' --pid "$WPID" $RSTATS $flag \
			--label "$kind progress $mode" | tee "$RUNS/$kind-progress$sfx.txt" | sed -n 2p \
			| sed "s/^/   progress $mode: /" >&2
	done
	# Latency at a fixed rate, if the worker has the capacity for it.
	local cap
	cap=$(tail -1 "$RUNS/$kind-noop.txt" | jq '.tasks_per_s | floor')
	if ((2 * cap < 3 * LAT_RATE)); then
		echo "   latency runs skipped: $cap noop/s live < 1.5 x LAT_RATE ($LAT_RATE)" >&2
		stop_worker
		return
	fi
	lg -Q "$q" -n "$LAT_N" --rate "$LAT_RATE" --pid "$WPID" --label "$kind noop@rate" \
		| tee "$RUNS/$kind-noop-rate.txt" | sed -n 3p | sed "s/^/   noop@rate: /" >&2
	lg -Q "$q" -n "$LAT_N" --rate "$LAT_RATE" --task diag.progress --kwargs '{"steps": 5}' --pid "$WPID" \
		--label "$kind progress@rate" | tee "$RUNS/$kind-progress-rate.txt" | sed -n 3p \
		| sed "s/^/   progress@rate: /" >&2
	stop_worker
}

# want KIND: whether BENCH_ONLY (comma separated) selects KIND.
want() { [[ -z ${BENCH_ONLY:-} || ,$BENCH_ONLY, == *,$1,* ]]; }

START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)
want go && bench_worker go "$GO_N" "$GO_N_PROGRESS"
want py && bench_worker py "$PY_N" "$PY_N"
want pythreads && bench_worker pythreads "$PY_THREADS_N" "$PY_THREADS_N"
want py50 && bench_worker py50 "$PY_N_RECYCLE" "$PY_N_RECYCLE"
if [[ $PY55 != 0 ]]; then
	want py55 && bench_worker py55 "$PY_N" "$PY_N"
fi
if [[ -n $AMQP_URL ]]; then
	want go-amqp && bench_worker go-amqp "$GO_AMQP_N" "$GO_AMQP_N_PROGRESS"
	want py-amqp && bench_worker py-amqp "$PY_AMQP_N" "$PY_AMQP_N"
fi
END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: workers measured in $(($(date +%s) - T_START)) s" >&2

RESULT=$OUT/bench-$STAMP.json
$PY "$ROOT/testdata/interop/bench/bench_table.py" "$RUNS" "$RESULT" \
	--concurrency "$C" --load-start "$START_LOAD" --load-end "$END_LOAD" \
	--cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" --cores "$(nproc)" \
	--redis "$(redis-server --version 2>/dev/null | awk '{print $3}')" \
	--rabbitmq "$([[ -n $AMQP_URL ]] && rabbitmqctl version 2>/dev/null)" \
	--celery "$($PY -c 'import celery; print(celery.__version__)')" \
	--celery55 "$([[ $PY55 != 0 ]] && "$CELERY55" python3 -c 'import celery; print(celery.__version__)' 2>/dev/null)" \
	--go-version "$("$BIN" version 2>/dev/null | head -1)" \
	--baseline "${BENCH_BASELINE:-}"
echo "results: $RESULT (per-run output in $RUNS)"
