-- English full-text search (issue 19): the generated tsvector uses the 'english' configuration
-- (Snowball stemming, English stop words) instead of 'simple', so "cups" finds "cup". Queries
-- use the same configuration (postgres/fts.rs). A generated column's expression cannot be
-- altered, so the column and its GIN index are made again (the table is rewritten once).
DROP INDEX products_search;
ALTER TABLE products DROP COLUMN search;
ALTER TABLE products ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english'::regconfig, ocular_fold(title)), 'A') ||
    setweight(to_tsvector('english'::regconfig, ocular_fold(coalesce(category, ''))), 'B') ||
    setweight(to_tsvector('english'::regconfig, ocular_fold(description)), 'C')
) STORED;
CREATE INDEX products_search ON products USING gin (search);
