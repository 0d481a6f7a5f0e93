-- The change feed: which products' vectors changed, in commit order, newest change per product.
-- A server keeps every space's vectors in memory; another process writing the same file
-- (`ocular import` beside `ocular serve`) would otherwise stay invisible to its searches until a
-- restart. The server polls this table (after `PRAGMA data_version` says something committed)
-- and re-reads the vectors of each product listed after the last `seq` it applied.
--
-- Triggers write it, not application code, so no writer in any process, present or future,
-- can forget to, and a row commits in the same transaction as the vectors it announces.
-- A change replaces the product's previous row (delete, then insert with a new `seq`): the table
-- holds one row per product ever changed, and a reader behind by many writes reads each product
-- once. Deleting a product cascades to its vectors and so leaves a row too; rows of deleted
-- products are pruned after a while (`ChangeFeed::prune_changes`).
CREATE TABLE product_changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    product_seq INTEGER NOT NULL UNIQUE,
    -- Microseconds since the Unix epoch, like every timestamp of the catalog.
    changed_at  INTEGER NOT NULL
);
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
