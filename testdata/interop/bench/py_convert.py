"""Run the Python Omicsomics conversion path on one file, for
scripts/bench-convert.sh: FileProcessor.process_file_async(bytes, filename)
then FileProcessor.serialize_unified_data (json.dumps(model_dump(mode="json"),
indent=2)), exactly what the Celery task does before uploading the JSON.

usage: python3 py_convert.py ORACLE_DIR FILE [OUT.json]

ORACLE_DIR holds a copy of the Omicsomics backend's app/converters,
app/schemas and app/services/file_processor.py (never committed here; see
spec/processing.md §10) and a stub `pandas` package in ORACLE_DIR/stubs.
Needs pydantic v2 (the pyenv python3 on this machine, not /usr/bin/python3).
Prints one JSON line: records, converted, json_bytes, seconds, maxrss_kib.
Our own code.
"""

import asyncio
import json
import logging
import os
import resource
import sys
import time


def main():
    oracle, path = sys.argv[1], sys.argv[2]
    out = sys.argv[3] if len(sys.argv) > 3 else os.devnull
    for stub in ("stubs", "e3stub"):
        if os.path.isdir(os.path.join(oracle, stub)):
            sys.path.insert(0, os.path.join(oracle, stub))
            break
    sys.path.insert(0, oracle)
    logging.disable(logging.CRITICAL)
    from app.services.file_processor import FileProcessor

    t0 = time.perf_counter()
    with open(path, "rb") as f:
        content = f.read()
    res = asyncio.run(FileProcessor.process_file_async(content, os.path.basename(path)))
    if not res.get("success"):
        print(json.dumps({"error": res.get("error")}))
        sys.exit(1)
    ud = res["unified_data"]
    data = FileProcessor.serialize_unified_data(ud)
    with open(out, "wb") as f:
        f.write(data)
    secs = time.perf_counter() - t0
    info = res.get("processing_info", {})
    print(json.dumps({
        "records": len(ud.records),
        "converted": info.get("converted"),
        "omics_type": info.get("omics_type"),
        "source_format": info.get("source_format"),
        "json_bytes": len(data),
        "seconds": secs,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


main()
