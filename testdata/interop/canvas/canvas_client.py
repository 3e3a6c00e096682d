"""Canvas scenarios driven by the real Celery client (our own code).

    python3 canvas/canvas_client.py SCENARIO   (cwd: testdata/interop)

Uses omics_app (broker/backend/queue from the environment, see
omics_app.py). Prints one JSON line: {"ok": bool, ...details}. Queues:
OMICS_TEST_QUEUE (default), <queue>_other (a callback routed elsewhere),
<queue>_py (tasks only a Python worker serves).
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import celery  # noqa: E402
from celery import chain, chord, group, signature  # noqa: E402

from omics_app import QUEUE, app  # noqa: E402

T = float(os.getenv("OMICS_CANVAS_TIMEOUT", "60"))


def s(name, *args, **opts):
    return signature(name, args=args, app=app, **opts)


def meta(task_id):
    return app.backend.get_task_meta(task_id)


def wait(task_id, propagate=True):
    return app.AsyncResult(task_id).get(timeout=T, propagate=propagate, disable_sync_subtasks=False)


def error_of(res):
    try:
        v = res.get(timeout=T, disable_sync_subtasks=False)
        return {"raised": False, "value": v}
    except Exception as e:  # noqa: BLE001
        return {"raised": True, "type": type(e).__name__, "text": str(e)}


def sc_link():
    cb = s("diag.mul", 10)
    cb.freeze()
    r = s("diag.add", 1, 2).apply_async(link=cb)
    v = wait(cb.id)
    m = meta(cb.id)
    return {"ok": v == 30 and m.get("parent_id") == r.id, "value": v, "meta_parent": m.get("parent_id"), "parent": r.id}


def sc_link_other_queue():
    cb = s("diag.mul", 10, queue=QUEUE + "_other", priority=5)
    cb.freeze()
    s("diag.add", 2, 3).apply_async(link=cb)
    v = wait(cb.id)
    return {"ok": v == 50, "value": v}


def sc_link_immutable():
    cb = signature("diag.echo", args=("fixed",), immutable=True, app=app)
    cb.freeze()
    s("diag.add", 2, 3).apply_async(link=cb)
    v = wait(cb.id)
    return {"ok": v == {"args": ["fixed"], "kwargs": {}}, "value": v}


def sc_link_error():
    eb = s("diag.echo", "errback")
    eb.freeze()
    r = s("diag.fail", "boom").apply_async(link_error=eb)
    v = wait(eb.id)
    e = error_of(r)
    return {"ok": v == {"args": [r.id, "errback"], "kwargs": {}} and e.get("type") == "ValueError",
            "value": v, "parent": r.id, "error": e}


def sc_link_error_python():
    eb = s("py.only", queue=QUEUE + "_py")
    eb.freeze()
    r = s("diag.fail", "boom").apply_async(link_error=eb)
    v = wait(eb.id)
    return {"ok": v == {"python": True, "x": r.id}, "value": v, "parent": r.id}


def sc_chain3():
    r = chain(s("diag.add", 1, 2), s("diag.add", 3), s("diag.mul", 4)).apply_async()
    v = r.get(timeout=T)
    return {"ok": v == 24 and r.parent.get(timeout=T) == 6, "value": v}


def sc_chain10():
    r = chain(s("diag.add", 1, 1), *[s("diag.add", 1) for _ in range(9)]).apply_async()
    v = r.get(timeout=T)
    return {"ok": v == 11, "value": v}


def sc_chain_fail():
    eb = s("diag.echo", "chain-errback")
    eb.freeze()
    stop = signature("diag.fail", args=("stop",), immutable=True, app=app).on_error(eb)
    r = chain(s("diag.add", 1, 1), stop, s("diag.mul", 2)).apply_async()
    e = error_of(r)  # the last step is marked FAILURE with the failed step's error
    v = wait(eb.id)
    return {"ok": e.get("type") == "ValueError" and e.get("text") == "stop" and v["args"][1] == "chain-errback"
            and v["args"][0] == r.parent.id, "error": e, "errback": v}


def sc_chord(n):
    r = chord([s("diag.add", i, i) for i in range(n)], s("diag.xsum")).apply_async()
    v = r.get(timeout=T)
    return {"ok": v == sum(2 * i for i in range(n)), "value": v}


def sc_chord_fail():
    eb = s("diag.echo", "body-errback")
    eb.freeze()
    body = s("diag.xsum").on_error(eb)
    r = chord([s("diag.add", 1, 1), s("diag.fail", "part"), s("diag.add", 2, 2)], body).apply_async()
    v = wait(eb.id)
    # r.get() would raise the failed header part's error first (it follows
    # parents); the body's own result is the ChordError.
    e = error_of(app.AsyncResult(r.id))
    ok = (e.get("type") == "ChordError" and "raised ValueError('part')" in e.get("text", "")
          and e["text"].startswith("Dependency ") and v["args"] == [r.id, "body-errback"])
    return {"ok": ok, "error": e, "errback": v, "body": r.id}


def sc_chain_in_chord():
    r = chord([chain(s("diag.add", 1, 1), s("diag.mul", 3)), s("diag.add", 2, 2)], s("diag.xsum")).apply_async()
    v = r.get(timeout=T)
    return {"ok": v == 10, "value": v}


def sc_group_of_chains():
    r = group(chain(s("diag.add", i, i), s("diag.mul", 2)) for i in range(3)).apply_async()
    v = r.get(timeout=T)
    metas = [meta(x.id) for x in r.results]
    return {"ok": v == [0, 4, 8] and all(m.get("group_id") == r.id for m in metas), "value": v,
            "group_ids": [m.get("group_id") for m in metas], "group": r.id}


def sc_chord_chain_body():
    r = chord([s("diag.add", i, i) for i in range(3)], chain(s("diag.xsum"), s("diag.mul", 2))).apply_async()
    v = r.get(timeout=T)
    return {"ok": v == 12, "value": v}


def sc_retry():
    r = chain(s("diag.flaky", 1, "k", 0.1), s("diag.echo")).apply_async()
    v = r.get(timeout=T)
    ok = v["args"][0]["ok"] is True and v["args"][0]["retries"] == 1
    return {"ok": ok, "value": v}


def sc_mixed_chord():
    # header parts on both workers: half routed to the Python-only queue
    parts = [s("diag.add", i, i, queue=(QUEUE + "_py" if i % 2 else QUEUE)) for i in range(20)]
    r = chord(parts, s("diag.xsum")).apply_async()
    v = r.get(timeout=T)
    return {"ok": v == sum(2 * i for i in range(20)), "value": v, "body": r.id}


SCENARIOS = {
    "link": sc_link, "link_other_queue": sc_link_other_queue, "link_immutable": sc_link_immutable,
    "link_error": sc_link_error, "link_error_python": sc_link_error_python,
    "chain3": sc_chain3, "chain10": sc_chain10, "chain_fail": sc_chain_fail,
    "chord5": lambda: sc_chord(5), "chord100": lambda: sc_chord(100), "chord_fail": sc_chord_fail,
    "chain_in_chord": sc_chain_in_chord, "group_of_chains": sc_group_of_chains,
    "chord_chain_body": sc_chord_chain_body, "retry": sc_retry, "mixed_chord": sc_mixed_chord,
}

if __name__ == "__main__":
    try:
        out = SCENARIOS[sys.argv[1]]()
    except Exception as e:  # noqa: BLE001
        out = {"ok": False, "exception": "%s: %s" % (type(e).__name__, e)}
    out["celery"] = celery.__version__
    print(json.dumps(out, default=str))
