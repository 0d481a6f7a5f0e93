-- The product catalog: products, uploaded images, embeddings, full-text index.
-- Timestamps are INTEGER microseconds since the Unix epoch (UTC), PostgreSQL's precision.

-- Uploaded images, addressed by content. In the database rather than in files so that replicas
-- sharing a database share images and a backup is one file.
CREATE TABLE product_images (
    sha256       TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    bytes        BLOB NOT NULL
);

-- AUTOINCREMENT: a deleted product's key is never given to another product, so a vector index
-- or a client holding a stale key can never confuse two products.
CREATE TABLE products (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    title        TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    category     TEXT,
    price        REAL,
    currency     TEXT,
    image_url    TEXT,
    image_sha256 TEXT REFERENCES product_images (sha256),
    attributes   TEXT NOT NULL DEFAULT '{}',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
-- Filters (category, price range) are answered from these indexes alone, without reading
-- product rows: the rowid (`seq`) is part of every index entry.
CREATE INDEX products_category ON products (category, price);
CREATE INDEX products_price ON products (price);
CREATE INDEX products_image ON products (image_sha256) WHERE image_sha256 IS NOT NULL;

-- One vector per (product, space), little-endian f32 bytes. The (space, model, dim) index
-- answers the model census and the dimension check without reading vectors.
CREATE TABLE product_embeddings (
    product_seq INTEGER NOT NULL REFERENCES products (seq) ON DELETE CASCADE,
    space       TEXT NOT NULL,
    model       TEXT NOT NULL,
    dim         INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    vector      BLOB NOT NULL,
    UNIQUE (product_seq, space)
);
CREATE INDEX product_embeddings_space ON product_embeddings (space, product_seq);
CREATE INDEX product_embeddings_model ON product_embeddings (space, model, dim);

-- Contentless-delete FTS5: the text lives once, in `products`; the index is kept in step by
-- triggers, and deleting by rowid needs no copy of the old text.
CREATE VIRTUAL TABLE products_fts USING fts5 (
    title, description, category,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
-- Per-term document counts, read to drop query words too common to rank by (see sqlite/fts.rs).
CREATE VIRTUAL TABLE products_fts_vocab USING fts5vocab (products_fts, 'row');
CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN
    INSERT INTO products_fts (rowid, title, description, category)
    VALUES (new.seq, new.title, new.description, new.category);
END;
CREATE TRIGGER products_fts_update AFTER UPDATE OF title, description, category ON products BEGIN
    DELETE FROM products_fts WHERE rowid = old.seq;
    INSERT INTO products_fts (rowid, title, description, category)
    VALUES (new.seq, new.title, new.description, new.category);
END;
CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN
    DELETE FROM products_fts WHERE rowid = old.seq;
END;
