-- omics-worker's own side table (not part of the Omicsomics schema): the
-- processed objects a task is about to upload or has uploaded but not yet
-- committed. A row is written BEFORE the upload and deleted by the
-- transaction that commits the processed row (SaveProcessed), so a row that
-- still exists names an object no committed row references. "doomed" marks
-- a row whose object is being deleted: the commit refuses it from then on.
-- Created lazily and idempotently by the worker (EnsurePendingTable).
CREATE TABLE IF NOT EXISTS omics_worker_pending_objects (
    object_key  VARCHAR(1024) PRIMARY KEY,
    raw_file_id BIGINT NOT NULL,
    task_id     TEXT NOT NULL DEFAULT '',
    doomed      BOOLEAN NOT NULL DEFAULT false,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ix_omics_worker_pending_objects_raw
    ON omics_worker_pending_objects (raw_file_id);
