//! A PostgreSQL store in a fresh schema, for the tests whose path differs by backend (with
//! PostgreSQL a space searches its stored vectors through pgvector, not an in-memory index).
//!
//! Which server: `OCULAR_TEST_DATABASE_URL` (any PostgreSQL with pgvector), else the one
//! `scripts/pg-test-server.sh start` runs. With neither, a test skips after saying why, unless
//! `OCULAR_REQUIRE_POSTGRES` is set (CI), where it fails instead (`ocular_test_support::Need`).

use std::sync::Arc;

use ocular_store::{Location, Store};

/// The server's URL; `None` (after saying why) when there is none and none is required.
fn server() -> Option<String> {
    ocular_test_support::postgres_url("search tests")
}

fn admin(server: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(server, tokio_postgres::NoTls).await.expect("connect");
        let driver = tokio::spawn(conn);
        client.batch_execute(sql).await.expect("admin SQL");
        drop(client);
        let _ = driver.await;
    });
}

/// A fresh schema, dropped with everything in it when the value is dropped.
pub struct Schema {
    server: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        admin(&self.server, &format!("SET client_min_messages = warning; DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

/// A migrated store in a fresh schema (drop the store before the schema), or `None` when no
/// server is there and none is required.
pub fn store() -> Option<(Arc<dyn Store>, Schema)> {
    let server = server()?;
    let name = format!("search_{}", unique());
    admin(
        &server,
        &format!(
            "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS vector SCHEMA public;
             CREATE SCHEMA {name}"
        ),
    );
    let sep = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{sep}options=-c%20search_path%3D{name}%2Cpublic");
    let store = ocular_store::open(&Location::Postgres(url), true).expect("store");
    Some((store, Schema { server, name }))
}

/// A name no other test process or thread picks: the process id and a counter.
fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}_{n}", std::process::id())
}
