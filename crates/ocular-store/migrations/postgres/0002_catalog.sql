-- The product catalog on PostgreSQL: the SQLite schema (0002_catalog.sql there) mapped one to one,
-- with pgvector columns for embeddings and a generated tsvector for full-text search.

-- A no-op where an administrator already created the extension (managed databases often
-- reserve CREATE EXTENSION for them); otherwise needs the privilege once.
CREATE EXTENSION IF NOT EXISTS vector;

-- Accents folded away before indexing and querying, as SQLite's `remove_diacritics`: decompose
-- (NFD), drop the combining marks, recompose (NFC, so Hangul and the like stay whole). Built-in
-- functions only, so it needs no `unaccent` extension (not every server has it); IMMUTABLE so a
-- generated column may use it. Requires a UTF8 database, the default everywhere.
CREATE FUNCTION ocular_fold(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT normalize(regexp_replace(normalize(t, NFD),
          '[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]', '', 'g'), NFC) $$;

-- Uploaded images, addressed by content; in the database so replicas share them.
CREATE TABLE product_images (
    sha256       text PRIMARY KEY,
    content_type text NOT NULL,
    size         bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    bytes        bytea NOT NULL
);

-- An identity column is backed by a sequence: a deleted product's key is never handed out
-- again, on any replica (sequence values are never rolled back either).
CREATE TABLE products (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text NOT NULL UNIQUE,
    title        text NOT NULL,
    description  text NOT NULL DEFAULT '',
    category     text,
    price        double precision,
    currency     text,
    image_url    text,
    image_sha256 text REFERENCES product_images (sha256),
    attributes   jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    -- Weights as SQLite's BM25 column weights: title (A) over category (B) over description (C).
    -- Generated, so no write path can forget it; the 'simple' configuration does not stem and
    -- has no stop words, like FTS5's unicode61 tokenizer.
    search       tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple'::regconfig, ocular_fold(title)), 'A') ||
        setweight(to_tsvector('simple'::regconfig, ocular_fold(coalesce(category, ''))), 'B') ||
        setweight(to_tsvector('simple'::regconfig, ocular_fold(description)), 'C')
    ) STORED
);
CREATE INDEX products_category ON products (category, price);
CREATE INDEX products_price ON products (price);
CREATE INDEX products_image ON products (image_sha256) WHERE image_sha256 IS NOT NULL;
CREATE INDEX products_search ON products USING gin (search);

-- One table for every space, not one per space: spaces and dimensions are data (a new model is
-- a new (space, model, dim)), and DDL at run time on a request path is what this avoids. The
-- column is an unsized `vector`; `dim` states its length (checked) and every (space, dim) gets a
-- partial HNSW index on the normalised vector, created by `PgVectorIndex::ensure_index`.
CREATE TABLE product_embeddings (
    product_seq bigint NOT NULL REFERENCES products (seq) ON DELETE CASCADE,
    space       text NOT NULL,
    model       text NOT NULL,
    dim         integer NOT NULL CHECK (dim > 0),
    created_at  timestamptz NOT NULL,
    vector      vector NOT NULL CHECK (vector_dims(vector) = dim),
    PRIMARY KEY (product_seq, space)
);
CREATE INDEX product_embeddings_space ON product_embeddings (space, product_seq);
CREATE INDEX product_embeddings_model ON product_embeddings (space, model, dim);
