//! TLS to PostgreSQL with rustls, and the libpq `sslmode` / `sslrootcert` URL parameters.
//!
//! Managed PostgreSQL services require TLS, and a URL copied from their console says so in
//! libpq's words (`?sslmode=verify-full&sslrootcert=ca.pem`). `tokio-postgres` knows only
//! `disable`, `prefer` and `require`, brings no TLS of its own and refuses parameters it does
//! not know, so both are taken out of the URL here ([`TlsSettings::split`]) and a rustls
//! connector is given to every connection. The modes mean what libpq's mean:
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (the default, as in libpq) | if the server offers TLS | no |
//! | `require` | always | no; with `sslrootcert`, its chain (as libpq does) |
//! | `verify-ca` | always | chain to the roots |
//! | `verify-full` | always | chain and host name |
//!
//! Roots: the PEM file `sslrootcert` names (a managed service's CA bundle), `sslrootcert=system`
//! for the web PKI roots compiled in (`webpki-roots`), and the compiled-in roots when a
//! verifying mode names none. Client certificates (`sslcert`, `sslkey`) are refused with a
//! clear message rather than ignored. No channel binding is offered (SCRAM without `-PLUS`).

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::StoreError;

/// libpq's `sslmode`, all five.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// What the URL asked for, taken out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: Mode,
    /// `None`: the compiled-in roots (only used by verifying modes).
    pub root_cert: Option<PathBuf>,
}

impl TlsSettings {
    /// Removes `sslmode` and `sslrootcert` from a URL's query; returns the rest of the URL and
    /// the settings. Errors name the parameter, never the URL (it may hold a password).
    pub fn split(url: &str) -> Result<(String, TlsSettings), StoreError> {
        let invalid = |reason: String| StoreError::Invalid { field: "DATABASE_URL".into(), reason };
        let mut settings = TlsSettings { mode: Mode::Prefer, root_cert: None };
        let Some((base, query)) = url.split_once('?') else { return Ok((url.to_string(), settings)) };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => {
                    settings.mode = match value {
                        "disable" => Mode::Disable,
                        // libpq's `allow` tries plain text first; TLS when offered is no worse.
                        "allow" | "prefer" => Mode::Prefer,
                        "require" => Mode::Require,
                        "verify-ca" => Mode::VerifyCa,
                        "verify-full" => Mode::VerifyFull,
                        other => {
                            return Err(invalid(format!(
                                "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                            )));
                        }
                    }
                }
                "sslrootcert" => settings.root_cert = Some(PathBuf::from(percent_decode(value))),
                "sslcert" | "sslkey" | "sslpassword" | "sslcrl" => {
                    return Err(invalid(format!("{key} (client certificates) is not supported; use a password")));
                }
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
        Ok((rest, settings))
    }

    /// The mode `tokio-postgres` negotiates with (verification is the connector's business).
    pub fn ssl_mode(&self) -> SslMode {
        match self.mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }

    /// The connector every pooled connection uses. Reads `sslrootcert` once, here, so a missing
    /// or unreadable CA file stops start-up instead of failing each connection.
    pub fn connector(&self) -> Result<RustlsConnect, StoreError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls_err = |e: rustls::Error| StoreError::Invalid { field: "sslrootcert".into(), reason: e.to_string() };
        let check = match (self.mode, &self.root_cert) {
            (Mode::Disable | Mode::Prefer, _) | (Mode::Require, None) => Check::None,
            (Mode::Require | Mode::VerifyCa, Some(_)) | (Mode::VerifyCa, None) => Check::Chain,
            (Mode::VerifyFull, _) => Check::Full,
        };
        let verifier: Arc<dyn ServerCertVerifier> = match check {
            Check::None => Arc::new(Unverified(provider.clone())),
            Check::Chain | Check::Full => {
                let roots = Arc::new(self.roots()?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| StoreError::Invalid { field: "sslrootcert".into(), reason: e.to_string() })?;
                if check == Check::Full { webpki } else { Arc::new(AnyName(webpki)) }
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(RustlsConnect(Arc::new(config)))
    }

    fn roots(&self) -> Result<RootCertStore, StoreError> {
        let mut roots = RootCertStore::empty();
        match &self.root_cert {
            Some(path) if path.as_os_str() != "system" => {
                let unreadable = |reason: String| StoreError::Invalid {
                    field: "sslrootcert".into(),
                    reason: format!("{}: {reason}", path.display()),
                };
                for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(e.to_string()))? {
                    roots.add(cert.map_err(|e| unreadable(e.to_string()))?).map_err(|e| unreadable(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(unreadable("no PEM certificate in the file".into()));
                }
            }
            _ => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        Ok(roots)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    None,
    Chain,
    Full,
}

/// `%2F`-style escapes in a URL parameter (a CA path with a slash or a space).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `prefer` and `require` without roots: encrypted, the certificate not checked (libpq's
/// meaning of those modes). Handshake signatures are still verified, so the peer holds the key
/// of the certificate it sent.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to the roots; the name in the certificate may differ from
/// the host connected to (a proxy, an IP address).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The `tokio-postgres` connector over rustls.
#[derive(Clone)]
pub struct RustlsConnect(Arc<ClientConfig>);

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsHandshake;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsHandshake, io::Error> {
        let name = ServerName::try_from(domain.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("host {domain:?}: {e}")))?;
        Ok(RustlsHandshake { config: self.0.clone(), name })
    }
}

/// One connection's handshake.
pub struct RustlsHandshake {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsHandshake
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move { Ok(RustlsStream(connector.connect(self.name, stream).await?)) })
    }
}

/// An encrypted connection.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_parameters_are_taken_out_of_the_url() {
        let (rest, s) = TlsSettings::split(
            "postgres://u:pw@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&options=-c%20x%3D1",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:pw@h/db?options=-c%20x%3D1");
        assert_eq!(s, TlsSettings { mode: Mode::VerifyFull, root_cert: Some("/etc/ca.pem".into()) });
        assert_eq!(s.ssl_mode(), SslMode::Require);
        let (rest, s) = TlsSettings::split("postgres://h/db?sslmode=require").unwrap();
        assert_eq!((rest.as_str(), s.mode), ("postgres://h/db", Mode::Require));
        let (_, s) = TlsSettings::split("postgres://h/db").unwrap();
        assert_eq!(s.mode, Mode::Prefer, "libpq's default");
        assert_eq!(TlsSettings::split("postgres://h/db?sslmode=disable").unwrap().1.ssl_mode(), SslMode::Disable);
        let refused = TlsSettings::split("postgres://u:secret@h/db?sslmode=maybe").unwrap_err().to_string();
        assert!(refused.contains("sslmode=maybe") && !refused.contains("secret"), "{refused}");
        assert!(TlsSettings::split("postgres://h/db?sslcert=c.pem").unwrap_err().to_string().contains("not supported"));
    }

    #[test]
    fn a_missing_or_empty_ca_file_stops_start_up() {
        let missing = TlsSettings { mode: Mode::VerifyFull, root_cert: Some("/nonexistent/ca.pem".into()) };
        assert!(missing.connector().is_err());
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = TlsSettings { mode: Mode::VerifyCa, root_cert: Some(empty) }.connector().err().unwrap();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        // The compiled-in roots need no file.
        TlsSettings { mode: Mode::VerifyFull, root_cert: None }.connector().unwrap();
        TlsSettings { mode: Mode::Require, root_cert: None }.connector().unwrap();
    }
}
