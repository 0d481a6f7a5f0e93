//! Only http and https, and no credentials in the URL: refused before any connection, even
//! when the address itself is allowed.

use ocular_fetch::FetchError;

use crate::server::{TestServer, fetcher, png_reply};

#[tokio::test]
async fn other_schemes_and_credentials_are_refused_without_connecting() {
    let server = TestServer::start(|_| png_reply()).await;
    let port = server.port();
    let fetcher = fetcher("127.0.0.1");
    let refused = [
        "file:///etc/passwd".to_owned(),
        "file://127.0.0.1/etc/passwd".to_owned(),
        format!("ftp://127.0.0.1:{port}/a.png"),
        format!("gopher://127.0.0.1:{port}/_GET%20/"),
        format!("ws://127.0.0.1:{port}/"),
        "data:image/png;base64,iVBORw0KGgo=".to_owned(),
        "javascript:alert(1)".to_owned(),
        format!("http://user:pass@127.0.0.1:{port}/a.png"),
        format!("http://user@127.0.0.1:{port}/a.png"),
    ];
    for url in &refused {
        let err = fetcher.fetch_image(url).await.unwrap_err();
        assert_eq!(err.code(), "url_not_allowed", "{url}: {err:?}");
        assert!(matches!(err, FetchError::SchemeNotAllowed { .. } | FetchError::CredentialsNotAllowed), "{url}");
    }
    for url in ["", "not a url", "/a.png", "http://"] {
        let err = fetcher.fetch_image(url).await.unwrap_err();
        assert_eq!(err.code(), "url_invalid", "{url:?}: {err:?}");
    }
    assert_eq!(server.accepted(), 0);
    assert_eq!(fetcher.connect_attempts(), 0);
}
