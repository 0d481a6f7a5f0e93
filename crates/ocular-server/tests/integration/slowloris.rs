//! Slow-loris: a client dribbling its headers or its body one byte at a time is cut off by a
//! deadline (header read timeout: connection closed; body: the read-progress rule's
//! `408 body_timeout`, else the request deadline's `503 request_timeout`), while other clients
//! are served meanwhile. Runs a real server on a loopback port, because the header deadline
//! lives in the accept loop, below the router.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::TestApp;

const FLAGS: [&str; 6] = ["--preload", "false", "--header-timeout-ms", "500", "--request-timeout-s", "1"];

/// Gap between two bytes of a slow client: 5 bytes/s, far slower than any deadline allows.
const DRIBBLE: Duration = Duration::from_millis(200);

struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    app: TestApp,
}

impl Server {
    /// Header deadline 500 ms, request deadline 1 s (the defaults are 10 s and 30 s).
    async fn start() -> Self {
        Self::start_with(TestApp::new(&FLAGS)).await
    }

    /// With the real models: the upload routes refuse before reading when their model is
    /// missing, so a slow upload needs the skin model configured to be read at all.
    async fn start_real() -> Self {
        Self::start_with(TestApp::real(&FLAGS)).await
    }

    async fn start_with(app: TestApp) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(ocular_server::serve_until(app.state.clone(), listener, async {
            let _ = stopped.await;
        }));
        Self { addr, stop: Some(stop), task, app }
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().expect("running").send(());
        self.task.await.expect("server task").expect("server stops cleanly");
    }
}

/// Sends `head` and `body` on a new connection, then keeps it open without sending more (a
/// client that stalls mid-upload); the returned task reads the answer until the server closes.
async fn stall(addr: SocketAddr, head: &[u8], body: &[u8]) -> tokio::task::JoinHandle<Vec<u8>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut rx, mut tx) = stream.into_split();
    tx.write_all(head).await.expect("head");
    tx.write_all(body).await.expect("body");
    tokio::spawn(async move {
        let mut out = Vec::new();
        let _ = rx.read_to_end(&mut out).await;
        drop(tx);
        out
    })
}

/// An analysis upload's request head and the start of its multipart body (`len` bytes in all
/// declared, `sent` of them in the returned body).
fn upload(len: usize, sent: usize) -> (String, Vec<u8>) {
    let boundary = "stall-boundary";
    let mut body =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.jpg\"\r\n\r\n")
            .into_bytes();
    body.resize(sent, b'x');
    let head = format!(
        "POST /api/v1/analyze HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len}\r\n\r\n"
    );
    (head, body)
}

/// A well-behaved request on its own connection: the status line's code.
async fn health(addr: SocketAddr) -> u16 {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    status_of(&out).expect("a response")
}

fn status_of(response: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(response);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Sends `prefix` at once, then `slow` one byte per [`DRIBBLE`], until the server closes the
/// connection. Returns (bytes of `slow` sent before the cut, what the server answered), and
/// checks once, a few bytes in, that a normal client is answered meanwhile.
async fn dribble(addr: SocketAddr, prefix: &[u8], slow: &[u8]) -> (usize, Vec<u8>) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut rx, mut tx) = stream.into_split();
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        // Ends at EOF or a reset: either way the server has let go of the connection.
        let _ = rx.read_to_end(&mut out).await;
        out
    });
    tx.write_all(prefix).await.expect("prefix");
    let mut sent = 0;
    for (i, byte) in slow.iter().enumerate() {
        if reader.is_finished() || tx.write_all(&[*byte]).await.is_err() {
            break;
        }
        sent += 1;
        if i == 2 {
            assert_eq!(health(addr).await, 200, "another client is served while one dribbles");
        }
        tokio::time::sleep(DRIBBLE).await;
    }
    let answer =
        tokio::time::timeout(Duration::from_secs(30), reader).await.expect("the server let go").expect("reader");
    (sent, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_by_the_header_deadline() {
    let server = Server::start().await;
    // 60 header bytes at 5/s would take 12 s; the deadline is 500 ms.
    let slow = format!("Host: localhost\r\nX-Padding: {}\r\n\r\n", "a".repeat(33));
    let (sent, answer) = dribble(server.addr, b"GET /health HTTP/1.1\r\n", slow.as_bytes()).await;
    assert!(sent < slow.len(), "the connection was closed before the headers were complete ({sent} bytes)");
    // hyper closes without a response; if anything was answered, it is not a success.
    assert!(status_of(&answer).is_none_or(|s| s == 408 || s >= 500), "{}", String::from_utf8_lossy(&answer));
    assert_eq!(health(server.addr).await, 200, "the server still answers");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_multipart_body_gets_503_request_timeout() {
    let server = Server::start_real().await;
    let boundary = "slow-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.jpg\"\r\n\r\n{}\r\n--{boundary}--\r\n",
        "x".repeat(40)
    );
    let head = format!(
        "POST /api/v1/analyze HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (sent, answer) = dribble(server.addr, head.as_bytes(), body.as_bytes()).await;
    assert!(sent < body.len(), "the request was cut off before its body was complete ({sent} bytes)");
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(status_of(&answer), Some(503), "{text}");
    assert!(text.contains("\"request_timeout\"") && text.to_ascii_lowercase().contains("retry-after: 1"), "{text}");
    assert_eq!(health(server.addr).await, 200, "the server still answers");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_json_body_gets_503_request_timeout() {
    let server = Server::start().await;
    let body = r#"{"input": [1.0, 1.0, 1.0, 1.0], "padding": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;
    let head = format!(
        "POST /api/v1/fixture HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (sent, answer) = dribble(server.addr, head.as_bytes(), body.as_bytes()).await;
    assert!(sent < body.len(), "cut off before the body was complete ({sent} bytes)");
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(status_of(&answer), Some(503), "{text}");
    assert!(text.contains("\"request_timeout\""), "{text}");
    server.shutdown().await;
}

#[test]
fn deadlines_default_to_10_s_for_headers_and_30_s_per_request() {
    let config = crate::common::config(&[]);
    assert_eq!((config.header_timeout(), config.request_timeout()), (Duration::from_secs(10), Duration::from_secs(30)));
}

/// The read-progress rule: a client sends 40 KB of its body at once, then trickles a byte
/// every 200 ms. It never pauses longer than the 500 ms window, but no window after the first
/// brings the 500 bytes a 1,000 bytes/s minimum asks, so it is cut with `408 body_timeout`;
/// the bytes it sent early buy it no right to stall (an average since the start would have let
/// it hold them 40 s, past the 30 s request deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_by_the_minimum_rate() {
    let flags = ["--preload", "false", "--body-timeout-ms", "500", "--body-min-rate", "1000"];
    let server = Server::start_with(TestApp::real(&flags)).await;
    let (head, body) = upload(60_000, 40_200);
    let mut prefix = head.into_bytes();
    prefix.extend_from_slice(&body[..40_000]);
    let (sent, answer) = dribble(server.addr, &prefix, &body[40_000..]).await;
    assert!(sent < 200, "cut off before the body was complete ({sent} bytes)");
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(status_of(&answer), Some(408), "{text}");
    assert!(text.contains("\"body_timeout\""), "{text}");
    assert_eq!(server.app.state.body_budget.in_use_bytes(), 0, "its bytes went back to the budget");
    assert_eq!(health(server.addr).await, 200, "the server still answers");
    server.shutdown().await;
}

/// A flood of uploads that each send part of their body and stall: while they hold the
/// in-flight budget, an upload whose declared length does not fit is refused unread with
/// `503 body_budget_exceeded`; once the pause rule (2 s) has cut them, with `408
/// body_timeout`, every byte is back and the same upload is read (and refused only because it
/// is no image). Without the rule they held the budget until the request deadline (30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_give_their_budget_back() {
    let kib = 1024;
    let flags = [
        "--preload",
        "false",
        "--body-timeout-ms",
        "2000",
        "--max-body-bytes",
        "262144",
        "--max-inflight-body-bytes",
        "1048576",
    ];
    let server = Server::start_with(TestApp::real(&flags)).await;
    let budget = server.app.state.body_budget.clone();
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let (head, body) = upload(256 * kib, 100 * kib);
        stalled.push(stall(server.addr, head.as_bytes(), &body).await);
    }
    let started = std::time::Instant::now();
    // Each holds at least its 100 KiB (chunks are counted in whole KiB, rounded up).
    while budget.in_use_bytes() < 800 * kib && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(budget.in_use_bytes() >= 800 * kib, "the stalled uploads hold their bytes: {}", budget.in_use_bytes());
    // 250 KiB declared; at most 224 KiB are free.
    let (head, body) = upload(250 * kib, 250 * kib);
    // Only the head: the refusal comes before the body is read (sending it too could make the
    // kernel reset the connection over unread bytes, losing the answer).
    let refused = exchange(server.addr, head.as_bytes(), &[]).await;
    let text = String::from_utf8_lossy(&refused);
    assert_eq!(status_of(&refused), Some(503), "{text}");
    assert!(
        text.contains("\"body_budget_exceeded\"") && text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );

    for task in stalled {
        let answer = tokio::time::timeout(Duration::from_secs(20), task).await.expect("cut off").expect("reader");
        let text = String::from_utf8_lossy(&answer);
        assert_eq!(status_of(&answer), Some(408), "{text}");
        assert!(text.contains("\"body_timeout\""), "{text}");
    }
    assert_eq!(budget.in_use_bytes(), 0, "every byte went back");
    let read = exchange(server.addr, head.as_bytes(), &body).await;
    let text = String::from_utf8_lossy(&read);
    assert_eq!(status_of(&read), Some(400), "{text}");
    assert!(text.contains("\"image_unreadable\"") || text.contains("\"invalid_multipart\""), "{text}");
    server.shutdown().await;
}

/// One whole request on its own connection; the server's answer.
async fn exchange(addr: SocketAddr, head: &[u8], body: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(head).await.expect("head");
    // The server may answer and close before the body is sent (a refusal unread).
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    out
}
