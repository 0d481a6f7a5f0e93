-- Several photos per product (issue 19). A product keeps its main photo in `image_url` /
-- `image_sha256` (photo 0) and its further photos in `images`, a JSON array of
-- {"url", "sha256"} objects (photo i = images[i - 1]); every photo has its own vector per photo
-- space, so `product_embeddings` gains `photo` (0 for the main photo and for text vectors) and
-- its key becomes (product, space, photo).
ALTER TABLE products ADD COLUMN images TEXT NOT NULL DEFAULT '[]';

-- The uploads further photos show, one row per (product, upload): what keeps the retention
-- sweep and the orphan check from deleting a photo a product still shows, answered from the
-- index on `sha256` instead of reading every product's JSON.
CREATE TABLE product_photo_images (
    product_seq INTEGER NOT NULL REFERENCES products (seq) ON DELETE CASCADE,
    sha256      TEXT NOT NULL REFERENCES product_images (sha256),
    PRIMARY KEY (product_seq, sha256)
) WITHOUT ROWID;
CREATE INDEX product_photo_images_sha256 ON product_photo_images (sha256);

-- SQLite cannot change a table's UNIQUE constraint: the table is made again and the rows
-- copied (every stored vector is photo 0). Dropping the old table drops its indexes and the
-- change-feed triggers of migration 6, made again below on the new one; the copy itself fires
-- none (they are on the old table), and a reader of the feed loses nothing: the vectors are
-- the same.
CREATE TABLE product_embeddings_photos (
    product_seq INTEGER NOT NULL REFERENCES products (seq) ON DELETE CASCADE,
    space       TEXT NOT NULL,
    photo       INTEGER NOT NULL DEFAULT 0,
    model       TEXT NOT NULL,
    dim         INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    vector      BLOB NOT NULL,
    UNIQUE (product_seq, space, photo)
);
INSERT INTO product_embeddings_photos (product_seq, space, photo, model, dim, created_at, vector)
SELECT product_seq, space, 0, model, dim, created_at, vector FROM product_embeddings;
DROP TABLE product_embeddings;
ALTER TABLE product_embeddings_photos RENAME TO product_embeddings;
CREATE INDEX product_embeddings_space ON product_embeddings (space, product_seq);
CREATE INDEX product_embeddings_model ON product_embeddings (space, model, dim);

CREATE TRIGGER product_changes_insert AFTER INSERT ON product_embeddings BEGIN
    DELETE FROM product_changes WHERE product_seq = new.product_seq;
    INSERT INTO product_changes (product_seq, changed_at)
    VALUES (new.product_seq, CAST(unixepoch('subsec') * 1000000 AS INTEGER));
END;
CREATE TRIGGER product_changes_update AFTER UPDATE ON product_embeddings BEGIN
    DELETE FROM product_changes WHERE product_seq = new.product_seq;
    INSERT INTO product_changes (product_seq, changed_at)
    VALUES (new.product_seq, CAST(unixepoch('subsec') * 1000000 AS INTEGER));
END;
CREATE TRIGGER product_changes_delete AFTER DELETE ON product_embeddings BEGIN
    DELETE FROM product_changes WHERE product_seq = old.product_seq;
    INSERT INTO product_changes (product_seq, changed_at)
    VALUES (old.product_seq, CAST(unixepoch('subsec') * 1000000 AS INTEGER));
END;
