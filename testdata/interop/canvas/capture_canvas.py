#!/usr/bin/python3
"""Capture the task messages a real Celery client sends for canvas
(link, link_error, chain, group, chord, nested) as golden fixtures.

Our own code. Run with either interpreter:

    /usr/bin/python3 testdata/interop/canvas/capture_canvas.py 5.2
    scripts/celery55.sh python3 testdata/interop/canvas/capture_canvas.py 5.5

Writes protocol/testdata/canvas/<version>/<case>.json: a JSON list of the
raw envelopes LPUSHed (in publish order) by one apply_async, plus
"chord_size" (the celery-taskset-meta-<gid>.s value the client set, if
any). Uses Redis DB 15 on 127.0.0.1, queue names "omwcanv-*", and deletes
what it created.
"""
import json
import os
import sys

import redis
from celery import Celery, chain, chord, group, signature

VERSION = sys.argv[1]
URL = "redis://127.0.0.1:6379/15"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                   "protocol", "testdata", "canvas", VERSION)
SEP = "\x06\x16"
Q = "omwcanv-q"
r = redis.Redis.from_url(URL)
app = Celery("capture", broker=URL, backend=URL)
app.conf.update(result_expires=600, task_default_queue=Q)


def s(name, *args, **opts):
    return signature(name, args=args, app=app, **opts)


def drain_all():
    out = []
    for q in (Q, "omwcanv-other"):
        for key in [q] + [q + SEP + str(p) for p in range(1, 10)]:
            while True:
                v = r.rpop(key)
                if v is None:
                    break
                out.append(json.loads(v))
    return out


def chord_sizes():
    out = {}
    for k in r.scan_iter(match="celery-taskset-meta-*.s"):
        out[k.decode()] = int(r.get(k))
        r.delete(k)
    return out


def write(name, envs):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name + ".json")
    with open(path, "w") as f:
        json.dump({"envelopes": envs, "chord_size": chord_sizes()}, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", path)


CASES = {
    "link": lambda: s("diag.add", 1, 2).apply_async(
        link=s("diag.mul", 10, queue="omwcanv-other", priority=5)),
    "link_immutable": lambda: s("diag.add", 1, 2).apply_async(
        link=signature("diag.echo", args=("x",), immutable=True, app=app)),
    "link_error": lambda: s("diag.fail", "boom").apply_async(
        link_error=s("diag.echo", "errback")),
    "chain3": lambda: chain(s("diag.add", 1, 2), s("diag.add", 3), s("diag.mul", 4)).apply_async(),
    "chord3": lambda: chord([s("diag.add", i, i) for i in range(3)], s("diag.xsum")).apply_async(),
    "chord_chain_body": lambda: chord([s("diag.add", i, i) for i in range(2)],
                                      chain(s("diag.xsum"), s("diag.mul", 2))).apply_async(),
    "chord_chain_header": lambda: chord([chain(s("diag.add", 1, 1), s("diag.mul", 3)), s("diag.add", 2, 2)],
                                        s("diag.xsum")).apply_async(),
    "group_of_chains": lambda: group(chain(s("diag.add", i, i), s("diag.mul", 2)) for i in range(2)).apply_async(),
    "chord_errback": lambda: chord([s("diag.add", 1, 1), s("diag.fail", "part")],
                                   s("diag.xsum").on_error(s("diag.echo", "body-errback"))).apply_async(),
}

if __name__ == "__main__":
    drain_all()
    chord_sizes()
    for name in sorted(CASES):
        CASES[name]()
        write(name, drain_all())
    for k in r.scan_iter(match="_kombu.binding.omwcanv-*"):
        r.delete(k)
