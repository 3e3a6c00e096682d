"""Celery app of the issue-6 semantics tests: omics_app (configured like the
Omicsomics celery_app.py) with the diag.* tasks, plus the Python twin of the
Go diag.transient task (automatic retry of a transient error with
exponential backoff and jitter, at most 3 retries). Our own code.

Run a Python worker with:
  python3 -m celery -A semantics_app worker -P prefork -c 2 -Q <queue>
(from this directory; prefork because the solo pool ignores time limits).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from omics_app import app  # noqa: E402
import diag_tasks  # noqa: E402,F401


@app.task(name="diag.transient", bind=True, autoretry_for=(ConnectionError,),
          retry_backoff=1, retry_jitter=True, max_retries=3)
def transient(self, fail_times=1, key=""):
    if self.request.retries < fail_times:
        raise ConnectionError("transient failure %d of %d" % (self.request.retries + 1, fail_times))
    return {"ok": True, "key": key, "retries": self.request.retries}
