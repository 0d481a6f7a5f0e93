//! Versioned schema migrations, applied in order and recorded in `schema_migrations`.
//!
//! Each migration is a name and SQL; a migration once released is never edited, only followed
//! by a new one. Backends keep their own SQL lists with the same version numbers.

/// One schema step.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// SQLite migrations.
pub const SQLITE: &[Migration] = &[Migration {
    version: 1,
    name: "initial",
    sql: "CREATE TABLE IF NOT EXISTS ocular_settings (
              key   TEXT PRIMARY KEY,
              value TEXT NOT NULL
          );",
}];
