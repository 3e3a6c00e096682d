// Package omicsapp emulates the Omicsomics FastAPI side of a file task,
// for `omics-worker demo-seed`, `make demo` and the end-to-end tests:
//
//   - Seeder stores files as the upload endpoint does
//     (services/datafiles.create_datafile: encrypted object + raw
//     data_files row) and says what the worker must produce for each
//     (a Plan, the input of testdata/interop/e2e/e2e.py);
//   - Enqueue publishes process_file_async(raw_file_id=..., sample_id=None)
//     as delay() does, for machines without the Python Celery;
//   - Status answers GET /data/task/{id}/status from the result backend
//     (spec processing.md §8.1), and Watch polls it until every task ends.
//
// The broker and the result backend are consumer-declared interfaces
// (Publisher, ResultSource); cmd/omics-worker wires the Redis ones.
package omicsapp
