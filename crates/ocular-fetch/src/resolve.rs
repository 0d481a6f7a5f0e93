//! Host name resolution, done once per hop and handed over as checked addresses.
//!
//! The classic SSRF bypass is DNS rebinding: a name resolves to a public address when it is
//! checked and to `127.0.0.1` when the HTTP client resolves it again to connect. Here a name is
//! resolved exactly once, every address is checked, and the connection is opened to those
//! addresses directly, so there is no second resolution to race.
//!
//! The resolver is a trait so that tests (and deployments with their own DNS policy) can plug
//! in a fixed table: tests then never query a real DNS server.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;

/// A boxed resolution future.
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;

/// Turns a host name into addresses. Implementations must not apply any policy: the fetcher
/// checks every address they return.
pub trait Resolve: Send + Sync + 'static {
    /// All addresses of `host` (a normalised DNS name, never an IP literal).
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a>;
}

/// The operating system's resolver (`getaddrinfo`, through tokio's blocking pool).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move {
            // The port is required by the API and irrelevant to the answer.
            let addrs = tokio::net::lookup_host((host, 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// A fixed table of names, for tests and for deployments that pin their image hosts. Names
/// not in the table fail to resolve: nothing falls through to real DNS.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    table: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the addresses of `name`.
    pub fn with(mut self, name: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        self.table.insert(crate::allow::normalise_host(name), addrs.into_iter().collect());
        self
    }
}

impl Resolve for StaticResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        let answer = self.table.get(host).cloned().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{host} is not in the static resolver's table"))
        });
        Box::pin(std::future::ready(answer))
    }
}

/// `localhost` and `*.localhost` are loopback by definition (RFC 6761 §6.3). Answering them
/// here means they are never sent to a DNS server, which could answer anything, and their
/// refusal does not depend on `/etc/hosts`.
pub(crate) fn special_use(host: &str) -> Option<Vec<IpAddr>> {
    let is_localhost = host == "localhost" || host.ends_with(".localhost");
    is_localhost.then(|| vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_names_are_answered_locally() {
        for name in ["localhost", "a.b.localhost"] {
            let addrs = special_use(name).unwrap();
            assert!(addrs.iter().all(IpAddr::is_loopback), "{name}");
        }
        assert!(special_use("notlocalhost").is_none());
        assert!(special_use("localhost.example").is_none());
    }
}
