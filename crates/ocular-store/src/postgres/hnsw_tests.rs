//! [`PgOptions::hnsw`] on a real server: the `hnsw.ef_search` a search runs under is the
//! configured one (the options themselves are read by `ocular_app::Config`, whose tests check
//! the `OCULAR_PG_*` names and bounds).

use super::*;
use crate::types::ProductFilter;

fn server() -> Option<String> {
    test_server("ef_search")
}

/// A fresh schema, dropped (with its tables) when the value is.
struct Schema {
    admin: PgStore,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let drop = format!("SET client_min_messages = warning; DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let _ = self.admin.read(|db| db.batch(&drop));
    }
}

/// The session setting of the store's one pooled connection.
fn shown(store: &PgStore) -> String {
    store.read(|db| Ok(db.query_one("SHOW hnsw.ef_search", &[])?.try_get::<_, String>(0)?)).unwrap()
}

/// A search sets the session's `hnsw.ef_search` to `OCULAR_PG_EF_SEARCH`'s value (or `k` when
/// larger, or an index's own override); an exact search leaves it alone.
#[test]
fn a_search_runs_under_the_configured_ef_search() {
    let Some(url) = server() else { return };
    let admin = PgStore::connect(&url, &PgOptions { pool_size: 1, ..PgOptions::default() }).unwrap();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    admin.read(|db| db.batch(&format!("CREATE EXTENSION IF NOT EXISTS vector; CREATE SCHEMA {name}"))).unwrap();
    let schema = Schema { admin, name };
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}options=-c%20search_path%3D{}%2Cpublic", schema.name);
    // One connection: the one each search below sets and `shown` reads.
    let hnsw = PgHnswOptions { ef_search: 123, ..PgHnswOptions::default() };
    let store = PgStore::connect(&url, &PgOptions { pool_size: 1, hnsw, ..PgOptions::default() }).unwrap();
    store.migrate().unwrap();
    let all = ProductFilter::default();
    let q = [1.0, 0.5, 0.25];
    let open = |config| PgVectorIndex::new(store.clone(), "image", "m@1", 3, config).unwrap();

    let exact = open(PgIndexConfig { mode: PgSearchMode::Exact, ..PgIndexConfig::default() });
    exact.search_filtered(&q, 10, &all).unwrap();
    assert_eq!(shown(&store), "40", "an exact scan sets nothing (pgvector's default stays)");

    let index = open(PgIndexConfig::default());
    index.search_filtered(&q, 10, &all).unwrap();
    assert_eq!(shown(&store), "123");
    index.search_filtered(&q, 200, &all).unwrap();
    assert_eq!(shown(&store), "200", "k above ef_search raises it");
    index.search_filtered(&q, 10, &all).unwrap();
    assert_eq!(shown(&store), "123", "and the next search sets it back");

    open(PgIndexConfig { ef_search: Some(57), ..PgIndexConfig::default() }).search_filtered(&q, 10, &all).unwrap();
    assert_eq!(shown(&store), "57", "an index's own setting wins");
    drop(store);
}

#[test]
fn hnsw_settings_outside_pgvector_bounds_are_refused() {
    assert_eq!(PgHnswOptions::default().check(), Ok(()));
    let d = PgHnswOptions::default();
    for bad in [
        PgHnswOptions { ef_search: 0, ..d },
        PgHnswOptions { ef_search: 1001, ..d },
        PgHnswOptions { m: 1, ..d },
        PgHnswOptions { m: 101, ..d },
        PgHnswOptions { ef_construction: 1001, ..d },
        PgHnswOptions { m: 40, ef_construction: 79, ..d },
    ] {
        assert!(bad.check().is_err(), "{bad:?} accepted");
    }
    assert_eq!(PgHnswOptions { m: 40, ef_construction: 80, ef_search: 1000 }.check(), Ok(()));
}
