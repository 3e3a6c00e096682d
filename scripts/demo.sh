#!/usr/bin/env bash
# make demo: the Go worker end to end on this machine.
#
#  1. makes sure Redis and PostgreSQL answer (starts them when it can);
#  2. recreates the scratch database omics_demo with the data_files schema;
#  3. stores every file of testdata/demo encrypted, as the FastAPI upload
#     does (objects in a temporary directory: OBJECT_STORAGE_ENDPOINT=file://);
#  4. starts the real worker (Redis DB 12), enqueues process_file_async for
#     each file through the Celery protocol (the Python Celery client when
#     /usr/bin/python3 has it, else our own producer), shows live progress
#     and prints each final status as GET /api/v1/data/task/{id}/status
#     would return it;
#  5. stops the worker.
#
# Environment (all optional): REDIS_HOST/REDIS_PORT (127.0.0.1:6379),
# DEMO_REDIS_DB (12), PGHOST/PGPORT/PGUSER (127.0.0.1/5432/postgres),
# DEMO_DB (omics_demo), BIN (bin/omics-worker), MASTER_KEY.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BIN:-bin/omics-worker}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
DEMO_REDIS_DB=${DEMO_REDIS_DB:-12}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
DEMO_DB=${DEMO_DB:-omics_demo}
PY=${DEMO_PYTHON:-/usr/bin/python3}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ -x "$BIN" ] || { say "building $BIN"; CGO_ENABLED=0 go build -trimpath -o "$BIN" ./cmd/omics-worker; }

# --- Redis -----------------------------------------------------------------
redis_ok() {
	if command -v redis-cli >/dev/null; then
		redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG
	else
		(exec 3<>"/dev/tcp/$REDIS_HOST/$REDIS_PORT" && printf 'PING\r\n' >&3 && head -c5 <&3 | grep -q PONG) 2>/dev/null
	fi
}
if ! redis_ok; then
	if command -v redis-server >/dev/null && [ "$REDIS_HOST" = 127.0.0.1 ]; then
		say "starting Redis: redis-server --port $REDIS_PORT --daemonize yes"
		redis-server --port "$REDIS_PORT" --daemonize yes >/dev/null
		for _ in $(seq 50); do redis_ok && break; sleep 0.1; done
	fi
	redis_ok || die "Redis is not running at $REDIS_HOST:$REDIS_PORT. Start it with: redis-server --daemonize yes   (Debian: apt-get install redis-server)"
fi

# --- PostgreSQL ------------------------------------------------------------
pg_ok() {
	if command -v pg_isready >/dev/null; then
		pg_isready -q -h "$PGHOST" -p "$PGPORT"
	else
		(exec 3<>"/dev/tcp/$PGHOST/$PGPORT") 2>/dev/null
	fi
}
if ! pg_ok; then
	if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
		ver=$(ls /etc/postgresql | sort -V | tail -1)
		say "starting PostgreSQL: pg_ctlcluster --skip-systemctl-redirect $ver main start"
		pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
		for _ in $(seq 50); do pg_ok && break; sleep 0.2; done
	fi
	pg_ok || die "PostgreSQL is not running at $PGHOST:$PGPORT. Start it with: pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start   (Debian: apt-get install postgresql)"
fi

# --- configuration, exactly the variables of the celery-worker service ------
STORE=$(mktemp -d -t omics-demo-XXXXXX)
LOG="$STORE/worker.log"
export DATABASE_URL="postgresql+asyncpg://$PGUSER@$PGHOST:$PGPORT/$DEMO_DB"
export OBJECT_STORAGE_ENDPOINT="file://$STORE/objects"
export OBJECT_STORAGE_BUCKET=omicsomics
export CELERY_BROKER_URL="redis://$REDIS_HOST:$REDIS_PORT/$DEMO_REDIS_DB"
export CELERY_RESULT_BACKEND="redis://$REDIS_HOST:$REDIS_PORT/$DEMO_REDIS_DB"
export LOG_LEVEL=INFO
WPID=
cleanup() {
	if [ -n "$WPID" ] && kill -0 "$WPID" 2>/dev/null; then
		kill -TERM "$WPID" 2>/dev/null || true
		wait "$WPID" 2>/dev/null || true
	fi
	rm -rf "$STORE"
}
trap cleanup EXIT

# Leftovers of an earlier demo run in the demo's own Redis DB.
if command -v redis-cli >/dev/null; then
	redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$DEMO_REDIS_DB" del file_processing large_files unacked unacked_index >/dev/null
fi

say "database $DEMO_DB (recreated), objects in $STORE/objects, Redis DB $DEMO_REDIS_DB"
PLAN="$STORE/plan.json"
"$BIN" demo-seed --recreate --dir testdata/demo >"$PLAN"
n=$(grep -c '"raw_file_id"' "$PLAN")
say "stored $n encrypted files of testdata/demo as the FastAPI upload would"

say "starting the worker: $BIN worker -Q file_processing,large_files -c 2"
"$BIN" worker -Q file_processing,large_files -c 2 >"$LOG" 2>&1 &
WPID=$!
for _ in $(seq 100); do
	grep -q 'worker ready' "$LOG" && break
	kill -0 "$WPID" 2>/dev/null || { cat "$LOG" >&2; die "the worker exited"; }
	sleep 0.1
done
grep -q 'worker ready' "$LOG" || { cat "$LOG" >&2; die "the worker did not become ready"; }

RESULT="$STORE/result.json"
if [ -x "$PY" ] && "$PY" -c 'import celery, redis' 2>/dev/null; then
	say "enqueueing process_file_async.delay(raw_file_id=...) with the Python Celery client; live progress:"
	(cd testdata/interop/e2e && "$PY" e2e.py run --live) <"$PLAN" >"$RESULT" || true
else
	say "Python Celery not found: enqueueing with our own producer; live progress:"
	"$BIN" demo-seed --enqueue --plan "$PLAN" >"$RESULT" || true
fi

say "final status of each task, as GET /api/v1/data/task/{task_id}/status returns it:"
if command -v python3 >/dev/null; then
	python3 - "$RESULT" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for t in r["tasks"]:
    print("%-20s %s" % (t["name"], json.dumps(t["final"])))
errs = r.get("errors") or []
if errs:
    print("\nCHECKS FAILED:\n  " + "\n  ".join(errs))
    sys.exit(1)
if "ok" in r:
    print("\nall checks passed: states in order, progress monotone, results as expected")
EOF
else
	cat "$RESULT"
fi

say "stopping the worker"
kill -TERM "$WPID"
wait "$WPID" || true
WPID=
grep -E 'level=(WARN|ERROR)' "$LOG" | grep -v MASTER_KEY | head -20 >&2 || true
say "done (the database $DEMO_DB stays for inspection: psql -h $PGHOST -U $PGUSER $DEMO_DB -c 'select id, filename, metadata from data_files')"
