"""Assemble the per-run outputs of scripts/bench.sh into one JSON document
and print the side-by-side table with Go/Python ratios.

usage: bench_table.py RUNS_DIR OUT.json [--concurrency N] [--load-start L]
       [--load-end L] [--cpu NAME] [--cores N] [--redis V] [--rabbitmq V]
       [--celery V] [--celery55 V] [--go-version V] [--baseline OLD.json]

RUNS_DIR holds <kind>-idle.json and <kind>-<run>.txt files whose last line
is the JSON report of `omics-worker loadgen`. Runs: startup, noop and
progress (live: published while the worker consumes), noop-prefill and
progress-prefill (`loadgen --prefill`: published while the worker was
stopped, measured from its resume), noop-rate and progress-rate (latency at
a fixed rate).

Ratio columns: how many times better Go is (throughput: go/python;
latency, memory, startup, CPU: python/go). "best py" is, per row, the better
of the two Python 5.2 configurations py (prefork) and pythreads (-P
threads); go/py55 compares with celery 5.5's prefork worker. The ratios and
the printed table are written into OUT.json ("ratios", "table"). With
--baseline, the Go worker of an earlier run is shown next to this one
("go before", "go now/before", > 1 = better now). Our own code.
"""

import argparse
import json
import os
import platform

KINDS = [("go", "Go omics-worker"),
         ("py", "Python celery 5.2, prefork"),
         ("pythreads", "Python celery 5.2, -P threads"),
         ("py50", "Python celery 5.2, prefork, max_tasks_per_child=50"),
         ("py55", "Python celery 5.5, prefork"),
         ("go-amqp", "Go omics-worker on RabbitMQ"),
         ("py-amqp", "Python celery 5.2 prefork on RabbitMQ")]
RUNS = ["startup", "noop", "progress", "noop-prefill", "progress-prefill", "noop-rate", "progress-rate"]
# The Python 5.2 configurations a "best Python" is chosen from (py50 is the
# production recycling reference, not a candidate).
BEST_OF = ("py", "pythreads")
# Throughput cells of the ratio summary: (label, run).
THROUGHPUT = [("noop live", "noop"), ("noop prefilled", "noop-prefill"),
              ("progress live", "progress"), ("progress prefilled", "progress-prefill")]


def last_json(path):
    with open(path) as f:
        lines = [line for line in f.read().splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def load_workers(runs):
    workers = {}
    for kind, _ in KINDS:
        p = os.path.join(runs, kind + "-idle.json")
        if not os.path.exists(p):
            continue
        with open(p) as f:
            w = json.load(f)
        for run in RUNS:
            rp = os.path.join(runs, "%s-%s.txt" % (kind, run))
            if os.path.exists(rp):
                w[run] = last_json(rp)
        workers[kind] = w
    return workers


def getter(ws):
    def get(kind, run, *path):
        v = ws.get(kind, {}).get(run) if run else ws.get(kind)
        for k in path:
            if not isinstance(v, dict):
                return None
            v = v.get(k)
        return v
    return get


def rows_for(ws):
    """(name, value function of a kind, format, higher-is-better or None)."""
    get = getter(ws)

    def peak(kind):
        vals = [get(kind, r, "rss_peak_kib") for r in RUNS[1:]]
        vals = [v for v in vals if v]
        return max(vals) / 1024 if vals else None

    def mib(key):
        return lambda k: (get(k, None, key) or 0) / 1024 or None

    rows = []
    for label, run in THROUGHPUT:
        task = "progress(5)" if run.startswith("progress") else "noop"
        mode = label.split()[1]
        rows.append(("%s tasks/s %s" % (task, mode), (lambda r: lambda k: get(k, r, "tasks_per_s"))(run), "%.0f", True))
    rows += [
        ("publish s, noop prefilled", lambda k: get(k, "noop-prefill", "publish_s"), "%.3f", None),
        ("noop p50 ms @rate", lambda k: get(k, "noop-rate", "latency", "p50_ms"), "%.2f", False),
        ("noop p99 ms @rate", lambda k: get(k, "noop-rate", "latency", "p99_ms"), "%.2f", False),
        ("progress p50 ms @rate", lambda k: get(k, "progress-rate", "latency", "p50_ms"), "%.2f", False),
        ("progress p99 ms @rate", lambda k: get(k, "progress-rate", "latency", "p99_ms"), "%.2f", False),
        ("idle RSS MiB (sum)", mib("idle_rss_kib"), "%.1f", False),
        ("idle PSS MiB (sum)", mib("idle_pss_kib"), "%.1f", False),
        ("peak RSS MiB (sum)", peak, "%.1f", False),
        ("processes", lambda k: get(k, None, "procs"), "%d", None),
        ("startup ms", lambda k: get(k, None, "startup_ms"), "%.1f", False),
        ("startup ms w/o mingle", lambda k: get(k, None, "startup_without_mingle_ms"), "%.1f", False),
    ]
    for task in ("noop", "progress"):
        for mode, sfx in (("live", ""), ("prefilled", "-prefill")):
            run = task + sfx
            rows.append(("worker CPU us/%s %s" % (task, mode),
                         (lambda r: lambda k: get(k, r, "worker_cpu_us_per_task"))(run), "%.0f", False))
    for name, key, fmt in (("round trips", "round_trips_per_task", "%.2f"),
                           ("redis CPU us", "cpu_us_per_task", "%.0f"),
                           ("commands", "commands_per_task", "%.2f")):
        for task in ("noop", "progress"):
            for mode, sfx in (("live", ""), ("prefilled", "-prefill")):
                run = task + sfx
                rows.append(("%s/%s %s" % (name, task, mode),
                             (lambda r, kk: lambda k: get(k, r, "redis", kk))(run, key), fmt, False))
    return rows


def ratio(g, p, higher):
    """How many times better g is than p (None when not comparable)."""
    if not g or not p or higher is None:
        return None
    return (g / p) if higher else (p / g)


def best_python(vals, higher):
    """The better of the BEST_OF kinds present in vals: (kind, value)."""
    cands = [(k, vals[k]) for k in BEST_OF if vals.get(k)]
    if not cands or higher is None:
        return None, None
    pick = max if higher else min
    return pick(cands, key=lambda kv: kv[1])


def fmt_ratio(r):
    return "-" if r is None else "%.1fx" % r


def print_table(table):
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for i, r in enumerate(table):
        print("  ".join(c.ljust(widths[j]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(r)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("out")
    for opt in ("concurrency", "load-start", "load-end", "cpu", "cores", "redis", "rabbitmq", "celery",
                "celery55", "go-version", "baseline"):
        ap.add_argument("--" + opt, default="")
    a = ap.parse_args()

    doc = {"machine": {"cpu": a.cpu, "cores": a.cores, "kernel": platform.release(),
                       "loadavg_start": a.load_start, "loadavg_end": a.load_end,
                       "redis": a.redis, "rabbitmq": a.rabbitmq, "celery": a.celery,
                       "celery55": a.celery55, "omics_worker": a.go_version},
           "concurrency": a.concurrency, "workers": load_workers(a.runs)}
    ws = doc["workers"]
    base = None
    if a.baseline:
        with open(a.baseline) as f:
            base = json.load(f)
        doc["baseline"] = {"file": a.baseline, "machine": base.get("machine")}

    kinds = [k for k, _ in KINDS if k in ws]
    # Ratio columns: Go against each Python worker on the same broker.
    pairs = [("go", k) for k in ("py",) if "go" in ws and k in ws]
    has_best = "go" in ws and any(k in ws for k in BEST_OF)
    pairs_after = [("go", k) for k in ("py50", "py55") if "go" in ws and k in ws]
    if "go-amqp" in ws and "py-amqp" in ws:
        pairs_after.append(("go-amqp", "py-amqp"))
    hdr = ["metric"] + kinds + ["%s/%s" % pr for pr in pairs]
    if has_best:
        hdr += ["best py", "go/best"]
    hdr += ["%s/%s" % pr for pr in pairs_after]
    if base:
        hdr += ["go before", "go now/before"]

    rows = rows_for(ws)
    base_rows = {name: f for name, f, _, _ in rows_for(base.get("workers", {}))} if base else {}
    table = [hdr]
    for name, f, fmt, higher in rows:
        vals = {k: f(k) for k in kinds}
        row = [name] + [(fmt % vals[k]) if vals[k] is not None else "-" for k in kinds]
        row += [fmt_ratio(ratio(vals[g], vals[p], higher)) for g, p in pairs]
        if has_best:
            bk, bv = best_python(vals, higher)
            row += [bk or "-", fmt_ratio(ratio(vals.get("go"), bv, higher))]
        row += [fmt_ratio(ratio(vals[g], vals[p], higher)) for g, p in pairs_after]
        if base:
            old = base_rows[name]("go")
            row += [(fmt % old) if old is not None else "-", fmt_ratio(ratio(vals.get("go"), old, higher))]
        table.append(row)
    print_table(table)

    # The throughput ratios, live and prefilled, in one block.
    get = getter(ws)
    ratios = {}
    summary = [["go/python tasks/s"] + [label for label, _ in THROUGHPUT]]

    def add(name, cells, note=None):
        ratios[name] = {label: (round(r, 2) if r else None) for label, r in cells}
        if note:
            ratios[name]["best_of"] = note
        summary.append([name] + [fmt_ratio(r) + (" (%s)" % note[label] if note and note.get(label) else "")
                                 for label, r in cells])

    def tput(kind, run):
        return get(kind, run, "tasks_per_s")

    if "go" in ws:
        for p in ("py", "pythreads"):
            if p in ws:
                add("go/" + p, [(label, ratio(tput("go", run), tput(p, run), True)) for label, run in THROUGHPUT])
        if has_best:
            cells, note = [], {}
            for label, run in THROUGHPUT:
                bk, bv = best_python({k: tput(k, run) for k in BEST_OF}, True)
                cells.append((label, ratio(tput("go", run), bv, True)))
                note[label] = bk
            add("go/best py 5.2", cells, note)
        for p in ("py50", "py55"):
            if p in ws:
                add("go/" + p, [(label, ratio(tput("go", run), tput(p, run), True)) for label, run in THROUGHPUT])
    if "go-amqp" in ws and "py-amqp" in ws:
        add("go-amqp/py-amqp", [(label, ratio(tput("go-amqp", run), tput("py-amqp", run), True))
                                for label, run in THROUGHPUT])
    if len(summary) > 1:
        print()
        print_table(summary)

    m = doc["machine"]
    print("\nratio columns: how many times better Go is (throughput: go/py; latency, memory, startup, CPU: py/go);"
          "\n  live = published while the worker consumes; prefilled = queue filled with the worker stopped,"
          " measured from its resume;\n  best py = the better of py (prefork) and pythreads (-P threads) on that row")
    print("machine: %s, %s cores, load average %s at start, %s at end; redis %s, rabbitmq %s, celery %s%s; -c %s"
          % (m["cpu"], m["cores"], m["loadavg_start"], m["loadavg_end"], m["redis"], m["rabbitmq"] or "-",
             m["celery"], (", celery55 " + m["celery55"]) if m["celery55"] else "", a.concurrency))
    if base:
        print("baseline: %s (load average %s at start)" % (a.baseline, (base.get("machine") or {}).get("loadavg_start")))

    doc["ratios"] = ratios
    doc["table"] = table
    doc["ratio_table"] = summary
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
