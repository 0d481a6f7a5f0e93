//! Opening the connection of one hop: TCP to a checked address, TLS, HTTP/1.1.
//!
//! The socket is opened here, by address, rather than by a general HTTP client given a URL:
//! a client would resolve the name again (a rebinding window), might honour `HTTP_PROXY`
//! from the environment (sending the request somewhere the policy never checked), and pools
//! connections across policy decisions. Here the only addresses ever dialled are those that
//! [`crate::target::check`] returned, TLS verifies the certificate against the URL's host
//! name (SNI set to it), and each hop gets a fresh HTTP/1.1 connection that ends with it.
//! HTTP/1.1 only: image downloads gain nothing from HTTP/2 and it keeps the surface small.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use crate::error::FetchError;
use crate::target::Target;

/// A byte stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Aborts the task driving a connection when the hop is over (or the fetch is cancelled by
/// its deadline), so that no socket outlives the fetch that opened it.
pub(crate) struct ConnectionGuard(JoinHandle<()>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What one hop needs to open its connection.
pub(crate) struct Dialer<'a> {
    pub tls: &'a TlsConnector,
    pub connect_timeout: Duration,
    /// Counts every socket the fetcher tries to open: a metric, and the proof in tests that a
    /// refusal opened none.
    pub attempts: &'a AtomicU64,
}

impl Dialer<'_> {
    /// Connects to the target's checked addresses in order, the first that answers wins.
    pub(crate) async fn open(
        &self,
        target: &Target,
    ) -> Result<(SendRequest<Empty<Bytes>>, ConnectionGuard), FetchError> {
        let tcp = self.tcp(&target.addrs).await?;
        let io: Box<dyn Io> = if target.https { Box::new(self.tls(tcp, &target.host).await?) } else { Box::new(tcp) };
        let (sender, connection) =
            http1::handshake(TokioIo::new(io)).await.map_err(|source| FetchError::Http { source })?;
        let driver = tokio::spawn(async move {
            // The error, if any, also reaches the request or body future, which reports it.
            if let Err(error) = connection.await {
                tracing::debug!(%error, "fetch connection closed with an error");
            }
        });
        Ok((sender, ConnectionGuard(driver)))
    }

    async fn tcp(&self, addrs: &[SocketAddr]) -> Result<TcpStream, FetchError> {
        let mut last_error = None;
        for &addr in addrs {
            loopback_only_guard(addr)?;
            self.attempts.fetch_add(1, Ordering::Relaxed);
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    // Requests are one small write; don't let Nagle delay it.
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Ok(Err(source)) => last_error = Some(FetchError::Connect { addr, source }),
                Err(_) => last_error = Some(FetchError::Timeout { phase: "connect", after: self.connect_timeout }),
            }
            tracing::debug!(%addr, "fetch connect failed, trying the next address");
        }
        Err(last_error.unwrap_or(FetchError::NoAddresses { host: String::new() }))
    }

    async fn tls(&self, tcp: TcpStream, host: &str) -> Result<impl Io + use<>, FetchError> {
        let tls_error = |source: io::Error| FetchError::Tls { host: host.to_owned(), source };
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| tls_error(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        match tokio::time::timeout(self.connect_timeout, self.tls.connect(name, tcp)).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(source)) => Err(tls_error(source)),
            Err(_) => Err(FetchError::Timeout { phase: "connect", after: self.connect_timeout }),
        }
    }
}

/// With the `loopback-only` feature (this crate's test builds) no socket may go anywhere but
/// loopback, whatever the policy decided: a bug in the policy must not turn a test run into
/// traffic to a real network.
fn loopback_only_guard(addr: SocketAddr) -> Result<(), FetchError> {
    if cfg!(feature = "loopback-only") && !addr.ip().to_canonical().is_loopback() {
        return Err(FetchError::Connect {
            addr,
            source: io::Error::new(
                io::ErrorKind::PermissionDenied,
                "loopback-only build refuses non-loopback addresses",
            ),
        });
    }
    Ok(())
}

/// The client TLS configuration: the given roots (the Mozilla set from `webpki-roots` by
/// default, so no system certificate store is needed), ring as the crypto provider, and
/// HTTP/1.1 as the only ALPN protocol.
pub(crate) fn tls_connector(roots: rustls::RootCertStore) -> Result<TlsConnector, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The Mozilla root set.
pub(crate) fn default_roots() -> rustls::RootCertStore {
    rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }
}
