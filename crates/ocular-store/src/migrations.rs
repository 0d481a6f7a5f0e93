//! Versioned schema migrations, applied in order and recorded in `schema_migrations`.
//!
//! Each migration is a name and SQL; a migration once released is never edited, only followed
//! by a new one. Backends keep their own SQL lists with the same version numbers. The SQL of
//! migrations after the first lives in `migrations/<backend>/NNNN_name.sql`, readable on its own.

/// One schema step.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// SQLite migrations.
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: "CREATE TABLE IF NOT EXISTS ocular_settings (
              key   TEXT PRIMARY KEY,
              value TEXT NOT NULL
          );",
    },
    Migration { version: 2, name: "catalog", sql: include_str!("../migrations/sqlite/0002_catalog.sql") },
    Migration { version: 3, name: "analyses", sql: include_str!("../migrations/sqlite/0003_analyses.sql") },
    Migration { version: 4, name: "imports", sql: include_str!("../migrations/sqlite/0004_imports.sql") },
    Migration {
        version: 5,
        name: "analysis_tokens",
        sql: include_str!("../migrations/sqlite/0005_analysis_tokens.sql"),
    },
    Migration {
        version: 6,
        name: "product_changes",
        sql: include_str!("../migrations/sqlite/0006_product_changes.sql"),
    },
    Migration { version: 7, name: "fts_english", sql: include_str!("../migrations/sqlite/0007_fts_english.sql") },
    Migration { version: 8, name: "photos", sql: include_str!("../migrations/sqlite/0008_photos.sql") },
];

/// PostgreSQL migrations: the same versions as [`SQLITE`], one to one (see
/// `migrations/postgres/`). Applied under an advisory lock, so replicas starting together apply
/// each step once.
pub const POSTGRES: &[Migration] = &[
    Migration { version: 1, name: "initial", sql: include_str!("../migrations/postgres/0001_initial.sql") },
    Migration { version: 2, name: "catalog", sql: include_str!("../migrations/postgres/0002_catalog.sql") },
    Migration { version: 3, name: "analyses", sql: include_str!("../migrations/postgres/0003_analyses.sql") },
    Migration { version: 4, name: "imports", sql: include_str!("../migrations/postgres/0004_imports.sql") },
    Migration {
        version: 5,
        name: "analysis_tokens",
        sql: include_str!("../migrations/postgres/0005_analysis_tokens.sql"),
    },
    Migration {
        version: 6,
        name: "product_changes",
        sql: include_str!("../migrations/postgres/0006_product_changes.sql"),
    },
    Migration { version: 7, name: "fts_english", sql: include_str!("../migrations/postgres/0007_fts_english.sql") },
    Migration { version: 8, name: "photos", sql: include_str!("../migrations/postgres/0008_photos.sql") },
];
