-- Several photos per product (issue 19), as SQLite's 0008_photos.sql: further photos in
-- `products.images` (a JSON array of {"url", "sha256"}; photo i = images[i - 1], photo 0 the
-- main `image_url` / `image_sha256`), one vector per (product, space, photo).
ALTER TABLE products ADD COLUMN images jsonb NOT NULL DEFAULT '[]';

-- The uploads further photos show: keeps the retention sweep and the orphan check from
-- deleting a photo a product still shows, answered by index.
CREATE TABLE product_photo_images (
    product_seq bigint NOT NULL REFERENCES products (seq) ON DELETE CASCADE,
    sha256      text NOT NULL REFERENCES product_images (sha256),
    PRIMARY KEY (product_seq, sha256)
);
CREATE INDEX product_photo_images_sha256 ON product_photo_images (sha256);

-- Every stored vector is photo 0. The partial HNSW indexes (on the vector, per space and
-- dimension) are unaffected.
ALTER TABLE product_embeddings ADD COLUMN photo smallint NOT NULL DEFAULT 0 CHECK (photo >= 0);
ALTER TABLE product_embeddings DROP CONSTRAINT product_embeddings_pkey;
ALTER TABLE product_embeddings ADD PRIMARY KEY (product_seq, space, photo);
