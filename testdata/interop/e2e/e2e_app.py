"""Client-side Celery app for the omics-worker end-to-end tests and demo.

Configured like the Omicsomics backend's app/celery_app.py (JSON only,
task_track_started, prefetch 1, the same task routes and default queue),
with the broker/backend from CELERY_BROKER_URL / CELERY_RESULT_BACKEND.
OMICS_E2E_QUEUE, when set, replaces the "file_processing" queue (tests use
unique queue names). The two tasks are declared with the Python signature
so that `process_file_async.delay(raw_file_id=..., sample_id=...)` is
exactly the call the FastAPI upload makes; their bodies never run here.
Our own code, written for these tests.
"""

import os

from celery import Celery

BROKER = os.getenv("CELERY_BROKER_URL", "redis://localhost:6379/0")
BACKEND = os.getenv("CELERY_RESULT_BACKEND", "redis://localhost:6379/0")
QUEUE = os.getenv("OMICS_E2E_QUEUE", "file_processing")
LARGE_QUEUE = os.getenv("OMICS_E2E_LARGE_QUEUE", "large_files")

celery_app = Celery("omicsomics", broker=BROKER, backend=BACKEND)
celery_app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    timezone="UTC",
    enable_utc=True,
    task_track_started=True,
    task_time_limit=3600,
    task_soft_time_limit=3300,
    worker_prefetch_multiplier=1,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
)
celery_app.conf.task_routes = {
    "app.tasks.file_tasks.process_file_async": {"queue": QUEUE},
    "app.tasks.file_tasks.process_large_file_async": {"queue": LARGE_QUEUE},
}


@celery_app.task(bind=True, name="app.tasks.file_tasks.process_file_async")
def process_file_async(self, raw_file_id, sample_id=None):
    raise RuntimeError("client-side declaration only: the Go worker runs this task")


@celery_app.task(bind=True, name="app.tasks.file_tasks.process_large_file_async")
def process_large_file_async(self, raw_file_id, sample_id=None):
    raise RuntimeError("client-side declaration only: the Go worker runs this task")
