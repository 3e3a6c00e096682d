#!/usr/bin/python3
"""Capture real Celery 5.2.6 / kombu 5.2.4 wire messages as fixtures.

Run with Debian's interpreter (it has python3-celery):

    /usr/bin/python3 testdata/interop/capture/capture_protocol.py [outdir]

outdir defaults to protocol/testdata. Uses Redis DB 15 on 127.0.0.1 only and
deletes only the keys it created (queue names start with "omwcap-").
Writes:
  tasks/<case>.json    raw envelopes LPUSHed by send_task/apply_async
  pidbox/<case>.json   raw envelopes PUBLISHed on /15.celery.pidbox
  events/<case>.json   raw envelopes PUBLISHed on /15.celeryev/*
  results/<case>.json  raw values of celery-task-meta-<id> written by the
                       Redis result backend
"""
import json
import os
import sys
import threading
import time
import zlib  # noqa: F401  (compression codecs are registered by kombu)
from datetime import datetime, timedelta, timezone

import redis
from celery import Celery, chain, chord, group, signature

URL = "redis://127.0.0.1:6379/15"
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "protocol", "testdata")
SEP = "\x06\x16"
r = redis.Redis.from_url(URL)


def make_app(**conf):
    app = Celery("capture", broker=URL, backend=URL)
    app.conf.update(result_expires=600, **conf)
    return app


def write(kind, name, raw):
    path = os.path.join(OUT, kind, name + ".json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    with open(path, "w") as f:
        f.write(raw.rstrip("\n") + "\n")
    print("wrote", path)


def drain(queue):
    """Pop every message of queue (all priority sub-lists)."""
    out = []
    for key in [queue] + [queue + SEP + str(s) for s in (3, 6, 9)]:
        while True:
            v = r.rpop(key)
            if v is None:
                break
            out.append(v)
    return out


def cleanup_bindings():
    for k in r.scan_iter(match="_kombu.binding.omwcap-*"):
        r.delete(k)


def capture_tasks():
    app = make_app()
    utc = timezone.utc
    cases = {
        "v2_args": dict(args=(2, 2)),
        "v2_kwargs": dict(kwargs={"x": 1, "y": "two", "z": None}),
        "v2_args_kwargs": dict(args=[1, "it's", 'say "hi"', 1.5, True, None,
                                     [1, 2], {"k": "v"}, 2 ** 70, "héllo ✓"],
                               kwargs={"raw_file_id": 42, "sample_id": 7,
                                       "ratio": 0.1, "flag": False}),
        "v2_countdown": dict(args=(1,), countdown=10),
        "v2_eta": dict(args=(1,), eta=datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=utc)),
        "v2_eta_naive": dict(args=(1,), eta=datetime(2030, 1, 2, 3, 4, 5)),
        "v2_expires_seconds": dict(args=(1,), expires=60),
        "v2_expires_datetime": dict(args=(1,), expires=datetime(2030, 1, 2, 3, 4, 5, tzinfo=utc)),
        "v2_priority5": dict(args=(1,), priority=5),
        "v2_priority9": dict(args=(1,), priority=9),
        "v2_time_limits": dict(args=(1,), time_limit=30, soft_time_limit=10.5),
        "v2_custom_headers": dict(args=(1,), headers={"x-trace": "abc", "tenant": 7}),
        "v2_shadow_ignore": dict(args=(1,), shadow="custom.shadow", ignore_result=True),
        "v2_link": dict(args=(1,), link=signature("proj.tasks.cb", args=(10,), kwargs={"a": 1}),
                        link_error=signature("proj.tasks.eb", immutable=True)),
        "v2_compressed_zlib": dict(args=("x" * 200,), compression="zlib"),
        "v2_compressed_bz2": dict(args=("y" * 200,), compression="bzip2"),
        "v2_pickle": dict(args=(1, 2), serializer="pickle"),
        "v2_yaml": dict(args=(1, 2), serializer="yaml"),
    }
    for name, opts in cases.items():
        q = "omwcap-" + name
        try:
            app.send_task("proj.tasks.add", queue=q, **opts)
        except Exception as exc:  # e.g. yaml not installed
            print("skip", name, exc)
            continue
        msgs = drain(q)
        assert len(msgs) == 1, (name, len(msgs))
        write("tasks", name, msgs[0])

    # canvas: chain, group, chord
    q = "omwcap-canvas"
    chain(signature("proj.tasks.add", args=(1, 2), queue=q),
          signature("proj.tasks.mul", args=(3,), queue=q),
          signature("proj.tasks.sub", args=(4,), queue=q)).apply_async(queue=q)
    write("tasks", "v2_chain", drain(q)[0])
    group(signature("proj.tasks.add", args=(i, i), queue=q) for i in range(2)).apply_async(queue=q)
    for i, m in enumerate(drain(q)):
        write("tasks", "v2_group_%d" % i, m)
    chord([signature("proj.tasks.add", args=(i, i), queue=q) for i in range(2)],
          signature("proj.tasks.tsum", queue=q)).apply_async(queue=q)
    write("tasks", "v2_chord_part", drain(q)[0])
    r.delete(*[k for k in r.scan_iter(match="celery-taskset-meta-*")] or ["omwcap-none"])

    # protocol 1
    app1 = make_app(task_protocol=1)
    for name, opts in {
        "v1_args_kwargs": dict(args=(2, 2), kwargs={"x": 1}),
        "v1_eta_expires": dict(args=(1,), countdown=30, expires=120),
        "v1_link": dict(args=(1,), link=signature("proj.tasks.cb"), time_limit=5),
    }.items():
        q = "omwcap-" + name
        app1.send_task("proj.tasks.add", queue=q, **opts)
        write("tasks", name, drain(q)[0])
    cleanup_bindings()


class Listener:
    """PSUBSCRIBE on a pattern in a thread and keep every message."""

    def __init__(self, pattern):
        self.ps = r.pubsub()
        self.ps.psubscribe(pattern)
        self.ps.get_message(timeout=1)  # subscribe confirmation
        self.msgs = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            m = self.ps.get_message(timeout=0.1)
            if m and m["type"] == "pmessage":
                self.msgs.append((m["channel"].decode(), m["data"]))

    def close(self):
        time.sleep(0.3)
        self.stop = True
        self.t.join()
        self.ps.close()
        return self.msgs


def capture_pidbox():
    app = make_app()
    lis = Listener("/15.celery.pidbox")
    app.control.ping(timeout=0.2)
    app.control.revoke("d9d5f7a0-0000-4000-8000-000000000001")
    app.control.revoke("d9d5f7a0-0000-4000-8000-000000000002", terminate=True,
                       signal="SIGKILL", reply=True, timeout=0.2)
    app.control.inspect(timeout=0.2, destination=["celery@a", "celery@b"]).active()
    app.control.broadcast("rate_limit", arguments={"task_name": "proj.tasks.add",
                                                   "rate_limit": "10/m"},
                          pattern="celery@*", matcher="glob", reply=True, timeout=0.2)
    msgs = lis.close()
    names = ["ping", "revoke_cast", "revoke_terminate", "inspect_active_dest",
             "rate_limit_glob"]
    assert len(msgs) == len(names), [m[0] for m in msgs]
    for n, (ch, data) in zip(names, msgs):
        write("pidbox", n, data)


def capture_events():
    app = make_app()
    lis = Listener("/15.celeryev/*")
    with app.connection_for_write() as conn:
        d = app.events.Dispatcher(conn, hostname="celery@capture", enabled=True,
                                  buffer_while_offline=False)
        d.send("worker-heartbeat", freq=2.0, active=0, processed=3,
               loadavg=[0.1, 0.2, 0.3], sw_ident="py-celery", sw_ver="5.2.6",
               sw_sys="Linux")
        d.send("task-succeeded", uuid="d9d5f7a0-0000-4000-8000-000000000003",
               result="4", runtime=0.25)
        d.send("task-failed", uuid="d9d5f7a0-0000-4000-8000-000000000004",
               exception="ValueError('boom')", traceback="Traceback...\n")
        d.close()
    msgs = lis.close()
    names = ["worker_heartbeat", "task_succeeded", "task_failed"]
    assert len(msgs) == len(names), [m[0] for m in msgs]
    for n, (ch, data) in zip(names, msgs):
        write("events", n, data)
        print("   channel", ch)


def capture_results():
    app = make_app()
    b = app.backend
    ids = {}

    def tid(name):
        ids[name] = "d9d5f7a0-0000-4000-8001-%012d" % len(ids)
        return ids[name]

    b.store_result(tid("success_int"), 4, "SUCCESS")
    b.store_result(tid("success_obj"), {"status": "ok", "n": [1, 2.5, None]}, "SUCCESS")
    b.store_result(tid("started"), {"pid": 4242, "hostname": "celery@x"}, "STARTED")
    b.store_result(tid("progress"), {"status": "processing", "progress": 50}, "PROGRESS")
    try:
        raise ValueError("boom", 3)
    except ValueError as exc:
        import traceback
        b.mark_as_failure(tid("failure"), exc, traceback=traceback.format_exc())
    from celery.exceptions import TaskRevokedError, Retry  # noqa: F401
    b.mark_as_revoked(tid("revoked"), reason="expired")
    b.mark_as_retry(tid("retry"), ConnectionError("refused"))

    class Req:
        group = "d9d5f7a0-0000-4000-8002-000000000000"
        parent_id = "d9d5f7a0-0000-4000-8002-000000000001"
        children = []
        ignore_result = False
        task = "proj.tasks.add"
        args = [1]
        kwargs = {}
        hostname = "celery@x"
        retries = 0
        delivery_info = {"routing_key": "celery"}
        chord = None
        id = None
        def __getattr__(self, n):
            return None
    req = Req()
    req.id = tid("success_group_parent")
    b.store_result(req.id, None, "SUCCESS", request=req)
    for name, id_ in ids.items():
        raw = r.get("celery-task-meta-" + id_)
        write("results", name, raw)
        r.delete("celery-task-meta-" + id_)


if __name__ == "__main__":
    capture_tasks()
    capture_pidbox()
    capture_events()
    capture_results()
