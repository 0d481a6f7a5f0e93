//! `ocular backup DEST` and `ocular restore SRC`: storage only, like `migrate` — no ONNX Runtime,
//! no model file. SQLite is copied with `VACUUM INTO` (consistent while a server serves; see
//! `ocular_store::backup`); PostgreSQL is backed up with `pg_dump` (docs/DEPLOY.md, *Backups*).

use std::path::PathBuf;

use anyhow::{Context, bail};
use ocular_app::Config;
use ocular_store::Location;
use ocular_store::backup::{self, Summary};

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The backup file to write; it must not exist yet.
    pub dest: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A file written by `ocular backup`.
    pub src: PathBuf,
    /// Replace the database already in the data directory (stop the server first).
    #[arg(long)]
    pub force: bool,
}

/// The SQLite file of the configured store, or why there is none to copy.
fn sqlite_path(config: &Config) -> anyhow::Result<PathBuf> {
    match Location::parse(config.database_url.as_deref(), &config.data_dir)? {
        Location::Sqlite(path) => Ok(path),
        Location::Postgres(_) => bail!(
            "the database is PostgreSQL: back it up with pg_dump and restore with pg_restore \
             (docs/DEPLOY.md, Backups); `ocular backup` copies the embedded SQLite database"
        ),
    }
}

fn describe(s: &Summary) -> String {
    format!(
        "{} products, {} analyses, schema version {}, {:.1} MB",
        s.products,
        s.analyses,
        s.schema_version,
        s.bytes as f64 / 1e6
    )
}

pub fn run_backup(config: &Config, args: BackupArgs) -> anyhow::Result<()> {
    let db = sqlite_path(config)?;
    if !db.exists() {
        bail!("no database at {} (nothing to back up)", db.display());
    }
    let s = backup::backup(&db, &args.dest).with_context(|| format!("backing up {}", db.display()))?;
    println!("backed up {} to {}: {}", db.display(), args.dest.display(), describe(&s));
    Ok(())
}

pub fn run_restore(config: &Config, args: RestoreArgs) -> anyhow::Result<()> {
    let db = sqlite_path(config)?;
    let s = backup::restore(&args.src, &db, args.force)
        .with_context(|| format!("restoring {} into {}", args.src.display(), db.display()))?;
    // Bring an older backup's schema up to this build's, as `ocular migrate` would.
    let store = super::open_store(config)?;
    println!(
        "restored {} into {}: {}; schema now at version {}",
        args.src.display(),
        db.display(),
        describe(&s),
        store.schema_version()?
    );
    Ok(())
}
