"""apply_async scenarios of the issue-6 semantics test (our own code).

Usage: python3 semantics.py
Sends every scenario to OMICS_TEST_QUEUE (whatever worker consumes it: a
Python worker or omics-worker), records every state the worker stores for
each task -- by subscribing to the result backend's channel
celery-task-meta-<id> before sending, so no transition is missed -- then
reads the final state through AsyncResult. Prints one JSON object:
{scenario: {"states": [...], "state": ..., "result": ..., "exc_type": ...,
"exc": ..., "runs_after": seconds from send to date_done, "min_after":
seconds the task had to wait, "meta_keys": keys of the final stored
document, "date_done_form": "aware", "naive" or "none"}}.
"""

import datetime
import json
import time
import uuid

import redis

from celery.result import AsyncResult

import semantics_app  # noqa: F401  (registers diag.transient)
import diag_tasks as d
from omics_app import BACKEND, app

TIMEOUT = 60
READY = {"SUCCESS", "FAILURE", "REVOKED"}


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def scenarios():
    return {
        "countdown": (lambda tid: d.noop.apply_async(countdown=2, task_id=tid), 2.0),
        "eta": (lambda tid: d.noop.apply_async(eta=now() + datetime.timedelta(seconds=1.5), task_id=tid), 1.5),
        "expires-past": (lambda tid: d.noop.apply_async(expires=now() - datetime.timedelta(seconds=5), task_id=tid), 0),
        "expires-before-eta": (lambda tid: d.noop.apply_async(countdown=2, expires=1, task_id=tid), 0),
        "expires-future": (lambda tid: d.echo.apply_async(args=[1], expires=60, task_id=tid), 0),
        "priority": (lambda tid: d.echo.apply_async(args=["p"], priority=7, task_id=tid), 0),
        "time-limit": (lambda tid: d.sleep.apply_async(args=[4], time_limit=1, task_id=tid), 0),
        "soft-time-limit": (lambda tid: d.sleep.apply_async(args=[4], soft_time_limit=1, task_id=tid), 0),
        "retry-twice": (lambda tid: d.flaky.apply_async(kwargs={"fail_times": 2, "key": "k", "countdown": 0.3},
                                                        task_id=tid), 0.6),
        "retry-exhausted": (lambda tid: d.flaky.apply_async(kwargs={"fail_times": 5, "countdown": 0.3, "max_retries": 2},
                                                            task_id=tid), 0.6),
        "autoretry": (lambda tid: semantics_app.transient.apply_async(kwargs={"fail_times": 1, "key": "t"},
                                                                      task_id=tid), 0),
        "autoretry-exhausted": (lambda tid: semantics_app.transient.apply_async(kwargs={"fail_times": 9},
                                                                                task_id=tid), 0),
    }


def main():
    r = redis.Redis.from_url(BACKEND)
    ps = r.pubsub()
    ids, sent, waits = {}, {}, {}
    todo = scenarios()
    for name in todo:
        ids[name] = str(uuid.uuid4())
    ps.subscribe(*["celery-task-meta-" + tid for tid in ids.values()])
    # consume the subscribe confirmations
    for _ in ids:
        ps.get_message(timeout=5)
    for name, (send, wait) in todo.items():
        sent[name] = time.time()
        waits[name] = wait
        send(ids[name])
    by_id = {tid: name for name, tid in ids.items()}
    states = {name: [] for name in todo}
    final = {}
    done = set()
    deadline = time.time() + TIMEOUT
    while len(done) < len(todo) and time.time() < deadline:
        m = ps.get_message(timeout=1)
        if not m or m["type"] != "message":
            continue
        tid = m["channel"].decode()[len("celery-task-meta-"):]
        meta = json.loads(m["data"])
        name = by_id[tid]
        states[name].append(meta["status"])
        if meta["status"] in READY:
            done.add(name)
            final[name] = meta
    out = {}
    for name, tid in ids.items():
        res = AsyncResult(tid, app=app)
        entry = {"states": states[name], "state": res.state, "min_after": waits[name]}
        if res.state == "SUCCESS":
            entry["result"] = res.result
        elif res.state in ("FAILURE", "REVOKED", "RETRY"):
            entry["exc_type"] = type(res.result).__name__
            entry["exc"] = str(res.result)
        if res.date_done is not None:
            dd = res.date_done
            if dd.tzinfo is None:
                dd = dd.replace(tzinfo=datetime.timezone.utc)
            entry["runs_after"] = round(dd.timestamp() - sent[name], 3)
        meta = final.get(name)
        if meta is not None:
            # The stored document's shape: its keys, and date_done's
            # form (celery 5.2 writes naive UTC, 5.4+ aware).
            entry["meta_keys"] = sorted(meta)
            dd = meta.get("date_done")
            entry["date_done_form"] = "none" if dd is None else (
                "aware" if datetime.datetime.fromisoformat(dd).tzinfo is not None else "naive")
        out[name] = entry
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
