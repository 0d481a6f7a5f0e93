//! The deployer's allow-list, `OCULAR_URL_ALLOW`: private hosts that fetches may reach.
//!
//! The address classification refuses every private range, which is right for URLs sent by
//! strangers but wrong for a deployer whose product images live on an internal CDN, and for
//! tests that serve images from their own `127.0.0.1` listener. The allow-list is the one,
//! explicit way around the refusal. Syntax: comma-separated entries, each one of
//!
//! - a host name (`images.internal`): that name may resolve anywhere; matched exactly after
//!   the URL parser's normalisation (lower case, IDNA, trailing dot dropped), no wildcards;
//! - an IP address (`10.0.0.5`, `::1`, `[::1]`): that address is allowed whatever name or
//!   textual form (`127.1`, `2130706433`, `[::ffff:127.0.0.1]`) leads to it;
//! - a CIDR block (`10.20.0.0/16`, `fd00::/8`);
//!
//! each optionally with a port, `:PORT` (IPv6 in brackets: `[fd00::5]:8443`, `[fd00::/8]:443`):
//! then only that port is allowed. An entry without a port allows every port of what it names,
//! so an allow-listed image host also exposes its Redis and admin ports to any URL a stranger
//! sends; name the port whenever the images are served on a known one.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use crate::classify::canonical;
use crate::error::AllowListError;

/// Hosts and address blocks (each with an optional port) that bypass the private-range
/// refusal. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    hosts: Vec<(String, Option<u16>)>,
    nets: Vec<(IpNet, Option<u16>)>,
}

/// Splits `HOST:PORT`, `[V6]:PORT`, `[V6 or CIDR]` and plain entries into (entry, port).
fn split_port(entry: &str) -> Result<(&str, Option<u16>), &'static str> {
    let parse = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err("not a port (1 to 65535)"),
        Ok(port) => Ok(Some(port)),
    };
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((inner, "")) => Ok((inner, None)),
            Some((inner, port)) => match port.strip_prefix(':') {
                Some(p) => Ok((inner, parse(p)?)),
                None => Err("unexpected text after `]`"),
            },
            None => Err("`[` without `]`"),
        };
    }
    // One colon: a name, IPv4 or IPv4 block with a port. More: a bare IPv6 address or block.
    match entry.split_once(':') {
        Some((host, port)) if !port.contains(':') => Ok((host, parse(port)?)),
        _ => Ok((entry, None)),
    }
}

impl AllowList {
    /// An allow-list that allows nothing private (the safe default).
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses the `OCULAR_URL_ALLOW` syntax. Empty entries (a trailing comma, an empty
    /// variable) are ignored; any malformed entry fails the whole list, so that a typo in
    /// configuration is reported at start-up instead of silently allowing less.
    pub fn parse(spec: &str) -> Result<Self, AllowListError> {
        let mut list = Self::default();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            list.push(entry)?;
        }
        Ok(list)
    }

    fn push(&mut self, entry: &str) -> Result<(), AllowListError> {
        let fail = |reason, source: Option<Box<dyn std::error::Error + Send + Sync>>| AllowListError {
            entry: entry.to_owned(),
            reason,
            source,
        };
        let (unbracketed, port) = split_port(entry).map_err(|reason| fail(reason, None))?;
        if unbracketed.contains('/') {
            let net = IpNet::from_str(unbracketed).map_err(|e| fail("not a CIDR block", Some(Box::new(e))))?;
            self.nets.push((canonical_net(net.trunc()), port));
        } else if let Ok(addr) = IpAddr::from_str(unbracketed) {
            self.nets.push((IpNet::from(canonical(addr)), port));
        } else if unbracketed.contains('*') {
            return Err(fail("wildcards are not supported; list each host name", None));
        } else {
            // The URL parser's own host rules, so that an entry means exactly what the same
            // text means in a URL: `127.1` is 127.0.0.1, `Images.Example.` is images.example.
            match url::Host::parse(unbracketed).map_err(|e| fail("not a host name or IP address", Some(Box::new(e))))? {
                url::Host::Domain(name) => self.hosts.push((normalise_host(&name), port)),
                url::Host::Ipv4(v4) => self.nets.push((IpNet::from(IpAddr::V4(v4)), port)),
                url::Host::Ipv6(v6) => self.nets.push((IpNet::from(canonical(IpAddr::V6(v6))), port)),
            }
        }
        Ok(())
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.nets.is_empty()
    }

    /// Whether the host name (already normalised by the URL parser) is listed for `port`.
    pub fn allows_host(&self, host: &str, port: u16) -> bool {
        let host = normalise_host(host);
        self.hosts.iter().any(|(h, p)| *h == host && p.is_none_or(|p| p == port))
    }

    /// Whether the address, in canonical form, is inside a listed address or block for `port`.
    pub fn allows_addr(&self, addr: IpAddr, port: u16) -> bool {
        let addr = canonical(addr);
        self.nets.iter().any(|(net, p)| net.contains(&addr) && p.is_none_or(|p| p == port))
    }

    /// Whether some entry allows every port (logged at start-up as advice).
    pub fn has_portless_entries(&self) -> bool {
        self.hosts.iter().any(|(_, p)| p.is_none()) || self.nets.iter().any(|(_, p)| p.is_none())
    }
}

impl fmt::Display for AllowList {
    /// The canonical form of the list, for logging the effective configuration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts = self.hosts.iter().map(|(h, p)| match p {
            Some(p) => format!("{h}:{p}"),
            None => h.clone(),
        });
        let nets = self.nets.iter().map(|(n, p)| match (n, p) {
            (IpNet::V6(_), Some(p)) => format!("[{n}]:{p}"),
            (_, Some(p)) => format!("{n}:{p}"),
            (_, None) => n.to_string(),
        });
        let all: Vec<String> = hosts.chain(nets).collect();
        f.write_str(&all.join(","))
    }
}

impl FromStr for AllowList {
    type Err = AllowListError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Host names compare without the DNS root's trailing dot: `localhost.` is `localhost`.
pub(crate) fn normalise_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// `::ffff:10.0.0.0/104` is the block `10.0.0.0/8`; addresses are compared canonically.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map(IpNet::V4).unwrap_or(net),
            None => net,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_hosts_addresses_and_blocks() {
        let list = AllowList::parse(" images.internal , 10.0.0.5,[::1], fd00::/8, 192.168.4.0/24,").unwrap();
        assert!(list.allows_host("images.internal", 80));
        assert!(list.allows_host("IMAGES.internal.", 80));
        assert!(!list.allows_host("other.internal", 80));
        assert!(!list.allows_host("sub.images.internal", 80));
        assert!(list.allows_addr(ip("10.0.0.5"), 80));
        assert!(!list.allows_addr(ip("10.0.0.6"), 80));
        assert!(list.allows_addr(ip("::1"), 80));
        assert!(list.allows_addr(ip("fd12::3"), 80));
        assert!(list.allows_addr(ip("192.168.4.200"), 80));
        assert!(!list.allows_addr(ip("192.168.5.1"), 80));
        assert_eq!(list.to_string(), "images.internal,10.0.0.5/32,::1/128,fd00::/8,192.168.4.0/24");
    }

    #[test]
    fn addresses_match_in_every_textual_and_mapped_form() {
        let list = AllowList::parse("127.0.0.1").unwrap();
        assert!(list.allows_addr(ip("::ffff:127.0.0.1"), 80));
        // Entries are read like URL hosts: short and numeric IPv4 forms mean the same address.
        for form in ["127.1", "2130706433", "0x7f000001", "017700000001", "[::ffff:7f00:1]"] {
            let list = AllowList::parse(form).unwrap();
            assert!(list.allows_addr(ip("127.0.0.1"), 80), "{form}");
            assert!(!list.allows_host(form, 80), "{form} is an address, not a name");
        }
        let mapped_block = AllowList::parse("::ffff:10.0.0.0/104").unwrap();
        assert!(mapped_block.allows_addr(ip("10.200.0.1"), 80));
    }

    #[test]
    fn cidr_host_bits_are_ignored() {
        let list = AllowList::parse("10.1.2.3/8").unwrap();
        assert!(list.allows_addr(ip("10.200.0.1"), 80));
    }

    /// A port narrows an entry to that port; without one every port is allowed.
    #[test]
    fn ports_narrow_entries() {
        let list =
            AllowList::parse("images.internal:8443, 10.0.0.5:80, [fd00::/8]:443, 10.9.0.0/16:9000, [::1]").unwrap();
        assert!(list.allows_host("images.internal", 8443));
        assert!(!list.allows_host("images.internal", 6379), "another port of an allowed host");
        assert!(list.allows_addr(ip("10.0.0.5"), 80));
        assert!(!list.allows_addr(ip("10.0.0.5"), 22));
        assert!(list.allows_addr(ip("fd00::7"), 443));
        assert!(!list.allows_addr(ip("fd00::7"), 80));
        assert!(list.allows_addr(ip("10.9.200.1"), 9000));
        assert!(list.allows_addr(ip("::1"), 1), "a bracketed address without a port");
        assert!(list.has_portless_entries());
        assert_eq!(list.to_string(), "images.internal:8443,10.0.0.5/32:80,[fd00::/8]:443,10.9.0.0/16:9000,::1/128");
        assert!(!AllowList::parse("a.internal:80").unwrap().has_portless_entries());
    }

    #[test]
    fn empty_spec_allows_nothing() {
        let list = AllowList::parse(" , ,").unwrap();
        assert!(list.is_empty());
        assert!(!list.allows_addr(ip("127.0.0.1"), 80));
        assert_eq!(list, AllowList::none());
    }

    #[test]
    fn malformed_entries_are_errors() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/x",
            "*.example.com",
            "host:0",
            "host:65536",
            "host:",
            "[::1]:x",
            "[::1",
            "[::1]8080",
            "a b",
            "exa mple",
            "fe80::/129",
        ] {
            let err = AllowList::parse(&format!("ok.example,{bad}")).unwrap_err();
            assert_eq!(err.entry, bad);
        }
    }
}
