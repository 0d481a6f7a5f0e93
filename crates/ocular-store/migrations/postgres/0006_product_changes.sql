-- Version 6 is SQLite's change feed (`product_changes`, see migrations/sqlite/). PostgreSQL
-- needs none: every replica searches the vectors where they are stored (pgvector), so a write
-- from any process is seen by the next search without anyone being told. The step exists to
-- keep the version numbers of both backends one to one.
SELECT 1;
