"""Task-side helper for the remote-control interop tests
(cmd/omics-worker/control_test.go). Our own code.

  ctl.py send QUEUE TASK ARGS_JSON [TASK_ID]   publish, print the task id
  ctl.py state TASK_ID TIMEOUT                 wait until the result is ready
                                               (or TIMEOUT s), print
                                               {"state": ..., "result": repr}
  ctl.py peek TASK_ID                          print the current state now

Broker/backend from CELERY_BROKER_URL / CELERY_RESULT_BACKEND (omics_app).
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from omics_app import app  # noqa: E402


def main(argv):
    cmd = argv[1]
    if cmd == "send":
        queue, task, args = argv[2], argv[3], json.loads(argv[4])
        opts = {"queue": queue}
        if len(argv) > 5:
            opts["task_id"] = argv[5]
        r = app.send_task(task, args=args, **opts)
        print(r.id)
        return 0
    if cmd in ("state", "peek"):
        r = app.AsyncResult(argv[2])
        deadline = time.time() + (float(argv[3]) if cmd == "state" else 0)
        while cmd == "state" and not r.ready() and time.time() < deadline:
            time.sleep(0.05)
        print(json.dumps({"state": r.state, "result": repr(r.result)}))
        return 0
    print("unknown command", cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
