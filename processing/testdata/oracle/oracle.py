#!/usr/bin/env python3
"""Run the Omicsomics Python converters (the reference oracle) on one file.

Our own driver script. The Omicsomics sources are NOT part of this
repository: copy backend/app/{converters,schemas,services/file_processor.py}
of Jeblqr/Omicsomics into <repo>/.oracle/app/ (git-ignored) and put a stub
pandas package in <repo>/.oracle/stubs/pandas/ (see processing/testdata/README
section in testdata/README.md). Then:

    python3 oracle.py FILE [--name NAME] [--sample-id ID] [--project-id N]
                          [--organism O] [--reference-genome G] [--info OUT]

prints the UnifiedData document exactly as FileProcessor.serialize_unified_data
writes it (created_at/updated_at fixed to 2025-01-02T03:04:05.123456 and
2025-01-02T03:04:05) and writes processing_info (json.dumps, indent=2) to
--info when given. Needs Python 3.11 with pydantic 2.
"""
import argparse
import asyncio
import datetime
import io
import json
import logging
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.environ.get("ORACLE_DIR") or os.path.join(here, "..", "..", "..", ".oracle")
sys.path[:0] = [os.path.join(root, "stubs"), root]
logging.disable(logging.CRITICAL)

from app.services.file_processor import FileProcessor  # noqa: E402

CREATED = datetime.datetime(2025, 1, 2, 3, 4, 5, 123456)
UPDATED = datetime.datetime(2025, 1, 2, 3, 4, 5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--name")
    ap.add_argument("--sample-id")
    ap.add_argument("--project-id", type=int, default=0)
    ap.add_argument("--organism")
    ap.add_argument("--reference-genome")
    ap.add_argument("--info")
    a = ap.parse_args()
    meta = {}
    if a.organism:
        meta["organism"] = a.organism
    if a.reference_genome:
        meta["reference_genome"] = a.reference_genome
    with open(a.file, "rb") as f:
        data = f.read()
    name = a.name or os.path.basename(a.file)
    doc, info = asyncio.run(FileProcessor.process_file(
        io.BytesIO(data), name, a.project_id, sample_id=a.sample_id,
        metadata=meta or None))
    doc.metadata.created_at = CREATED
    doc.metadata.updated_at = UPDATED
    sys.stdout.buffer.write(FileProcessor.serialize_unified_data(doc))
    if a.info:
        with open(a.info, "w") as f:
            f.write(json.dumps(info, indent=2, default=str))


if __name__ == "__main__":
    main()
