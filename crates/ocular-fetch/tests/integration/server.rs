//! A tiny HTTP server on a loopback port, writing canned raw responses, that counts every
//! connection it accepts: "zero accepted" is how the tests prove a refusal connected nowhere.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ocular_fetch::{FetchPolicy, Fetcher, StaticResolver};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// What the server does with a request.
#[derive(Clone)]
pub enum Reply {
    /// Write these bytes and close.
    Raw(Vec<u8>),
    /// Never answer (holds the connection for at most 30 s).
    Silent,
    /// Write the head, then one byte of body every `every`, at most 300 bytes.
    Drip { head: Vec<u8>, every: Duration },
    /// Write the head, then 16 KiB chunks until the client goes away (at most 64 MiB).
    Endless { head: Vec<u8>, chunked: bool },
    /// Wait, then write the bytes (for concurrency tests).
    After(Duration, Vec<u8>),
}

type Handler = dyn Fn(&str) -> Reply + Send + Sync;

#[derive(Default)]
struct Stats {
    accepted: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    requests: Mutex<Vec<String>>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// A server on `127.0.0.1`, answering with `handler(request_head)`.
    pub async fn start(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Self {
        Self::bind("127.0.0.1:0".parse().unwrap(), None, Arc::new(handler)).await.expect("bind 127.0.0.1")
    }

    /// A server on `[::1]`, or `None` where IPv6 loopback is unavailable.
    pub async fn start_v6(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Option<Self> {
        Self::bind("[::1]:0".parse().unwrap(), None, Arc::new(handler)).await
    }

    /// A TLS server on `127.0.0.1`.
    pub async fn start_tls(acceptor: TlsAcceptor, handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Self {
        Self::bind("127.0.0.1:0".parse().unwrap(), Some(acceptor), Arc::new(handler)).await.expect("bind 127.0.0.1")
    }

    async fn bind(addr: SocketAddr, tls: Option<TlsAcceptor>, handler: Arc<Handler>) -> Option<Self> {
        assert!(addr.ip().is_loopback(), "test servers listen on loopback only");
        let listener = TcpListener::bind(addr).await.ok()?;
        let addr = listener.local_addr().ok()?;
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn({
            let stats = stats.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    stats.accepted.fetch_add(1, Ordering::SeqCst);
                    let (stats, handler, tls) = (stats.clone(), handler.clone(), tls.clone());
                    tokio::spawn(async move {
                        match tls {
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    serve(stream, &stats, &*handler).await;
                                }
                            }
                            None => serve(stream, &stats, &*handler).await,
                        }
                    });
                }
            }
        });
        Some(Self { addr, stats, task })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.stats.accepted.load(Ordering::SeqCst)
    }

    pub fn max_in_flight(&self) -> usize {
        self.stats.max_in_flight.load(Ordering::SeqCst)
    }

    /// The request heads received, in order.
    pub fn requests(&self) -> Vec<String> {
        self.stats.requests.lock().clone()
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, stats: &Stats, handler: &Handler) {
    let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
    if let Some(head) = read_head(&mut stream).await {
        stats.requests.lock().push(head.clone());
        let reply = handler(&head);
        let _ = write_reply(&mut stream, reply).await;
    }
    stats.in_flight.fetch_sub(1, Ordering::SeqCst);
}

async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.ok()?;
        if n == 0 || buf.len() > 16 * 1024 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    }
    String::from_utf8(buf).ok()
}

async fn write_reply<S: AsyncWrite + Unpin>(stream: &mut S, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Raw(bytes) => stream.write_all(&bytes).await?,
        Reply::Silent => tokio::time::sleep(Duration::from_secs(30)).await,
        Reply::Drip { head, every } => {
            stream.write_all(&head).await?;
            for _ in 0..300 {
                stream.write_all(b"x").await?;
                stream.flush().await?;
                tokio::time::sleep(every).await;
            }
        }
        Reply::Endless { head, chunked } => {
            stream.write_all(&head).await?;
            let chunk = vec![0xAB; 16 * 1024];
            for _ in 0..4096 {
                if chunked {
                    stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
                    stream.write_all(&chunk).await?;
                    stream.write_all(b"\r\n").await?;
                } else {
                    stream.write_all(&chunk).await?;
                }
            }
        }
        Reply::After(wait, bytes) => {
            tokio::time::sleep(wait).await;
            stream.write_all(&bytes).await?;
        }
    }
    stream.shutdown().await
}

/// The path of a request head's first line.
pub fn path_of(head: &str) -> &str {
    head.split_whitespace().nth(1).unwrap_or("")
}

/// A complete response with a `Content-Length`.
pub fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// The start of a PNG: enough for the signature check (the fetcher does not decode).
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

pub fn png_reply() -> Reply {
    Reply::Raw(response("200 OK", &[("Content-Type", "image/png")], PNG))
}

pub fn redirect(status: &str, location: &str) -> Reply {
    Reply::Raw(response(status, &[("Location", location)], b""))
}

/// The policy of most tests: short deadlines, a 64 KiB cap.
pub fn policy(allow: &str) -> FetchPolicy {
    FetchPolicy {
        allow: allow.parse().expect("allow-list"),
        connect_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(5),
        max_bytes: 64 * 1024,
        max_redirects: 3,
        per_host_concurrency: 4,
        user_agent: "ocular-test".into(),
    }
}

/// A fetcher whose resolver knows only `names` (all pointing at 127.0.0.1): no test ever
/// queries real DNS.
pub fn fetcher_with(policy: FetchPolicy, names: &[&str]) -> Fetcher {
    let resolver = names.iter().fold(StaticResolver::new(), |r, name| r.with(name, ["127.0.0.1".parse().unwrap()]));
    Fetcher::new(policy).expect("fetcher").with_resolver(resolver)
}

pub fn fetcher(allow: &str) -> Fetcher {
    fetcher_with(policy(allow), &[])
}
