"""Stamping helper for the celery 5.5 remote-control interop tests
(cmd/omics-worker/control55_test.go). Our own code; run with
scripts/celery55.sh python3 (stamping needs celery >= 5.3).

  stamps.py send QUEUE TASK ARGS_JSON NAME VALUE   publish a task stamped
                                                   NAME=VALUE, print its id
  stamps.py revoke NODE NAME VALUE [terminate]     app.control.
                                                   revoke_by_stamped_headers,
                                                   print the replies as JSON

Broker/backend from CELERY_BROKER_URL / CELERY_RESULT_BACKEND (omics_app).
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from omics_app import app  # noqa: E402


def main(argv):
    cmd = argv[1]
    if cmd == "send":
        queue, task, args, name, value = argv[2], argv[3], json.loads(argv[4]), argv[5], argv[6]
        sig = app.signature(task, args=args, queue=queue)
        sig.stamp(**{name: value})
        print(sig.apply_async().id)
        return 0
    if cmd == "revoke":
        node, name, value = argv[2], argv[3], argv[4]
        terminate = len(argv) > 5 and argv[5] == "terminate"
        r = app.control.revoke_by_stamped_headers({name: value}, destination=[node], terminate=terminate,
                                                  reply=True, timeout=20, limit=1)
        print(json.dumps(r))
        return 0
    print("unknown command", cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
