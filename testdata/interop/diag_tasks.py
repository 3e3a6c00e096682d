"""Python equivalents of the Go worker's diag.* tasks (worker/diag), so a
Python worker can share a queue with the Go worker in interop tests and
benchmarks. Our own code."""

import time

from omics_app import app


@app.task(name="diag.noop")
def noop():
    return {"ok": True}


@app.task(name="diag.progress", bind=True)
def progress(self, steps=5, delay=0):
    for i in range(1, steps + 1):
        if delay:
            time.sleep(delay)
        self.update_state(state="PROGRESS",
                          meta={"status": "step %d" % i, "progress": i * 100 // steps})
    return {"ok": True, "steps": steps}


@app.task(name="diag.echo")
def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


@app.task(name="diag.fail")
def fail(message="diag.fail"):
    raise ValueError(message)


@app.task(name="diag.sleep")
def sleep(seconds=1):
    time.sleep(seconds)
    return {"ok": True, "slept": seconds}


@app.task(name="diag.flaky", bind=True, max_retries=None)
def flaky(self, fail_times=1, key="", countdown=0.2, max_retries=None):
    if self.request.retries < fail_times:
        raise self.retry(exc=ConnectionError("flaky failure %d of %d" % (self.request.retries + 1, fail_times)),
                         countdown=countdown, max_retries=max_retries)
    return {"ok": True, "key": key, "retries": self.request.retries}


@app.task(name="py.only")
def py_only(x=None):
    """A task only Python workers have (for --forward-unknown tests)."""
    return {"python": True, "x": x}


@app.task(name="diag.add")
def add(x, y):
    return x + y


@app.task(name="diag.mul")
def mul(x, y):
    return x * y


@app.task(name="diag.xsum")
def xsum(numbers):
    return sum(numbers)
