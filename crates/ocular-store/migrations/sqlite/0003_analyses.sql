-- Stored skin-lesion analyses. Images are nullable columns placed last, so listings (which
-- never read them) do not load their overflow pages and a retention purge just sets NULL.
CREATE TABLE analyses (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    created_at     INTEGER NOT NULL,
    input          TEXT NOT NULL,
    result         TEXT NOT NULL,
    timings        TEXT NOT NULL,
    thumbnail_jpeg BLOB,
    heatmap_jpeg   BLOB
);
CREATE INDEX analyses_newest ON analyses (created_at DESC, seq DESC);
