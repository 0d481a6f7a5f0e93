//! The PostgreSQL backend: the conformance suite unchanged, each case in a fresh schema, plus
//! what only a shared server shows (two replicas, concurrent migrations and claims) and vector
//! search through pgvector.
//!
//! Which server: `OCULAR_TEST_DATABASE_URL` (any PostgreSQL with pgvector), else the one
//! `scripts/pg-test-server.sh start` runs. With neither, every test here passes after printing
//! why it did nothing, unless `OCULAR_REQUIRE_POSTGRES` is set (CI), where they fail instead.

mod dump;
mod photos;
mod replicas;
mod tls;
mod vectors;

use std::ops::Deref;
use std::sync::Arc;

use ocular_store::postgres::{PgOptions, PgStore};
use ocular_store::{Location, Store};

use crate::conformance::conformance_tests;

/// The server's URL; `None` (after saying so once, past the test harness's capture) when there
/// is none and none is required (`ocular_test_support::postgres_url`, looked up once).
pub fn url() -> Option<String> {
    ocular_test_support::postgres_url("storage suite")
}

/// Runs one SQL batch on the server as an administrator (outside any test schema).
pub fn admin(url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        let driver = tokio::spawn(conn);
        client.batch_execute(sql).await.unwrap();
        drop(client);
        let _ = driver.await;
    });
}

/// `url` with its sessions confined to `schema` (then `public`, where the extension lives).
pub fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}%2Cpublic")
}

/// A fresh, empty schema, dropped with everything in it when the value is dropped.
pub struct Schema {
    pub url: String,
    server: String,
    name: String,
}

impl Schema {
    pub fn new(server: &str) -> Self {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        // `public` holds the extension, created once per database (the script does it too).
        admin(
            server,
            &format!(
                "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS vector SCHEMA public;
                 CREATE SCHEMA {name}"
            ),
        );
        Schema { url: with_schema(server, &name), server: server.to_string(), name }
    }

    /// Another handle on this schema: another replica, with its own pool.
    pub fn open(&self, migrate: bool) -> Arc<dyn Store> {
        ocular_store::open(&Location::Postgres(self.url.clone()), migrate).unwrap()
    }

    /// The schema's name, for administrator SQL aimed at its tables.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pg(&self, options: &PgOptions) -> PgStore {
        PgStore::connect(&self.url, options).unwrap()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        admin(&self.server, &format!("SET client_min_messages = warning; DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

/// A migrated store in a fresh schema, as the conformance cases want it.
pub struct Fixture {
    store: Arc<dyn Store>,
    // Dropped after the store, so the schema outlives every connection's use of it.
    _schema: Schema,
}

impl Deref for Fixture {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

pub fn fixture() -> Option<Fixture> {
    let schema = Schema::new(&url()?);
    Some(Fixture { store: schema.open(true), _schema: schema })
}

mod conformance {
    use super::*;
    conformance_tests!(match fixture() {
        Some(f) => f,
        None => return,
    });
}
