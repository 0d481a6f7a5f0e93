//! [`PgOptions`] from the environment, and `statement_timeout` on a real server.

use std::time::Duration;

use super::*;

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

#[test]
fn options_come_from_the_environment_and_bad_values_name_their_variable() {
    assert_eq!(PgOptions::from_vars(vars(&[])).unwrap(), PgOptions::default());
    let o = PgOptions::from_vars(vars(&[
        ("OCULAR_PG_POOL_SIZE", "3"),
        ("OCULAR_PG_POOL_WAIT_MS", "250"),
        ("OCULAR_PG_STATEMENT_TIMEOUT_MS", "5000"),
    ]))
    .unwrap();
    assert_eq!(
        (o.pool_size, o.pool_wait, o.statement_timeout),
        (3, Duration::from_millis(250), Some(Duration::from_secs(5)))
    );
    let off = PgOptions::from_vars(vars(&[("OCULAR_PG_STATEMENT_TIMEOUT_MS", "0")])).unwrap();
    assert_eq!(off.statement_timeout, None, "0 leaves the server's setting");
    for (name, value) in
        [("OCULAR_PG_POOL_SIZE", "0"), ("OCULAR_PG_POOL_SIZE", "many"), ("OCULAR_PG_STATEMENT_TIMEOUT_MS", "-1")]
    {
        let err = PgOptions::from_vars(vars(&[(name, value)])).unwrap_err().to_string();
        assert!(err.contains(name), "{err}");
    }
}

fn server() -> Option<String> {
    let found = match std::env::var("OCULAR_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(url.trim().to_string()),
        _ => std::process::Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg-test-server.sh"))
            .arg("url")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .ok_or("no PostgreSQL for the statement-timeout test"),
    };
    ocular_test_support::Need::Postgres.available(found)
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
