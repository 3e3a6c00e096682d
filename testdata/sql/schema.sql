-- Omicsomics data_files and the minimal tables its foreign keys point at.
-- Written by hand from the Alembic migrations 5e8f44ef46d2 (users,
-- projects), 0002_add_runs_and_datafiles (runs, data_files) and
-- 83e6f8cb0bc7 (NOT NULL timestamps, indexes). Columns of users/projects/
-- runs not needed as FK targets by the worker are kept only where NOT NULL.
-- Idempotent: safe to run on a database that already has the tables.

CREATE TABLE IF NOT EXISTS users (
    id              SERIAL PRIMARY KEY,
    email           VARCHAR NOT NULL,
    hashed_password VARCHAR NOT NULL,
    full_name       VARCHAR,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX IF NOT EXISTS ix_users_email ON users (email);

CREATE TABLE IF NOT EXISTS projects (
    id          SERIAL PRIMARY KEY,
    name        VARCHAR(255) NOT NULL,
    description TEXT NOT NULL,
    owner_id    INTEGER NOT NULL REFERENCES users (id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS runs (
    id          SERIAL PRIMARY KEY,
    name        VARCHAR(255) NOT NULL,
    description TEXT NOT NULL,
    status      VARCHAR(50) NOT NULL,
    project_id  INTEGER NOT NULL REFERENCES projects (id),
    owner_id    INTEGER NOT NULL REFERENCES users (id),
    started_at  TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS data_files (
    id             SERIAL PRIMARY KEY,
    filename       VARCHAR(512) NOT NULL,
    object_key     VARCHAR(1024) NOT NULL UNIQUE,
    metadata       JSON NOT NULL,
    size           BIGINT NOT NULL,
    checksum       VARCHAR(128) NOT NULL,
    project_id     INTEGER NOT NULL REFERENCES projects (id),
    run_id         INTEGER REFERENCES runs (id),
    uploaded_by_id INTEGER NOT NULL REFERENCES users (id),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ix_data_files_filename ON data_files (filename);
CREATE INDEX IF NOT EXISTS ix_data_files_id ON data_files (id);
