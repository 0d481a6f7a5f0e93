//! Redirects are followed only after the same checks as the first URL, and only so far.

use ocular_fetch::{BlockedRange, FetchError};

use crate::server::{TestServer, fetcher, fetcher_with, path_of, png_reply, policy, redirect};

/// A front server on an allowed name that redirects every request to `location`.
async fn front(location: String) -> TestServer {
    TestServer::start(move |_| redirect("302 Found", &location)).await
}

#[tokio::test]
async fn a_redirect_to_an_unlisted_loopback_port_is_refused() {
    let hidden = TestServer::start(|_| png_reply()).await;
    let front = front(format!("http://127.0.0.1:{}/admin", hidden.port())).await;
    // The front server is allowed by name only; the address 127.0.0.1 is not on the list.
    let fetcher = fetcher_with(policy("images.test"), &["images.test"]);

    let err = fetcher.fetch_image(&format!("http://images.test:{}/", front.port())).await.unwrap_err();

    assert!(matches!(err, FetchError::AddressNotAllowed { range: BlockedRange::Loopback, .. }), "{err:?}");
    assert_eq!(front.accepted(), 1);
    assert_eq!(hidden.accepted(), 0, "the redirect target must not be contacted");
    assert_eq!(fetcher.connect_attempts(), 1);
}

#[tokio::test]
async fn a_redirect_within_the_allowed_name_is_followed() {
    let target = TestServer::start(|_| png_reply()).await;
    let front = front(format!("http://images.test:{}/final.png", target.port())).await;
    let fetcher = fetcher_with(policy("images.test"), &["images.test"]);

    let image = fetcher.fetch_image(&format!("http://images.test:{}/", front.port())).await.unwrap();

    assert_eq!(image.final_url, format!("http://images.test:{}/final.png", target.port()));
    assert_eq!((front.accepted(), target.accepted()), (1, 1));
}

#[tokio::test]
async fn redirects_to_the_metadata_service_are_refused_before_any_connect() {
    // These targets are not loopback: they must be refused by classification alone. The
    // connection counter proves no socket was attempted beyond the front server's.
    for location in [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://2852039166/latest/meta-data/",
        "http://0xa9.0xfe.0xa9.0xfe/",
        "http://[::ffff:169.254.169.254]/",
        "//169.254.169.254/",
        "http://10.0.0.1/",
        "http://[fd00::1]/",
    ] {
        let front = front(location.to_owned()).await;
        let fetcher = fetcher("127.0.0.1");

        let err = fetcher.fetch_image(&format!("http://127.0.0.1:{}/", front.port())).await.unwrap_err();

        assert!(matches!(err, FetchError::AddressNotAllowed { .. }), "{location}: {err:?}");
        assert_eq!(err.code(), "url_not_allowed");
        assert_eq!(fetcher.connect_attempts(), 1, "{location}: a connection was attempted");
    }
}

#[tokio::test]
async fn redirects_to_other_schemes_or_with_credentials_are_refused() {
    let cases = [
        ("file:///etc/passwd", "url_not_allowed"),
        ("gopher://127.0.0.1:70/_x", "url_not_allowed"),
        ("http://user:pw@127.0.0.1/", "url_not_allowed"),
    ];
    for (location, code) in cases {
        let front = front(location.to_owned()).await;
        let fetcher = fetcher("127.0.0.1");
        let err = fetcher.fetch_image(&format!("http://127.0.0.1:{}/", front.port())).await.unwrap_err();
        assert_eq!(err.code(), code, "{location}: {err:?}");
        assert_eq!(fetcher.connect_attempts(), 1);
    }
}

/// `/hop/N` redirects (relatively) to `/hop/N+1` until `last`, which serves the image.
async fn chain(last: u32) -> TestServer {
    TestServer::start(move |head| {
        let n: u32 = path_of(head).trim_start_matches("/hop/").parse().unwrap_or(0);
        if n >= last { png_reply() } else { redirect("301 Moved Permanently", &format!("/hop/{}", n + 1)) }
    })
    .await
}

#[tokio::test]
async fn the_redirect_limit_is_enforced() {
    // Exactly `max_redirects` (3) hops is fine...
    let ok = chain(3).await;
    let image = fetcher("127.0.0.1").fetch_image(&format!("http://127.0.0.1:{}/hop/0", ok.port())).await.unwrap();
    assert!(image.final_url.ends_with("/hop/3"));
    assert_eq!(ok.accepted(), 4);

    // ...one more is not, and the fourth redirect is not followed.
    let endless = chain(u32::MAX).await;
    let err =
        fetcher("127.0.0.1").fetch_image(&format!("http://127.0.0.1:{}/hop/0", endless.port())).await.unwrap_err();
    assert!(matches!(err, FetchError::TooManyRedirects { limit: 3 }), "{err:?}");
    assert_eq!(err.code(), "url_too_many_redirects");
    assert_eq!(endless.accepted(), 4);
}

#[tokio::test]
async fn a_redirect_without_location_is_a_fetch_failure() {
    let server = TestServer::start(|_| crate::server::Reply::Raw(crate::server::response("302 Found", &[], b""))).await;
    let err = fetcher("127.0.0.1").fetch_image(&format!("http://127.0.0.1:{}/", server.port())).await.unwrap_err();
    assert!(matches!(err, FetchError::BadRedirect { .. }), "{err:?}");
}
