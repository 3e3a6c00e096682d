"""The FastAPI status endpoint's logic (GET /api/v1/data/task/{id}/status).

A re-statement, in our own words, of the branches documented in spec
processing.md §8.1: it builds an AsyncResult and reads `task.state` afresh
for every test, exactly as the endpoint does, so a state change between two
reads behaves as it would in the app. Exceptions propagate (the endpoint
would answer HTTP 500).
"""

from celery.result import AsyncResult


def task_status(app, task_id):
    task = AsyncResult(task_id, app=app)
    if task.state == "PENDING":
        return {"state": task.state, "status": "Task is waiting to be processed", "progress": 0}
    if task.state == "STARTED" or task.state == "PROGRESS":
        info = task.info
        return {
            "state": task.state,
            "status": info.get("status", "Processing..."),
            "progress": info.get("progress", 0),
        }
    if task.state == "SUCCESS":
        return {"state": task.state, "status": "Processing complete", "progress": 100, "result": task.result}
    if task.state == "FAILURE":
        return {"state": task.state, "status": "Processing failed", "progress": 0, "error": str(task.info)}
    return {"state": task.state, "status": str(task.info)}
