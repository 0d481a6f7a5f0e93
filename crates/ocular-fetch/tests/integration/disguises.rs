//! Loopback in every disguise is refused without a connection, unless the allow-list covers
//! it; the positive control shows the same disguises do reach the listener when allowed, so
//! the zero counts are meaningful.

use ocular_fetch::{BlockedRange, FetchError};

use crate::server::{TestServer, fetcher, fetcher_with, png_reply, policy};

/// URLs that all lead to the v4 listener on `port`.
fn v4_disguises(port: u16) -> Vec<String> {
    [
        "127.0.0.1",
        "127.1",
        "127.0.1",
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "017700000001",
        "0177.0.0.1",
        "%31%32%37.0.0.1",
        "127.0.0.1.",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "localhost",
        "localhost.",
        "LocalHost",
        "img.localhost",
    ]
    .iter()
    .map(|host| format!("http://{host}:{port}/a.png"))
    .collect()
}

#[tokio::test]
async fn loopback_disguises_are_refused_without_connecting() {
    let v4 = TestServer::start(|_| png_reply()).await;
    let v6 = TestServer::start_v6(|_| png_reply()).await;
    // A non-empty allow-list that does not cover loopback.
    let fetcher = fetcher("images.internal");
    let mut urls = v4_disguises(v4.port());
    urls.push(format!("https://127.1:{}/a.png", v4.port()));
    if let Some(v6) = &v6 {
        urls.push(format!("http://[::1]:{}/a.png", v6.port()));
        urls.push(format!("http://[0:0:0:0:0:0:0:1]:{}/a.png", v6.port()));
    }

    for url in &urls {
        let err = fetcher.fetch_image(url).await.unwrap_err();
        assert!(matches!(err, FetchError::AddressNotAllowed { range: BlockedRange::Loopback, .. }), "{url}: {err:?}");
        assert_eq!(err.code(), "url_not_allowed");
        assert!(err.is_refusal());
    }

    assert_eq!(v4.accepted(), 0, "a refused URL reached the listener");
    assert_eq!(v6.map_or(0, |s| s.accepted()), 0, "a refused URL reached the v6 listener");
    assert_eq!(fetcher.connect_attempts(), 0);
}

#[tokio::test]
async fn the_same_disguises_reach_the_listener_when_allowed() {
    let v4 = TestServer::start(|_| png_reply()).await;
    let fetcher = fetcher("127.0.0.0/8,::1");
    let urls = v4_disguises(v4.port());
    for url in &urls {
        fetcher.fetch_image(url).await.unwrap_or_else(|e| panic!("{url}: {e:?}"));
    }
    assert_eq!(v4.accepted(), urls.len());
}

#[tokio::test]
async fn a_name_with_one_unlisted_address_is_refused_whole() {
    // `localhost` is 127.0.0.1 *and* ::1; allowing only the first must not let the name through.
    let v4 = TestServer::start(|_| png_reply()).await;
    let fetcher = fetcher("127.0.0.1");
    let err = fetcher.fetch_image(&format!("http://localhost:{}/", v4.port())).await.unwrap_err();
    assert!(matches!(err, FetchError::AddressNotAllowed { .. }), "{err:?}");
    assert_eq!(v4.accepted(), 0);
}

#[tokio::test]
async fn names_resolving_to_loopback_are_refused_unless_listed() {
    let v4 = TestServer::start(|_| png_reply()).await;
    let fetcher = fetcher_with(policy("other.test"), &["rebind.test", "other.test"]);
    let err = fetcher.fetch_image(&format!("http://rebind.test:{}/", v4.port())).await.unwrap_err();
    assert!(matches!(err, FetchError::AddressNotAllowed { range: BlockedRange::Loopback, .. }), "{err:?}");
    assert_eq!(v4.accepted(), 0);
}
