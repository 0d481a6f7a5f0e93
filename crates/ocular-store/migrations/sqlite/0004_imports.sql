-- Resumable bulk imports: one job per source file (by digest), fixed chunks of records claimed
-- under a lease, and one outcome per record.
CREATE TABLE import_jobs (
    id            TEXT PRIMARY KEY,
    source        TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    total_lines   INTEGER NOT NULL,
    chunk_lines   INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    finished_at   INTEGER
);
-- At most one unfinished job per file: a second `ocular import` of the same bytes resumes it.
CREATE UNIQUE INDEX import_jobs_open ON import_jobs (source_sha256) WHERE finished_at IS NULL;

CREATE TABLE import_chunks (
    job_id        TEXT NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    first_line    INTEGER NOT NULL,
    end_line      INTEGER NOT NULL,
    claimed_by    TEXT,
    claimed_until INTEGER,
    done_at       INTEGER,
    PRIMARY KEY (job_id, first_line)
) WITHOUT ROWID;

CREATE TABLE import_lines (
    job_id     TEXT NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    line       INTEGER NOT NULL,
    ok         INTEGER NOT NULL CHECK (ok IN (0, 1)),
    product_id TEXT,
    error      TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, line)
) WITHOUT ROWID;
CREATE INDEX import_lines_failed ON import_lines (job_id, line) WHERE ok = 0;
