//! The gate every hop passes before any socket opens: URL syntax, scheme, credentials, host,
//! resolution, and the address check.
//!
//! Hosts are read by the `url` crate, which implements the WHATWG URL standard that browsers
//! and most HTTP clients follow. That matters because IPv4 has many spellings: `2130706433`,
//! `0x7f.1`, `0177.0.0.1`, `127.1`, `%31%32%37.0.0.1` and full-width digits all *are*
//! 127.0.0.1 to a URL parser. Checking the string would miss them; checking the parsed
//! address cannot. IP-literal hosts never reach DNS; names are resolved once and the checked
//! addresses are the only ones the connection may use.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

use crate::allow::{AllowList, normalise_host};
use crate::classify::{canonical, classify};
use crate::error::FetchError;
use crate::resolve::{Resolve, special_use};

/// A hop that passed the policy: the URL and the only addresses it may connect to.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub url: Url,
    /// The host as the URL parser normalised it, without brackets or trailing dot: the TLS
    /// server name and the per-host concurrency key.
    pub host: String,
    pub https: bool,
    pub addrs: Vec<SocketAddr>,
}

/// Parses `text` and applies the checks that need no network: scheme, credentials, host.
pub(crate) fn parse(text: &str) -> Result<Url, FetchError> {
    let url = Url::parse(text.trim())
        .map_err(|source| FetchError::InvalidUrl { reason: "not an absolute URL", source: Some(source) })?;
    screen(url)
}

/// The syntactic checks, also applied to every redirect `Location`.
pub(crate) fn screen(url: Url) -> Result<Url, FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::SchemeNotAllowed { scheme: url.scheme().to_owned() });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FetchError::CredentialsNotAllowed);
    }
    if url.host().is_none() {
        return Err(FetchError::InvalidUrl { reason: "no host", source: None });
    }
    Ok(url)
}

/// Resolves the host of a screened URL (at most once, within `resolve_timeout`) and checks
/// every address. A single refused address refuses the whole hop: a name that mixes public
/// and private answers is exactly what a rebinding attack looks like.
pub(crate) async fn check(
    url: Url,
    allow: &AllowList,
    resolver: &dyn Resolve,
    resolve_timeout: Duration,
) -> Result<Target, FetchError> {
    let https = url.scheme() == "https";
    // `screen` guarantees http(s), whose default ports are known.
    let port = url.port_or_known_default().unwrap_or(if https { 443 } else { 80 });
    let (host, ips, name_allowed) = match url.host() {
        Some(Host::Ipv4(v4)) => (v4.to_string(), vec![IpAddr::V4(v4)], false),
        Some(Host::Ipv6(v6)) => (v6.to_string(), vec![IpAddr::V6(v6)], false),
        Some(Host::Domain(name)) => {
            let name = normalise_host(name);
            let ips = resolve(&name, resolver, resolve_timeout).await?;
            let allowed = allow.allows_host(&name, port);
            (name, ips, allowed)
        }
        None => return Err(FetchError::InvalidUrl { reason: "no host", source: None }),
    };

    let from_dns = matches!(url.host(), Some(Host::Domain(_)));
    let mut addrs: Vec<SocketAddr> = Vec::with_capacity(ips.len());
    for ip in ips {
        let ip = canonical(ip);
        if !name_allowed
            && !allow.allows_addr(ip, port)
            && let Some(range) = classify(ip)
        {
            return Err(FetchError::AddressNotAllowed { host, addr: ip, range, from_dns });
        }
        let addr = SocketAddr::new(ip, port);
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err(FetchError::NoAddresses { host });
    }
    Ok(Target { url, host, https, addrs })
}

async fn resolve(name: &str, resolver: &dyn Resolve, timeout: Duration) -> Result<Vec<IpAddr>, FetchError> {
    if let Some(ips) = special_use(name) {
        return Ok(ips);
    }
    match tokio::time::timeout(timeout, resolver.resolve(name)).await {
        Ok(Ok(ips)) => Ok(ips),
        Ok(Err(source)) => Err(FetchError::Resolve { host: name.to_owned(), source }),
        Err(_) => Err(FetchError::Timeout { phase: "resolve", after: timeout }),
    }
}

#[cfg(test)]
#[path = "target_tests.rs"]
mod tests;
