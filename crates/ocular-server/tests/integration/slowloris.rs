//! Slow-loris: a client dribbling its headers or its body one byte at a time is cut off by a
//! deadline (header read timeout: connection closed; body: the request deadline's
//! `503 request_timeout`), while other clients are served meanwhile. Runs a real server on a
//! loopback port, because the header deadline lives in the accept loop, below the router.

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
    _app: TestApp,
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
        Self { addr, stop: Some(stop), task, _app: app }
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().expect("running").send(());
        self.task.await.expect("server task").expect("server stops cleanly");
    }
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
