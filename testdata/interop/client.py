"""Interop scenarios driven by the real Python Celery client.

Usage: python3 client.py <scenario> [args...]

Each scenario talks to whatever worker consumes OMICS_TEST_QUEUE (the Go
worker in cmd/omics-worker/interop_test.go), asserts what a Python peer
observes, prints one JSON line with its findings and exits 0; on a failed
assertion it prints the reason and exits 1. Broker/backend URLs come from
CELERY_BROKER_URL / CELERY_RESULT_BACKEND (see omics_app.py). Our own code.
"""

import datetime
import json
import sys
import time

import redis
from celery.exceptions import TimeoutError as CeleryTimeout
from celery.result import AsyncResult

import diag_tasks as d
from omics_app import BACKEND, QUEUE, app

GET_TIMEOUT = 20


def check(cond, msg, *args):
    if not cond:
        raise AssertionError(msg % args if args else msg)


def expect_failure(r, exc_name, contains=None):
    try:
        v = r.get(timeout=GET_TIMEOUT)
    except CeleryTimeout:
        raise AssertionError("task %s: no result within %ss" % (r.id, GET_TIMEOUT))
    except Exception as e:  # the rebuilt task exception
        check(type(e).__name__ == exc_name, "want %s, got %s: %r", exc_name, type(e).__name__, e)
        check(r.state == "FAILURE", "state %s", r.state)
        check(type(r.info).__name__ == exc_name, "info %r", r.info)
        if contains is not None:
            check(contains in str(e), "%r not in str(exc) %r", contains, str(e))
        return e
    raise AssertionError("task %s succeeded with %r, want %s" % (r.id, v, exc_name))


def scenario_basic():
    r = d.echo.delay(raw_file_id=7, sample_id="s-1")
    check(r.get(timeout=GET_TIMEOUT) == {"args": [], "kwargs": {"raw_file_id": 7, "sample_id": "s-1"}},
          "kwargs: %r", r.result)
    r = d.echo.delay(1, "two", 3.5, None, True)
    check(r.get(timeout=GET_TIMEOUT) == {"args": [1, "two", 3.5, None, True], "kwargs": {}}, "args: %r", r.result)
    r = d.echo.delay(1, [2, {"x": "é"}], k={"n": [1, 2]})
    check(r.get(timeout=GET_TIMEOUT) == {"args": [1, [2, {"x": "é"}]], "kwargs": {"k": {"n": [1, 2]}}},
          "both: %r", r.result)
    check(d.noop.delay().get(timeout=GET_TIMEOUT) == {"ok": True}, "noop")
    check(r.state == "SUCCESS", "state %s", r.state)
    # A task that finishes after get() started waiting: get() only returns
    # because the worker PUBLISHes the result (no polling in the backend).
    r = d.sleep.delay(1.0)
    started = None
    deadline = time.time() + GET_TIMEOUT
    while time.time() < deadline:
        if r.state == "STARTED":
            started = r.info
            break
        time.sleep(0.02)
    check(started is not None, "never saw STARTED")
    check(isinstance(started, dict) and isinstance(started.get("pid"), int) and started.get("hostname"),
          "STARTED meta %r", started)
    check(r.get(timeout=5) == {"ok": True, "slept": 1.0}, "sleep: %r", r.result)
    return {"started": started}


def scenario_progress():
    r = d.progress.delay(steps=5, delay=0.3)
    seen = []
    deadline = time.time() + GET_TIMEOUT
    while not r.ready() and time.time() < deadline:
        st, info = r.state, r.info
        if st == "PROGRESS":
            check(isinstance(info, dict), "PROGRESS info is %r", info)
            check(set(info) == {"status", "progress"}, "PROGRESS keys %r", info)
            if not seen or seen[-1] != info:
                seen.append(info)
        time.sleep(0.03)
    check(r.get(timeout=GET_TIMEOUT) == {"ok": True, "steps": 5}, "result %r", r.result)
    check(len(seen) >= 2, "saw only %r", seen)
    for info in seen:
        i = int(info["status"].split()[1])
        check(info["progress"] == i * 100 // 5, "progress %r", info)
    return {"progress_seen": seen}


def scenario_failure():
    e = expect_failure(d.fail.delay("boom"), "ValueError", "boom")
    check(str(e) == "boom", "str(exc) = %r", str(e))
    r = d.fail.delay(message="disk full")
    expect_failure(r, "ValueError", "disk full")
    check("ValueError: disk full" in (r.traceback or ""), "traceback %r", r.traceback)
    # Wrong argument types and arity fail like Python functions would.
    t = expect_failure(d.progress.delay(steps="abc"), "TypeError", "steps")
    a = expect_failure(app.send_task("diag.noop", args=[1], queue=QUEUE), "TypeError", "positional")
    return {"value_error": str(e), "type_error": str(t), "arity": str(a)}


def scenario_pickle():
    r = app.send_task("diag.noop", serializer="pickle", queue=QUEUE)
    e = expect_failure(r, "ContentDisallowed", "pickle")
    return {"message": str(e)}


def scenario_unknown():
    r = app.send_task("diag.does_not_exist", args=[1], queue=QUEUE)
    e = expect_failure(r, "NotRegistered", "diag.does_not_exist")
    return {"message": str(e)}


def scenario_retry():
    r = d.flaky.delay(fail_times=2, key="k1", countdown=0.2)
    check(r.get(timeout=GET_TIMEOUT) == {"ok": True, "key": "k1", "retries": 2}, "flaky %r", r.result)
    return {"result": r.result}


def scenario_eta_expires():
    eta = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
    r = d.noop.apply_async(eta=eta)
    check(r.get(timeout=GET_TIMEOUT) == {"ok": True}, "eta %r", r.result)
    done = r.date_done
    if done.tzinfo is None:
        done = done.replace(tzinfo=datetime.timezone.utc)
    check(done >= eta, "ran at %s before its eta %s", done, eta)
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
    e = expect_failure_revoked(d.noop.apply_async(expires=past))
    return {"eta": str(eta), "done": str(done), "expired": str(e)}


def expect_failure_revoked(r):
    try:
        r.get(timeout=GET_TIMEOUT)
    except CeleryTimeout:
        raise AssertionError("expired task: no result")
    except Exception as e:
        check(type(e).__name__ == "TaskRevokedError", "got %r", e)
        check(r.state == "REVOKED", "state %s", r.state)
        return e
    raise AssertionError("expired task ran")


def scenario_time_limits():
    soft = expect_failure(d.sleep.apply_async(args=[10], soft_time_limit=0.5), "SoftTimeLimitExceeded")
    r = d.sleep.apply_async(args=[10], time_limit=1)
    hard = expect_failure(r, "TimeLimitExceeded")
    check(r.result.args == (1.0,), "TimeLimitExceeded args %r", r.result.args)
    return {"soft": repr(soft), "hard": repr(hard)}


def scenario_forward():
    """py.only is unknown to the Go worker: with --forward-unknown it moves
    the message to a queue a Python worker consumes, which runs it."""
    r = app.send_task("py.only", kwargs={"x": 5}, queue=QUEUE)
    check(r.get(timeout=GET_TIMEOUT) == {"python": True, "x": 5}, "forwarded %r", r.result)
    return {"result": r.result}


def scenario_retry_handoff_start():
    """diag.flaky fails once on the Go worker, which republishes it with a
    3 s countdown and stores RETRY. Prints the id; the Go test then stops
    the Go worker (warm shutdown restores the ETA-waiting retry message)."""
    r = d.flaky.delay(fail_times=1, key="handoff", countdown=3)
    deadline = time.time() + GET_TIMEOUT
    while r.state != "RETRY" and time.time() < deadline:
        time.sleep(0.02)
    check(r.state == "RETRY", "state %s, want RETRY", r.state)
    check(type(r.info).__name__ == "ConnectionError", "RETRY info %r", r.info)
    return {"ids": [r.id]}


def scenario_retry_handoff_finish(path):
    """A Python worker runs the Go worker's retry message."""
    r = AsyncResult(load_ids(path)[0], app=app)
    v = r.get(timeout=GET_TIMEOUT)
    check(v == {"ok": True, "key": "handoff", "retries": 1}, "result %r", v)
    return {"result": v}


def scenario_publish(kind, n):
    """Publish n tasks of kind (noop, sleep:<s>, echo) and print their ids."""
    ids = []
    for i in range(int(n)):
        if kind == "noop":
            r = d.noop.delay()
        elif kind.startswith("sleep:"):
            r = d.sleep.delay(float(kind.split(":", 1)[1]))
        elif kind == "echo":
            r = d.echo.delay(i)
        else:
            raise SystemExit("unknown kind " + kind)
        ids.append(r.id)
    return {"ids": ids}


def scenario_priorities_publish():
    """Publish diag.echo(i) with priorities in a shuffled order; print the
    ids in the order kombu must serve them: priority step (0-2 -> 0, 3-5 -> 3,
    6-8 -> 6, 9 -> 9) ascending, FIFO within a step."""
    prios = [5, 9, 0, 3, 7, 1, 8, 2, 6, 4, 0, 9, 5]
    sent = []
    for i, p in enumerate(prios):
        r = d.echo.apply_async(args=[i, p], priority=p)
        sent.append((p, i, r.id))

    def step(p):
        return max(s for s in (0, 3, 6, 9) if s <= p)

    order = sorted(sent, key=lambda x: (step(x[0]), x[1]))
    return {"ids": [x[2] for x in order], "priorities": [x[0] for x in order]}


def load_ids(path):
    with open(path) as f:
        return json.load(f)["ids"]


def scenario_wait_all(path, timeout):
    """Wait until every id in the JSON file is SUCCESS; print states."""
    ids = load_ids(path)
    deadline = time.time() + float(timeout)
    pending = set(ids)
    while pending and time.time() < deadline:
        for i in list(pending):
            if AsyncResult(i, app=app).state == "SUCCESS":
                pending.discard(i)
        if pending:
            time.sleep(0.1)
    states = {i: AsyncResult(i, app=app).state for i in pending}
    check(not pending, "%d of %d tasks not SUCCESS: %r", len(pending), len(ids), states)
    return {"done": len(ids)}


def scenario_check_order(path):
    """All ids SUCCESS and finished in the file's order (date_done)."""
    ids = load_ids(path)
    done = []
    for i in ids:
        r = AsyncResult(i, app=app)
        r.get(timeout=GET_TIMEOUT)
        done.append(r.date_done)
    check(done == sorted(done), "served out of order: %r", [str(x) for x in done])
    return {"done": [str(x) for x in done]}


def scenario_share(n, seconds):
    """Send n diag.sleep tasks and record, from the result channel, which
    worker started each one: every task must start exactly once and both
    workers (omics@... and celery@...) must have taken part."""
    rds = redis.Redis.from_url(BACKEND)
    ps = rds.pubsub()
    ps.psubscribe("celery-task-meta-*")
    while ps.get_message(timeout=1) is None:
        pass
    rs = [d.sleep.delay(float(seconds)) for _ in range(int(n))]
    # Retries republished by one worker are run by either: both must read
    # the other's retry messages (same id, retries+1, eta).
    flaky = [d.flaky.delay(fail_times=2, key="f%d" % i, countdown=0.1) for i in range(6)]
    for r in rs:
        r.get(timeout=GET_TIMEOUT * 3)
    for i, r in enumerate(flaky):
        v = r.get(timeout=GET_TIMEOUT * 3)
        check(v == {"ok": True, "key": "f%d" % i, "retries": 2}, "flaky %r", v)
    ids = {r.id for r in rs}
    started, flaky_hosts = {}, {}
    flaky_ids = {r.id for r in flaky}
    t_end = time.time() + 2
    while time.time() < t_end:
        m = ps.get_message(timeout=0.2)
        if m is None or m["type"] != "pmessage":
            continue
        meta = json.loads(m["data"])
        if meta["status"] == "STARTED" and meta["task_id"] in ids:
            started.setdefault(meta["task_id"], []).append(meta["result"]["hostname"])
        if meta["status"] == "STARTED" and meta["task_id"] in flaky_ids:
            h = meta["result"]["hostname"]
            flaky_hosts[h] = flaky_hosts.get(h, 0) + 1
    ps.close()
    check(set(started) == ids, "%d tasks never STARTED", len(ids - set(started)))
    dup = {k: v for k, v in started.items() if len(v) != 1}
    check(not dup, "tasks started more than once: %r", dup)
    hosts = {}
    for v in started.values():
        hosts[v[0]] = hosts.get(v[0], 0) + 1
    check(len(hosts) == 2, "work not shared: %r", hosts)
    return {"per_worker": hosts, "flaky_runs_per_worker": flaky_hosts}


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    name, args = sys.argv[1].replace("-", "_"), sys.argv[2:]
    fn = globals().get("scenario_" + name)
    if fn is None:
        raise SystemExit("unknown scenario " + sys.argv[1])
    try:
        out = fn(*args)
    except AssertionError as e:
        print("FAIL %s: %s" % (sys.argv[1], e))
        sys.exit(1)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
