"""End-to-end driver for omics-worker: the real Python Celery client side.

Run with Debian's /usr/bin/python3 (python3-celery, python3-redis,
python3-cryptography) from this directory. Subcommands (JSON in on stdin,
JSON out on stdout):

  run     enqueue process_file_async.delay(raw_file_id=..., sample_id=...)
          for every file of the plan, capture every state the worker
          publishes (psubscribe celery-task-meta-*), poll the status
          endpoint's logic (status.py) until every task is finished, and
          check: states in order, progress monotone, meta shapes, final
          result as expected. --live prints progress lines on stderr.
  verify  decrypt processed objects with `cryptography` (HKDF-SHA256 per
          user key from MASTER_KEY, AES-256-GCM nonce||ct||tag) and check
          that each parses as a UnifiedData document with the expected
          record count.

Our own code, written for the omics-worker tests and demo.
"""

import argparse
import gc
import json
import sys
import time

RANK = {"PENDING": 0, "STARTED": 1, "PROGRESS": 2, "RETRY": 2, "SUCCESS": 3, "FAILURE": 3}
OMICS = {"genomics", "transcriptomics", "proteomics", "metabolomics", "epigenomics", "single_cell", "multi_omics"}


def cmd_run(args):
    import redis
    from e2e_app import celery_app, process_file_async, process_large_file_async
    from status import task_status

    plan = json.load(sys.stdin)
    timeout = plan.get("timeout", 60)
    errors = []

    # celery 5.5.2 + redis-py >= 5 client deadlock (celery issue #10477,
    # fixed after 5.5.2): a cyclic garbage collection that lands inside the
    # result consumer's UNSUBSCRIBE runs AsyncResult.__del__, whose own
    # UNSUBSCRIBE re-enters redis-py's non-reentrant PubSub._lock and hangs
    # for ever. The status endpoint's AsyncResult-per-poll pattern hits it.
    # Collect only between polls, where no pub/sub lock is held.
    gc.disable()

    # Capture every state the worker stores: Celery publishes each one on
    # the channel named like the result key.
    r = redis.Redis.from_url(celery_app.conf.result_backend)
    ps = r.pubsub(ignore_subscribe_messages=True)
    ps.psubscribe("celery-task-meta-*")

    tasks = []
    for f in plan["files"]:
        task = process_large_file_async if f.get("large") else process_file_async
        if f.get("batch"):  # batch-upload omits sample_id
            res = task.delay(raw_file_id=f["raw_file_id"])
        elif "sample_id" in f:
            res = task.delay(raw_file_id=f["raw_file_id"], sample_id=f["sample_id"])
        else:
            res = task.delay(raw_file_id=f["raw_file_id"], sample_id=None)
        tasks.append({"file": f, "id": res.id, "seen": [], "published": [], "final": None})
    by_id = {t["id"]: t for t in tasks}

    races = []
    deadline = time.time() + timeout
    pending = list(tasks)
    while pending and time.time() < deadline:
        for t in list(pending):
            try:
                resp = task_status(celery_app, t["id"])
            except Exception as exc:  # the endpoint would answer HTTP 500
                races.append("%s: status endpoint raised %r" % (t["file"]["name"], exc))
                continue
            if not coherent(resp):
                # The endpoint read task.state more than once around a state
                # change (e.g. the PROGRESS branch answered with state
                # SUCCESS): an upstream race, not a worker fault. Poll again.
                races.append("%s: incoherent response %r" % (t["file"]["name"], resp))
                continue
            if not t["seen"] or t["seen"][-1] != resp:
                t["seen"].append(resp)
                if args.live:
                    extra = resp.get("error") or ""
                    print("  %-28s %-8s %3s%%  %s %s" % (t["file"]["name"], resp["state"], resp.get("progress", ""),
                                                         resp["status"], extra), file=sys.stderr, flush=True)
            if resp["state"] in ("SUCCESS", "FAILURE"):
                t["final"] = resp
                pending.remove(t)
        drain(ps, by_id)
        gc.collect()
        time.sleep(0.005)
    time.sleep(0.05)
    drain(ps, by_id)
    ps.close()

    for t in tasks:
        name = t["file"]["name"]
        if t["final"] is None:
            errors.append("%s: not finished within %ss (last %r)" % (name, timeout, t["seen"][-1:]))
            continue
        check_seen(name, t["seen"], errors)
        check_published(name, t["published"], t["file"]["expect"], errors)
        check_final(name, t["final"], t["file"]["expect"], errors)
    if races:
        # Legal-but-fragile endpoint behaviour (a state change between two
        # reads), not a worker fault: reported, not counted as errors.
        pass
    json.dump({
        "ok": not errors,
        "errors": errors,
        "races": races,
        "tasks": [{"name": t["file"]["name"], "task_id": t["id"], "final": t["final"],
                   "seen": t["seen"], "published": t["published"]} for t in tasks],
    }, sys.stdout, indent=1)
    return 0 if not errors else 1


def coherent(resp):
    """Whether a response's shape is the one of its state's branch."""
    st = resp.get("state")
    if st == "PENDING":
        return resp.get("status") == "Task is waiting to be processed"
    if st in ("STARTED", "PROGRESS"):
        return "progress" in resp and "result" not in resp and "error" not in resp
    if st == "SUCCESS":
        return resp.get("status") == "Processing complete" and "result" in resp
    if st == "FAILURE":
        return resp.get("status") == "Processing failed" and "error" in resp
    return "progress" not in resp


def drain(ps, by_id):
    while True:
        m = ps.get_message(timeout=0)
        if m is None:
            return
        if m.get("type") != "pmessage":
            continue
        chan = m["channel"].decode()
        tid = chan[len("celery-task-meta-"):]
        t = by_id.get(tid)
        if t is not None:
            meta = json.loads(m["data"])
            t["published"].append({"status": meta.get("status"), "result": meta.get("result")})


def check_seen(name, seen, errors):
    """Every status-endpoint response, in the order seen."""
    last_rank, last_progress = 0, 0
    for resp in seen:
        st = resp["state"]
        if st not in RANK:
            errors.append("%s: unexpected state %r" % (name, resp))
            continue
        if st == "RETRY":  # the retry starts over from STARTED
            last_rank, last_progress = 0, 0
            continue
        if RANK[st] < last_rank:
            errors.append("%s: state went back: %r" % (name, seen))
        last_rank = RANK[st]
        if st in ("STARTED", "PROGRESS", "PENDING"):
            if not isinstance(resp.get("progress"), int) or not isinstance(resp.get("status"), str):
                errors.append("%s: bad response %r" % (name, resp))
            elif resp["progress"] < last_progress:
                errors.append("%s: progress went back: %r" % (name, [s.get("progress") for s in seen]))
            else:
                last_progress = resp["progress"]


EXPECTED_STEPS = [
    ("STARTED", 0, "Starting file processing"),
    ("PROGRESS", 10, "Loading file metadata"),
    ("PROGRESS", 20, "Detecting file format"),
    ("PROGRESS", 40, "Converting to unified format"),
    ("PROGRESS", 70, "Saving processed data"),
    ("PROGRESS", 100, "Processing complete"),
]


def check_published(name, published, expect, errors):
    """Every state the worker stored, as published on the result channel."""
    steps = [[]]
    for p in published:
        st, res = p["status"], p["result"]
        if st == "RETRY":
            if not (isinstance(res, dict) and "exc_type" in res):
                errors.append("%s: RETRY result is not an exception dict: %r" % (name, res))
            steps.append([])
        elif st in ("STARTED", "PROGRESS"):
            if not isinstance(res, dict):
                errors.append("%s: %s meta is not an object: %r" % (name, st, res))
                continue
            if "pid" in res and "status" not in res:
                continue  # Celery's own track_started meta
            if res.get("bytes_done") is not None:
                if not (40 < res["progress"] < 70) or res["status"] != "Converting to unified format":
                    errors.append("%s: bad fine-grained progress %r" % (name, res))
                continue
            steps[-1].append((st, res.get("progress"), res.get("status")))
        elif st in ("SUCCESS", "FAILURE"):
            if st == "FAILURE" and not (isinstance(res, dict) and "exc_type" in res):
                errors.append("%s: FAILURE result is not an exception dict: %r" % (name, res))
    # Each attempt (a RETRY starts a new one) must follow the expected
    # steps: the whole list for the successful one, a prefix otherwise.
    want = [tuple(s) for s in EXPECTED_STEPS]
    for i, attempt in enumerate(steps):
        last = i == len(steps) - 1
        if last and expect.get("success"):
            # Full run, or the exactly-once shortcut of a duplicate
            # delivery (the raw row already links a processed row).
            if attempt != want and attempt != [want[0], want[1], want[5]]:
                errors.append("%s: stored steps %r, want %r" % (name, attempt, want))
        elif attempt != want[:len(attempt)]:
            errors.append("%s: stored steps %r are not a prefix of the expected ones" % (name, attempt))


def check_final(name, final, expect, errors):
    if expect.get("success"):
        if final["state"] != "SUCCESS":
            errors.append("%s: final %r, want SUCCESS" % (name, final))
            return
        res = final.get("result") or {}
        if list(res.keys()) != ["success", "processed_file_id", "omics_type", "record_count"]:
            errors.append("%s: result keys %r" % (name, list(res.keys())))
        if res.get("success") is not True or not isinstance(res.get("processed_file_id"), int):
            errors.append("%s: result %r" % (name, res))
        for k in ("omics_type", "record_count"):
            if k in expect and res.get(k) != expect[k]:
                errors.append("%s: result %s=%r, want %r" % (name, k, res.get(k), expect[k]))
        if final["status"] != "Processing complete" or final["progress"] != 100:
            errors.append("%s: final response %r" % (name, final))
    else:
        if final["state"] != "FAILURE" or final["status"] != "Processing failed" or final["progress"] != 0:
            errors.append("%s: final %r, want FAILURE" % (name, final))
            return
        want = expect.get("error")
        if want is not None and final.get("error") != want:
            errors.append("%s: error %r, want %r" % (name, final.get("error"), want))
        prefix = expect.get("error_prefix")
        if prefix is not None and not str(final.get("error")).startswith(prefix):
            errors.append("%s: error %r, want a message starting %r" % (name, final.get("error"), prefix))


def user_key(master_key, user_id):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    try:
        material = bytes.fromhex(master_key) if len(master_key) % 2 == 0 else master_key.encode()
    except ValueError:
        material = master_key.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=str(user_id).encode()).derive(material)


def check_unified(doc, records, omics_type):
    """Structural validation of UnifiedData (spec processing.md §5.1)."""
    problems = []
    if list(doc.keys()) != ["metadata", "headers", "records", "statistics"]:
        problems.append("top-level keys %r" % list(doc.keys()))
    md = doc.get("metadata", {})
    want_md = ["omics_type", "format_version", "source_format", "sample_id", "organism", "reference_genome",
               "created_at", "updated_at", "processing_steps", "custom_fields"]
    if list(md.keys()) != want_md:
        problems.append("metadata keys %r" % list(md.keys()))
    if md.get("omics_type") not in OMICS or (omics_type and md.get("omics_type") != omics_type):
        problems.append("omics_type %r" % md.get("omics_type"))
    if md.get("format_version") != "1.0.0":
        problems.append("format_version %r" % md.get("format_version"))
    if not all(isinstance(h, str) for h in doc.get("headers", [None])):
        problems.append("headers not strings")
    recs = doc.get("records")
    if not isinstance(recs, list) or len(recs) != records:
        problems.append("%s records, want %d" % (len(recs) if isinstance(recs, list) else recs, records))
    else:
        for rec in recs:
            if list(rec.keys()) != ["id", "values"] or not isinstance(rec["id"], str) or not isinstance(rec["values"], dict):
                problems.append("bad record %r" % rec)
                break
    if not isinstance(doc.get("statistics"), dict):
        problems.append("statistics %r" % doc.get("statistics"))
    return problems


def cmd_verify(args):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    req = json.load(sys.stdin)
    errors = []
    for it in req["items"]:
        with open(it["path"], "rb") as fh:
            blob = fh.read()
        key = user_key(req["master_key"], it["user_id"])
        try:
            plain = AESGCM(key).decrypt(blob[:12], blob[12:], None)
        except Exception as exc:
            errors.append("%s: decrypt: %r" % (it["name"], exc))
            continue
        if len(plain) != it.get("size", len(plain)):
            errors.append("%s: %d plaintext bytes, row says %d" % (it["name"], len(plain), it["size"]))
        try:
            doc = json.loads(plain.decode("utf-8"))
        except Exception as exc:
            errors.append("%s: not JSON: %r" % (it["name"], exc))
            continue
        for p in check_unified(doc, it["records"], it.get("omics_type")):
            errors.append("%s: %s" % (it["name"], p))
    json.dump({"ok": not errors, "errors": errors, "checked": len(req["items"])}, sys.stdout)
    return 0 if not errors else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("--live", action="store_true")
    sub.add_parser("verify")
    args = ap.parse_args()
    return {"run": cmd_run, "verify": cmd_verify}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
