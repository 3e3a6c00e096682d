#!/usr/bin/python3
"""Decode envelopes produced by the Go protocol package with the real kombu
5.2.4 / celery 5.2.6 code paths, for protocol's interop tests.

stdin: JSON list of {"kind": "task"|"message"|"result", "raw": "<json text>",
"id": "<task id, for results>"}. stdout: JSON list of what Python saw.

task:    kombu's Redis channel turns the envelope into a Message (as after
         BRPOP), celery builds a worker Request from it.
message: kombu Message only (pidbox replies/requests, events).
result:  the raw meta is SET at celery-task-meta-<id> in Redis DB 15 and read
         back through AsyncResult (state, result, info, traceback, date_done,
         get(propagate=False)); the key is deleted afterwards.
"""
import json
import sys

from celery import Celery
from kombu import Connection

URL = "redis://127.0.0.1:6379/15"
app = Celery("decode", broker=URL, backend=URL)


@app.task(name="proj.tasks.add")
def add(*a, **kw):
    return None


def jsonable(v):
    try:
        json.dumps(v)
        return v
    except TypeError:
        return repr(v)


def describe_exc(e):
    return {"class": type(e).__name__, "module": type(e).__module__,
            "args": [jsonable(a) for a in e.args], "str": str(e), "repr": repr(e),
            "is_exception": isinstance(e, BaseException)}


def main():
    out = []
    conn = Connection(URL)
    ch = conn.default_channel
    for item in json.load(sys.stdin):
        payload = json.loads(item["raw"])
        row = {}
        try:
            if item["kind"] in ("task", "message"):
                m = ch.Message(payload, channel=ch)
                row["headers"] = jsonable(m.headers)
                row["properties"] = jsonable(m.properties)
                row["delivery_info"] = jsonable(m.delivery_info)
                row["delivery_tag"] = m.delivery_tag
                row["content_type"] = m.content_type
                row["body"] = jsonable(m.decode())
                row["body_types"] = {k: type(v).__name__ for k, v in (
                    row["body"].items() if isinstance(row["body"], dict) else [])}
                if isinstance(row["body"], dict):
                    for v in row["body"].values():
                        if isinstance(v, dict):
                            row["body_types"].update({"." + k: type(x).__name__ for k, x in v.items()})
            if item["kind"] == "task":
                from celery.worker.request import Request
                req = Request(m, app=app, task=app.tasks[m.headers["task"]])
                row["request"] = {
                    "id": req.id, "name": req.name, "args": jsonable(req.args),
                    "kwargs": jsonable(req.kwargs), "eta": req.eta and req.eta.isoformat(),
                    "expires": req.expires and req.expires.isoformat(),
                    "time_limits": list(req.time_limits), "argsrepr": req.argsrepr,
                    "kwargsrepr": req.kwargsrepr, "root_id": req.root_id,
                    "parent_id": req.parent_id, "group": req._request_dict.get("group"),
                    "group_index": req.group_index, "retries": req._request_dict.get("retries"),
                    "callbacks": jsonable(req._payload[2].get("callbacks")),
                    "chain": jsonable(req._payload[2].get("chain")),
                    "custom": {k: jsonable(v) for k, v in req._request_dict.items()
                               if k.startswith("x-")},
                }
            if item["kind"] == "result":
                import redis
                r = redis.Redis.from_url(URL)
                key = "celery-task-meta-" + item["id"]
                r.set(key, item["raw"])
                try:
                    res = app.AsyncResult(item["id"])
                    row["state"] = res.state
                    row["ready"] = res.ready()
                    v = res.result
                    row["result"] = describe_exc(v) if isinstance(v, BaseException) else jsonable(v)
                    row["traceback"] = res.traceback
                    row["date_done"] = res.date_done and res.date_done.isoformat()
                    row["date_done_type"] = type(res.date_done).__name__
                    if res.ready():
                        g = res.get(propagate=False, timeout=1)
                        row["get"] = describe_exc(g) if isinstance(g, BaseException) else jsonable(g)
                        try:
                            res.get(timeout=1)
                            row["raised"] = None
                        except BaseException as exc:  # noqa: B902
                            row["raised"] = describe_exc(exc)
                    row["info_str"] = str(res.info)
                finally:
                    r.delete(key)
        except Exception as exc:  # report, do not crash: the Go test fails on it
            import traceback
            row["error"] = traceback.format_exc()
        out.append(row)
    json.dump(out, sys.stdout)


main()
