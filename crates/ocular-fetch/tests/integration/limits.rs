//! Bounded memory, time and politeness: the byte cap (declared and streamed), the total
//! deadline against silent and trickling servers, and the per-host concurrency limit.

use std::time::{Duration, Instant};

use ocular_fetch::{FetchError, FetchPolicy};

use crate::server::{PNG, Reply, TestServer, fetcher, fetcher_with, policy, response};

const CAP: u64 = 64 * 1024; // `policy()`'s max_bytes

fn url(server: &TestServer) -> String {
    format!("http://127.0.0.1:{}/big.png", server.port())
}

#[tokio::test]
async fn a_declared_length_over_the_cap_is_refused_before_reading_the_body() {
    // The server declares 10 MB and then sends nothing: reading the body would hang until the
    // deadline, so a quick `TooLarge` proves the refusal came from the header alone.
    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n", 10_000_000);
    let server =
        TestServer::start(move |_| Reply::Drip { head: head.clone().into_bytes(), every: Duration::from_secs(10) })
            .await;
    let started = Instant::now();
    let err = fetcher("127.0.0.1").fetch_image(&url(&server)).await.unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { limit: CAP, declared: Some(10_000_000) }), "{err:?}");
    assert_eq!(err.code(), "url_too_large");
    assert!(started.elapsed() < Duration::from_secs(4), "the body was waited for");
}

#[tokio::test]
async fn undeclared_bodies_are_cut_at_the_cap_while_streaming() {
    for chunked in [false, true] {
        let mut head = "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n".to_owned();
        if chunked {
            head.push_str("Transfer-Encoding: chunked\r\n");
        }
        head.push_str("\r\n");
        // The server would send 64 MiB; the fetch must stop just past 64 KiB.
        let server = TestServer::start(move |_| Reply::Endless { head: head.clone().into_bytes(), chunked }).await;
        let err = fetcher("127.0.0.1").fetch_image(&url(&server)).await.unwrap_err();
        assert!(matches!(err, FetchError::TooLarge { limit: CAP, declared: None }), "chunked={chunked}: {err:?}");
    }
}

#[tokio::test]
async fn a_body_of_exactly_the_cap_is_accepted() {
    let mut body = PNG.to_vec();
    body.resize(CAP as usize, 0);
    let raw = response("200 OK", &[("Content-Type", "image/png")], &body);
    let server = TestServer::start(move |_| Reply::Raw(raw.clone())).await;
    let image = fetcher("127.0.0.1").fetch_image(&url(&server)).await.unwrap();
    assert_eq!(image.bytes.len() as u64, CAP);
}

fn quick(allow: &str) -> FetchPolicy {
    FetchPolicy { total_timeout: Duration::from_millis(400), ..policy(allow) }
}

#[tokio::test]
async fn silent_and_trickling_servers_hit_the_total_deadline() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n".to_vec();
    let replies = [Reply::Silent, Reply::Drip { head, every: Duration::from_millis(50) }];
    for reply in replies {
        let server = TestServer::start(move |_| reply.clone()).await;
        let started = Instant::now();
        let err = fetcher_with(quick("127.0.0.1"), &[]).fetch_image(&url(&server)).await.unwrap_err();
        assert!(matches!(err, FetchError::Timeout { phase: "fetch", .. }), "{err:?}");
        assert_eq!(err.code(), "url_timeout");
        // Generous bound for a loaded CI machine; the point is "about 0.4 s, not 15 s".
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn fetches_to_one_host_are_limited() {
    let raw = response("200 OK", &[("Content-Type", "image/png")], PNG);
    let server = TestServer::start(move |_| Reply::After(Duration::from_millis(100), raw.clone())).await;
    let fetcher = fetcher_with(FetchPolicy { per_host_concurrency: 2, ..policy("127.0.0.1") }, &[]);

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (fetcher, url) = (fetcher.clone(), url(&server));
        tasks.spawn(async move { fetcher.fetch_image(&url).await });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap().unwrap();
    }

    assert_eq!(server.accepted(), 6);
    assert!(server.max_in_flight() <= 2, "{} fetches in flight to one host", server.max_in_flight());
}
