//! [`Fetcher`]: the policy, and the redirect loop that applies it at every hop.
//!
//! One fetch is: screen the URL, then for each hop (at most `max_redirects + 1`) check the
//! host and its addresses, wait for a per-host slot, connect to a checked address, send one
//! GET; follow a redirect by going round again with the new URL, so that a public URL
//! redirecting to `http://169.254.169.254/` meets the same refusal as if it had been given
//! directly. The whole fetch runs under `total_timeout`, so a server that trickles bytes (or
//! a permit that never comes) cannot hold a request for longer than that.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{ACCEPT, CONNECTION, HOST, HeaderValue, LOCATION, USER_AGENT};
use hyper::{Request, StatusCode};
use url::{Position, Url};

use crate::allow::AllowList;
use crate::connect::{Dialer, default_roots, tls_connector};
use crate::content::read_image;
use crate::error::{BuildError, FetchError};
use crate::host_limit::HostLimits;
use crate::resolve::{Resolve, SystemResolver};
use crate::target::{self, Target};

/// What a fetch may do. Every field has a conservative default.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Private hosts and blocks the deployer trusts (`OCULAR_URL_ALLOW`).
    pub allow: AllowList,
    /// Deadline for resolving a host, and for each TCP connect and TLS handshake.
    pub connect_timeout: Duration,
    /// Deadline for the whole fetch: waiting for a host slot, every hop, the whole body.
    pub total_timeout: Duration,
    /// The largest body accepted, in bytes.
    pub max_bytes: u64,
    /// Redirects followed before giving up (each one re-checked).
    pub max_redirects: u32,
    /// Fetches in flight to one host at a time (0 is taken as 1).
    pub per_host_concurrency: usize,
    /// The `User-Agent` header sent with every request.
    pub user_agent: String,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            allow: AllowList::none(),
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(20),
            max_bytes: 20 * 1024 * 1024,
            max_redirects: 3,
            per_host_concurrency: 4,
            user_agent: concat!("ocular/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// A fetched image.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The body, at most `max_bytes` long.
    pub bytes: Bytes,
    /// The `Content-Type` the server declared (`None` when it sent none; the body then
    /// carried an image signature). Decoders should still sniff the format themselves.
    pub content_type: Option<String>,
    /// The URL of the response after redirects.
    pub final_url: String,
}

/// Fetches images from URLs chosen by strangers, under a [`FetchPolicy`]. Cheap to clone;
/// clones share the per-host limits and the connection counter.
#[derive(Clone)]
pub struct Fetcher {
    policy: Arc<FetchPolicy>,
    user_agent: HeaderValue,
    resolver: Arc<dyn Resolve>,
    tls: tokio_rustls::TlsConnector,
    hosts: Arc<HostLimits>,
    attempts: Arc<AtomicU64>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher with the system resolver and the Mozilla root certificates.
    pub fn new(policy: FetchPolicy) -> Result<Self, BuildError> {
        let user_agent = HeaderValue::from_str(&policy.user_agent)?;
        Ok(Self {
            user_agent,
            resolver: Arc::new(SystemResolver),
            tls: tls_connector(default_roots())?,
            hosts: Arc::new(HostLimits::new(policy.per_host_concurrency)),
            attempts: Arc::new(AtomicU64::new(0)),
            policy: Arc::new(policy),
        })
    }

    /// Replaces the resolver (tests use a fixed table so that they never query DNS).
    pub fn with_resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// Replaces the trusted root certificates (a private CA; tests use their own).
    pub fn with_root_certificates(mut self, roots: rustls::RootCertStore) -> Result<Self, BuildError> {
        self.tls = tls_connector(roots)?;
        Ok(self)
    }

    /// The policy in force.
    pub fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// How many TCP connections this fetcher (and its clones) has tried to open, ever.
    pub fn connect_attempts(&self) -> u64 {
        self.attempts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Fetches an image from `url`, following checked redirects; see the crate docs for the
    /// rules. Refusals ([`FetchError::is_refusal`]) happen before any connection is made.
    pub async fn fetch_image(&self, url: &str) -> Result<Fetched, FetchError> {
        let total = self.policy.total_timeout;
        let result = match tokio::time::timeout(total, self.fetch_hops(url)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout { phase: "fetch", after: total }),
        };
        if let Err(error) = &result {
            tracing::debug!(error.code = error.code(), %error, "image fetch failed");
        }
        result
    }

    async fn fetch_hops(&self, url: &str) -> Result<Fetched, FetchError> {
        let policy = &*self.policy;
        let mut url = target::parse(url)?;
        let mut redirects = 0;
        loop {
            let target = target::check(url, &policy.allow, &*self.resolver, policy.connect_timeout).await?;
            // The slot is held for the hop, body included, and released before the next one.
            let _slot = self.hosts.acquire(&target.host).await;
            let dialer = Dialer { tls: &self.tls, connect_timeout: policy.connect_timeout, attempts: &self.attempts };
            let (mut sender, _connection) = dialer.open(&target).await?;
            let response =
                sender.send_request(self.request(&target)?).await.map_err(|source| FetchError::Http { source })?;

            let status = response.status();
            if is_followed_redirect(status) {
                if redirects >= policy.max_redirects {
                    return Err(FetchError::TooManyRedirects { limit: policy.max_redirects });
                }
                redirects += 1;
                url = next_hop(&target.url, response.headers().get(LOCATION))?;
                tracing::debug!(from = %target.url, to = %url, "following redirect");
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status { status: status.as_u16() });
            }
            let (parts, body) = response.into_parts();
            let (bytes, content_type) = read_image(&parts.headers, body, policy.max_bytes).await?;
            return Ok(Fetched { bytes: Bytes::from(bytes), content_type, final_url: target.url.into() });
        }
    }

    /// `GET` in origin form, with the `Host` header naming the URL's host: the connection is
    /// to an address, but virtual hosting needs the name.
    fn request(&self, target: &Target) -> Result<Request<Empty<Bytes>>, FetchError> {
        let url = &target.url;
        let path = &url[Position::BeforePath..Position::AfterQuery];
        let host = &url[Position::BeforeHost..Position::AfterPort];
        Request::get(if path.is_empty() { "/" } else { path })
            .header(HOST, host)
            .header(USER_AGENT, self.user_agent.clone())
            .header(ACCEPT, "image/*")
            .header(CONNECTION, "close")
            .body(Empty::new())
            .map_err(|_| FetchError::InvalidUrl { reason: "cannot be sent as an HTTP request", source: None })
    }
}

fn is_followed_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The screened URL a redirect points to (relative locations resolved against the hop).
fn next_hop(current: &Url, location: Option<&HeaderValue>) -> Result<Url, FetchError> {
    let location = location.and_then(|l| l.to_str().ok()).ok_or(FetchError::BadRedirect { source: None })?;
    let next = current.join(location).map_err(|source| FetchError::BadRedirect { source: Some(source) })?;
    target::screen(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_locations_are_resolved_and_screened() {
        let here = Url::parse("https://img.example/a/b.png?x=1").unwrap();
        let hop = |l: &str| next_hop(&here, Some(&HeaderValue::from_str(l).unwrap()));
        assert_eq!(hop("c.png").unwrap().as_str(), "https://img.example/a/c.png");
        assert_eq!(hop("//cdn.example/d.png").unwrap().as_str(), "https://cdn.example/d.png");
        assert_eq!(hop("http://0x7f.1/").unwrap().as_str(), "http://127.0.0.1/");
        assert!(matches!(hop("file:///etc/passwd"), Err(FetchError::SchemeNotAllowed { .. })));
        assert!(matches!(hop("http://u:p@x.example/"), Err(FetchError::CredentialsNotAllowed)));
        assert!(matches!(hop("http://[::1"), Err(FetchError::BadRedirect { source: Some(_) })));
        assert!(matches!(next_hop(&here, None), Err(FetchError::BadRedirect { source: None })));
    }

    #[test]
    fn requests_carry_the_url_host_and_no_fragment() {
        let fetcher = Fetcher::new(FetchPolicy::default()).unwrap();
        let target =
            |u: &str| Target { url: Url::parse(u).unwrap(), host: String::new(), https: false, addrs: Vec::new() };
        let req = fetcher.request(&target("http://Img.Example:8080/p%20q.png?s=1#frag")).unwrap();
        assert_eq!(req.uri(), "/p%20q.png?s=1");
        assert_eq!(req.headers()[HOST], "img.example:8080");
        let req = fetcher.request(&target("https://[::1]:443/")).unwrap();
        assert_eq!(req.headers()[HOST], "[::1]");
        assert!(req.headers()[USER_AGENT].to_str().unwrap().starts_with("ocular/"));
    }

    #[test]
    fn a_bad_user_agent_is_a_build_error() {
        let policy = FetchPolicy { user_agent: "bad\nagent".into(), ..FetchPolicy::default() };
        assert!(Fetcher::new(policy).is_err());
    }
}
