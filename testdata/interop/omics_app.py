"""Celery app for the omics-worker interop tests and benchmarks.

Configured like the Omicsomics backend's app/celery_app.py (JSON only,
task_track_started, worker_prefetch_multiplier=1, Redis broker and result
backend from CELERY_BROKER_URL / CELERY_RESULT_BACKEND), plus test knobs read
from the environment:

  OMICS_TEST_QUEUE          task_default_queue (default "file_processing")
  OMICS_TEST_VISIBILITY     broker visibility_timeout in seconds (default 3600)
  OMICS_TEST_MAX_TASKS_PER_CHILD  worker_max_tasks_per_child (default unset)

Importing it also registers the Python equivalents of the Go diag.* tasks
(diag_tasks.py), so `python3 -m celery -A omics_app worker` can share a
queue with the Go worker. Our own code, written for these tests.
"""

import os

from celery import Celery

BROKER = os.getenv("CELERY_BROKER_URL", "redis://localhost:6379/0")
BACKEND = os.getenv("CELERY_RESULT_BACKEND", "redis://localhost:6379/0")
QUEUE = os.getenv("OMICS_TEST_QUEUE", "file_processing")

app = Celery("omicsomics", broker=BROKER, backend=BACKEND)

conf = dict(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    timezone="UTC",
    enable_utc=True,
    task_track_started=True,
    worker_prefetch_multiplier=1,
    task_default_queue=QUEUE,
    broker_transport_options={
        "visibility_timeout": float(os.getenv("OMICS_TEST_VISIBILITY", "3600")),
    },
    broker_connection_retry_on_startup=True,
)
if os.getenv("OMICS_TEST_MAX_TASKS_PER_CHILD"):
    conf["worker_max_tasks_per_child"] = int(os.environ["OMICS_TEST_MAX_TASKS_PER_CHILD"])
app.conf.update(conf)

import diag_tasks  # noqa: E402,F401  (registers diag.* on app)
