//! [`PgOptions`]' `statement_timeout` on a real server (the options themselves are read by
//! `ocular_app::Config`, whose tests check the `OCULAR_PG_*` names and bounds).

use std::time::Duration;

use super::*;

fn server() -> Option<String> {
    test_server("statement-timeout")
}

/// A statement past the timeout is cancelled by the server, the error says so, and the
/// connection serves the next statement; without the setting the same sleep completes.
#[test]
fn statement_timeout_cancels_a_slow_statement() {
    let Some(url) = server() else { return };
    let options =
        PgOptions { pool_size: 1, statement_timeout: Some(Duration::from_millis(200)), ..PgOptions::default() };
    let store = PgStore::connect(&url, &options).unwrap();
    let shown = store.read(|db| Ok(db.query_one("SHOW statement_timeout", &[])?.try_get::<_, String>(0)?)).unwrap();
    assert_eq!(shown, "200ms");
    let err = store.read(|db| db.batch("SELECT pg_sleep(3)")).unwrap_err();
    let code = match &err {
        StoreError::Postgres(e) => e.code().map(|c| c.code().to_string()),
        _ => None,
    };
    assert_eq!(code.as_deref(), Some("57014"), "query_canceled: {err:?}");
    store.ping().expect("the pooled connection is usable after the cancel");

    let patient = PgStore::connect(&url, &PgOptions { pool_size: 1, ..PgOptions::default() }).unwrap();
    patient.read(|db| db.batch("SELECT pg_sleep(0.3)")).expect("no timeout set: the sleep completes");
}
