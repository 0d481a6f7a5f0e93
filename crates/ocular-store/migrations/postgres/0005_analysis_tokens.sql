-- Analyses are private: each one opens with a capability token given once to the person who
-- made it. Only its SHA-256 is stored (hex), so a copy of the database opens nothing. Rows
-- stored before this migration keep NULL: only the API key opens them.
ALTER TABLE analyses ADD COLUMN token_sha256 text;
