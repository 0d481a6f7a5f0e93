//! The happy path: an allowed server is fetched, by address and by name, with the right
//! request on the wire.

use ocular_fetch::FetchError;

use crate::server::{PNG, Reply, TestServer, fetcher, fetcher_with, png_reply, policy, response};

#[tokio::test]
async fn fetches_an_image_from_an_allowed_address() {
    let server = TestServer::start(|_| png_reply()).await;
    let fetcher = fetcher("127.0.0.1");
    let url = format!("http://127.0.0.1:{}/img.png?size=big#fragment", server.port());

    let image = fetcher.fetch_image(&url).await.unwrap();

    assert_eq!(&image.bytes[..], PNG);
    assert_eq!(image.content_type.as_deref(), Some("image/png"));
    assert_eq!(image.final_url, url);
    assert_eq!(server.accepted(), 1);
    assert_eq!(fetcher.connect_attempts(), 1);
    let head = &server.requests()[0];
    assert!(head.starts_with("GET /img.png?size=big HTTP/1.1\r\n"), "{head}");
    assert!(head.contains(&format!("host: 127.0.0.1:{}\r\n", server.port())), "{head}");
    assert!(head.contains("user-agent: ocular-test\r\n"), "{head}");
}

#[tokio::test]
async fn an_allowed_name_connects_to_its_checked_address_with_its_host_header() {
    let server = TestServer::start(|_| png_reply()).await;
    let fetcher = fetcher_with(policy("images.test"), &["images.test"]);

    let image = fetcher.fetch_image(&format!("http://Images.Test:{}/a.png", server.port())).await.unwrap();

    assert_eq!(&image.bytes[..], PNG);
    assert_eq!(image.final_url, format!("http://images.test:{}/a.png", server.port()));
    assert!(server.requests()[0].contains(&format!("host: images.test:{}\r\n", server.port())));
}

#[tokio::test]
async fn localhost_can_be_allowed_by_name() {
    let server = TestServer::start(|_| png_reply()).await;
    let image = fetcher("localhost").fetch_image(&format!("http://localhost:{}/", server.port())).await.unwrap();
    assert_eq!(&image.bytes[..], PNG);
}

#[tokio::test]
async fn error_statuses_are_fetch_failures() {
    let server =
        TestServer::start(|_| Reply::Raw(response("404 Not Found", &[("Content-Type", "image/png")], PNG))).await;
    let err = fetcher("127.0.0.1").fetch_image(&format!("http://127.0.0.1:{}/", server.port())).await.unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 404 }), "{err:?}");
    assert_eq!(err.code(), "url_fetch_failed");
}

#[tokio::test]
async fn a_closed_port_is_a_fetch_failure() {
    // Bind, note the port, close: nothing listens there any more.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let err = fetcher("127.0.0.1").fetch_image(&format!("http://127.0.0.1:{port}/")).await.unwrap_err();
    assert!(matches!(err, FetchError::Connect { .. }), "{err:?}");
    assert_eq!(err.code(), "url_fetch_failed");
}

/// An allow-list entry with a port opens that port only: an allowed image host's other ports
/// (Redis, an admin console) stay refused, before any connection.
#[tokio::test]
async fn an_entry_with_a_port_allows_that_port_only() {
    let server = TestServer::start(|_| png_reply()).await;
    let port = server.port();
    let other = if port == 65535 { port - 1 } else { port + 1 };

    let image = fetcher(&format!("127.0.0.1:{port}")).fetch_image(&format!("http://127.0.0.1:{port}/")).await.unwrap();
    assert_eq!(&image.bytes[..], PNG);

    let narrow = fetcher(&format!("127.0.0.1:{other}"));
    let err = narrow.fetch_image(&format!("http://127.0.0.1:{port}/")).await.unwrap_err();
    assert!(matches!(err, FetchError::AddressNotAllowed { .. }), "{err:?}");
    assert_eq!(narrow.connect_attempts(), 0, "refused before connecting");

    let named = fetcher_with(policy(&format!("images.test:{other}")), &["images.test"]);
    let err = named.fetch_image(&format!("http://images.test:{port}/")).await.unwrap_err();
    assert!(matches!(err, FetchError::AddressNotAllowed { from_dns: true, .. }), "{err:?}");
    assert!(!err.to_string().contains("127.0.0.1"), "the refusal echoes the DNS answer: {err}");
    assert_eq!(server.accepted(), 1);
}
