-- Stored skin-lesion analyses. Images are nullable bytea columns: PostgreSQL keeps large values
-- out of line (TOAST), so listings that never read them never load them, and a purge sets NULL.
CREATE TABLE analyses (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             text NOT NULL UNIQUE,
    created_at     timestamptz NOT NULL,
    input          jsonb NOT NULL,
    result         jsonb NOT NULL,
    timings        jsonb NOT NULL,
    thumbnail_jpeg bytea,
    heatmap_jpeg   bytea
);
CREATE INDEX analyses_newest ON analyses (created_at DESC, seq DESC);
