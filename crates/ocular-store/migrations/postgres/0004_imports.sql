-- Resumable bulk imports shared by several processes: one job per source file (by digest),
-- fixed chunks claimed under a lease with FOR UPDATE SKIP LOCKED, one outcome per record.
CREATE TABLE import_jobs (
    id            text PRIMARY KEY,
    source        text NOT NULL,
    source_sha256 text NOT NULL,
    total_lines   bigint NOT NULL,
    chunk_lines   bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    finished_at   timestamptz
);
CREATE UNIQUE INDEX import_jobs_open ON import_jobs (source_sha256) WHERE finished_at IS NULL;

CREATE TABLE import_chunks (
    job_id        text NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    first_line    bigint NOT NULL,
    end_line      bigint NOT NULL,
    claimed_by    text,
    claimed_until timestamptz,
    done_at       timestamptz,
    PRIMARY KEY (job_id, first_line)
);

CREATE TABLE import_lines (
    job_id     text NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    line       bigint NOT NULL,
    ok         boolean NOT NULL,
    product_id text,
    error      text,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (job_id, line)
);
CREATE INDEX import_lines_failed ON import_lines (job_id, line) WHERE NOT ok;
