CREATE TABLE IF NOT EXISTS ocular_settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);
