"""Celery app for `make bench` (scripts/bench.sh): the interop app
(../omics_app.py, configured like Omicsomics' backend/app/celery_app.py, with
the Python twins of the diag.* tasks from ../diag_tasks.py) plus the time
limits of the production config, which omics_app.py leaves out:
task_time_limit=3600, task_soft_time_limit=3300. Acks stay early (Celery's
default, as in Omicsomics); worker_max_tasks_per_child comes from
OMICS_TEST_MAX_TASKS_PER_CHILD (production: 50).

Run from this directory with PYTHONPATH=.. (scripts/bench.sh does):
  /usr/bin/python3 -m celery -A bench_app worker -c 2 --prefetch-multiplier 1 -Q QUEUE
Our own code, written for the benchmark.
"""

from omics_app import app  # noqa: F401  (also registers diag.*)

app.conf.update(
    task_time_limit=3600,
    task_soft_time_limit=3300,
)
