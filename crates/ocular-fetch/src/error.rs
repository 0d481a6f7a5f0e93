//! Errors of URL fetching, each with a stable code.
//!
//! The server maps [`FetchError::code`] straight into its JSON error envelope, so the codes
//! are part of the public API: clients branch on them, logs aggregate on them. A variant keeps
//! its cause (`#[source]`) so the log line says *why* a connect or a TLS handshake failed,
//! while the client only ever sees the code and the top-level message.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::classify::BlockedRange;

/// Why a fetch did not produce an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The text is not a URL, or not one that can be fetched (no host).
    #[error("invalid URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: &'static str,
        /// The parser's error, when there was one.
        #[source]
        source: Option<url::ParseError>,
    },
    /// Only `http` and `https` are fetched: `file:`, `ftp:`, `gopher:` and friends reach
    /// local files or legacy services that an image URL has no business touching.
    #[error("URL scheme {scheme:?} is not allowed; use http or https")]
    SchemeNotAllowed {
        /// The refused scheme.
        scheme: String,
    },
    /// `user:pass@host` URLs are refused: they leak credentials into logs and are a classic
    /// way to disguise the real host (`http://trusted.com@evil/`).
    #[error("URLs with credentials (user:password@) are not allowed")]
    CredentialsNotAllowed,
    /// The host is, or resolves to, an address in a range that is never fetched (loopback,
    /// private, link-local, ...) and the allow-list does not cover it (for that port).
    ///
    /// The message names the address only when the URL did (an IP literal): what a name
    /// resolves to inside the deployment's network is not the client's to learn, or an
    /// SSRF refusal becomes an oracle for the internal DNS ("resolves to 10.1.2.3"). The
    /// fields keep it for logs.
    #[error("{}", address_refusal(host, range, *from_dns))]
    AddressNotAllowed {
        /// The host as written in the URL (normalised).
        host: String,
        /// The refused address (IPv4-mapped forms shown as their IPv4).
        addr: IpAddr,
        /// The range it falls in.
        range: BlockedRange,
        /// The address came from resolving a name (not from the URL itself).
        from_dns: bool,
    },
    /// The host name could not be resolved.
    #[error("could not resolve host {host}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// The host name resolved to no address at all.
    #[error("host {host} has no addresses")]
    NoAddresses {
        /// The host name.
        host: String,
    },
    /// Every checked address refused or failed the TCP connection. The message names the
    /// port, not the address (which may have come from internal DNS).
    #[error("could not connect to the host on port {}", addr.port())]
    Connect {
        /// The last address tried.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake failed (bad certificate, wrong name, protocol error).
    #[error("TLS handshake with {host} failed")]
    Tls {
        /// The server name the certificate had to match.
        host: String,
        /// The TLS error.
        #[source]
        source: io::Error,
    },
    /// The HTTP exchange failed (malformed response, connection closed early, ...).
    #[error("HTTP exchange failed")]
    Http {
        /// hyper's error.
        #[source]
        source: hyper::Error,
    },
    /// The server answered with a non-success status.
    #[error("server answered HTTP {status}")]
    Status {
        /// The status code.
        status: u16,
    },
    /// A redirect without a usable `Location` header.
    #[error("redirect without a valid Location header")]
    BadRedirect {
        /// The parser's error, when the header was present but not a URL.
        #[source]
        source: Option<url::ParseError>,
    },
    /// A deadline passed: resolution or connection (the connect deadline) or the whole fetch.
    #[error("{phase} timed out after {} ms", after.as_millis())]
    Timeout {
        /// `"resolve"`, `"connect"` or `"fetch"`.
        phase: &'static str,
        /// The deadline that passed.
        after: Duration,
    },
    /// The body is larger than the byte cap (declared up front or seen while streaming).
    #[error("response is larger than the {limit}-byte limit")]
    TooLarge {
        /// The cap.
        limit: u64,
        /// The size the server declared in `Content-Length`, if it did.
        declared: Option<u64>,
    },
    /// The response is not an image: a non-`image/*` type, or no type and no image signature.
    #[error("response is not an image (content type {content_type:?})")]
    NotAnImage {
        /// The declared `Content-Type`, if any.
        content_type: Option<String>,
    },
    /// More redirects than the policy allows.
    #[error("more than {limit} redirects")]
    TooManyRedirects {
        /// The policy's limit.
        limit: u32,
    },
}

fn address_refusal(host: &str, range: &BlockedRange, from_dns: bool) -> String {
    if from_dns {
        format!(
            "host {host} resolves to an address that is not allowed (private, loopback, link-local and reserved \
             ranges are refused)"
        )
    } else {
        format!("host {host} is a {range} address, which is not allowed")
    }
}

impl FetchError {
    /// The stable machine-readable code for this error, used in API error envelopes.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidUrl { .. } => "url_invalid",
            Self::SchemeNotAllowed { .. } | Self::CredentialsNotAllowed | Self::AddressNotAllowed { .. } => {
                "url_not_allowed"
            }
            Self::Resolve { .. }
            | Self::NoAddresses { .. }
            | Self::Connect { .. }
            | Self::Tls { .. }
            | Self::Http { .. }
            | Self::Status { .. }
            | Self::BadRedirect { .. } => "url_fetch_failed",
            Self::Timeout { .. } => "url_timeout",
            Self::TooLarge { .. } => "url_too_large",
            Self::NotAnImage { .. } => "url_not_an_image",
            Self::TooManyRedirects { .. } => "url_too_many_redirects",
        }
    }

    /// Whether the policy refused the URL before any connection was made. Refusals are the
    /// user's to fix (a 4xx); the other errors are the remote server's doing.
    pub fn is_refusal(&self) -> bool {
        self.code() == "url_not_allowed" || self.code() == "url_invalid"
    }
}

/// A malformed `OCULAR_URL_ALLOW` entry.
#[derive(Debug, thiserror::Error)]
#[error("invalid allow-list entry {entry:?}: {reason}")]
pub struct AllowListError {
    /// The offending entry, trimmed.
    pub entry: String,
    /// What is wrong with it.
    pub reason: &'static str,
    /// The parser's error, when there was one.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// The fetcher could not be built from its policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The TLS configuration was refused.
    #[error("could not build the URL fetcher's TLS configuration")]
    Tls(#[from] rustls::Error),
    /// The user agent cannot be sent as an HTTP header value.
    #[error("the fetch user agent is not a valid header value")]
    UserAgent(#[from] hyper::header::InvalidHeaderValue),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal names what the client sent, never what internal DNS answered.
    #[test]
    fn refusals_do_not_echo_resolved_addresses() {
        let addr: IpAddr = "10.1.2.3".parse().unwrap();
        let named = FetchError::AddressNotAllowed {
            host: "intranet.example".into(),
            addr,
            range: BlockedRange::Private,
            from_dns: true,
        };
        assert!(!named.to_string().contains("10.1.2.3"), "{named}");
        assert!(named.to_string().contains("intranet.example"), "{named}");
        let literal = FetchError::AddressNotAllowed {
            host: "10.1.2.3".into(),
            addr,
            range: BlockedRange::Private,
            from_dns: false,
        };
        assert!(literal.to_string().contains("10.1.2.3"), "the client's own literal may be named: {literal}");
        let connect = FetchError::Connect {
            addr: "10.1.2.3:8080".parse().unwrap(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(connect.to_string(), "could not connect to the host on port 8080");
    }

    #[test]
    fn codes_are_stable() {
        let cases: [(FetchError, &str); 7] = [
            (FetchError::InvalidUrl { reason: "x", source: None }, "url_invalid"),
            (FetchError::CredentialsNotAllowed, "url_not_allowed"),
            (FetchError::Status { status: 500 }, "url_fetch_failed"),
            (FetchError::Timeout { phase: "fetch", after: Duration::from_secs(1) }, "url_timeout"),
            (FetchError::TooLarge { limit: 1, declared: None }, "url_too_large"),
            (FetchError::NotAnImage { content_type: None }, "url_not_an_image"),
            (FetchError::TooManyRedirects { limit: 3 }, "url_too_many_redirects"),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code, "{err}");
        }
        assert!(FetchError::SchemeNotAllowed { scheme: "file".into() }.is_refusal());
        assert!(!FetchError::Status { status: 404 }.is_refusal());
    }
}
