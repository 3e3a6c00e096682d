"""Assemble the per-run outputs of scripts/bench.sh into one JSON document
and print the side-by-side table with Go/Python ratios.

usage: bench_table.py RUNS_DIR OUT.json [--concurrency N] [--load-start L]
       [--load-end L] [--cpu NAME] [--cores N] [--redis V] [--celery V]
       [--go-version V]

RUNS_DIR holds <kind>-idle.json and <kind>-<run>.txt files whose last line
is the JSON report of `omics-worker loadgen`. Our own code.
"""

import argparse
import json
import os
import platform

KINDS = [("go", "Go omics-worker"),
         ("py", "Python celery"),
         ("py50", "Python, max_tasks_per_child=50"),
         ("go-amqp", "Go omics-worker on RabbitMQ"),
         ("py-amqp", "Python celery on RabbitMQ")]
RUNS = ["startup", "noop", "progress", "noop-rate", "progress-rate"]


def last_json(path):
    with open(path) as f:
        lines = [l for l in f.read().splitlines() if l.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("out")
    for opt in ("concurrency", "load-start", "load-end", "cpu", "cores", "redis", "rabbitmq", "celery", "go-version"):
        ap.add_argument("--" + opt, default="")
    a = ap.parse_args()

    doc = {"machine": {"cpu": a.cpu, "cores": a.cores, "kernel": platform.release(),
                       "loadavg_start": a.load_start, "loadavg_end": a.load_end,
                       "redis": a.redis, "rabbitmq": a.rabbitmq, "celery": a.celery, "omics_worker": a.go_version},
           "concurrency": a.concurrency, "workers": {}}
    for kind, _ in KINDS:
        p = os.path.join(a.runs, kind + "-idle.json")
        if not os.path.exists(p):
            continue
        with open(p) as f:
            w = json.load(f)
        for run in RUNS:
            rp = os.path.join(a.runs, "%s-%s.txt" % (kind, run))
            if os.path.exists(rp):
                w[run] = last_json(rp)
        doc["workers"][kind] = w
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")

    ws = doc["workers"]

    def get(kind, run, *path):
        v = ws.get(kind, {}).get(run) if run else ws.get(kind)
        for k in path:
            if not isinstance(v, dict):
                return None
            v = v.get(k)
        return v

    def peak(kind):
        vals = [get(kind, r, "rss_peak_kib") for r in RUNS[1:]]
        vals = [v for v in vals if v]
        return max(vals) / 1024 if vals else None

    rows = [
        ("noop tasks/s", lambda k: get(k, "noop", "tasks_per_s"), "%.0f", True),
        ("progress(5) tasks/s", lambda k: get(k, "progress", "tasks_per_s"), "%.0f", True),
        ("noop p50 ms @rate", lambda k: get(k, "noop-rate", "latency", "p50_ms"), "%.2f", False),
        ("noop p99 ms @rate", lambda k: get(k, "noop-rate", "latency", "p99_ms"), "%.2f", False),
        ("progress p50 ms @rate", lambda k: get(k, "progress-rate", "latency", "p50_ms"), "%.2f", False),
        ("progress p99 ms @rate", lambda k: get(k, "progress-rate", "latency", "p99_ms"), "%.2f", False),
        ("idle RSS MiB (sum)", lambda k: (get(k, None, "idle_rss_kib") or 0) / 1024 or None, "%.1f", False),
        ("idle PSS MiB (sum)", lambda k: (get(k, None, "idle_pss_kib") or 0) / 1024 or None, "%.1f", False),
        ("peak RSS MiB (sum)", peak, "%.1f", False),
        ("processes", lambda k: get(k, None, "procs"), "%d", None),
        ("startup ms", lambda k: get(k, None, "startup_ms"), "%.1f", False),
        ("startup ms w/o mingle", lambda k: get(k, None, "startup_without_mingle_ms"), "%.1f", False),
        ("round trips/noop", lambda k: get(k, "noop", "redis", "round_trips_per_task"), "%.2f", False),
        ("round trips/progress", lambda k: get(k, "progress", "redis", "round_trips_per_task"), "%.2f", False),
        ("worker CPU us/noop", lambda k: get(k, "noop", "worker_cpu_us_per_task"), "%.0f", False),
        ("worker CPU us/progress", lambda k: get(k, "progress", "worker_cpu_us_per_task"), "%.0f", False),
        ("redis CPU us/noop", lambda k: get(k, "noop", "redis", "cpu_us_per_task"), "%.0f", False),
        ("redis CPU us/progress", lambda k: get(k, "progress", "redis", "cpu_us_per_task"), "%.0f", False),
        ("commands/noop", lambda k: get(k, "noop", "redis", "commands_per_task"), "%.2f", False),
        ("commands/progress", lambda k: get(k, "progress", "redis", "commands_per_task"), "%.2f", False),
    ]
    kinds = [k for k, _ in KINDS if k in ws]
    hdr = ["metric"] + kinds
    # Ratio columns: Go against each Python worker on the same broker.
    pairs = [("go", k) for k in ("py", "py50") if "go" in ws and k in ws]
    if "go-amqp" in ws and "py-amqp" in ws:
        pairs.append(("go-amqp", "py-amqp"))
    hdr += ["%s/%s" % pr for pr in pairs]
    table = [hdr]
    for name, f, fmt, higher in rows:
        vals = {k: f(k) for k in kinds}
        row = [name] + [(fmt % vals[k]) if vals[k] is not None else "-" for k in kinds]
        for gk, pk in pairs:
            g, p = vals[gk], vals[pk]
            if not g or not p or higher is None:
                row.append("-")
            else:
                # ratio > 1 means Go is better
                row.append("%.1fx" % ((g / p) if higher else (p / g)))
        table.append(row)
    widths = [max(len(r[i]) for r in table) for i in range(len(hdr))]
    for i, r in enumerate(table):
        print("  ".join(c.ljust(widths[j]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(r)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    m = doc["machine"]
    print("\nratio columns: how many times better Go is (throughput: go/py; latency, memory, startup: py/go)")
    print("machine: %s, %s cores, load average %s at start, %s at end; redis %s, rabbitmq %s, celery %s; -c %s"
          % (m["cpu"], m["cores"], m["loadavg_start"], m["loadavg_end"], m["redis"], m["rabbitmq"] or "-",
             m["celery"], a.concurrency))


if __name__ == "__main__":
    main()
