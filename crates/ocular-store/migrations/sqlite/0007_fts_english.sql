-- English full-text search (issue 19): the porter stemmer over unicode61, so "cups" finds
-- "cup" and "brewing" finds "brewed". A tokenizer is fixed when an FTS5 table is created, so the
-- table, its vocabulary view and the triggers are made again and the index refilled from
-- `products` (the text lives only there: the table is contentless). Stop words are left out
-- of queries, not of the index (ocular-store/src/terms.rs).
DROP TRIGGER products_fts_insert;
DROP TRIGGER products_fts_update;
DROP TRIGGER products_fts_delete;
DROP TABLE products_fts_vocab;
DROP TABLE products_fts;

CREATE VIRTUAL TABLE products_fts USING fts5 (
    title, description, category,
    content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE products_fts_vocab USING fts5vocab (products_fts, 'row');
INSERT INTO products_fts (rowid, title, description, category)
SELECT seq, title, description, category FROM products;
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
