//! Which IP addresses a fetch may connect to.
//!
//! Search by URL lets a stranger choose where the server connects. Without this check a URL
//! can reach the cloud metadata service (`169.254.169.254`, which hands out credentials), the
//! host's own admin ports (`127.0.0.1`), or the private network behind the server. The rule is
//! "globally routable unicast only": every special-purpose range from the IANA registries
//! (RFC 6890 and successors) is refused.
//!
//! IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
//! `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`) are judged by the IPv4
//! they embed, because that is where the packets end up: `[::ffff:127.0.0.1]` is loopback.
//!
//! Classification is pure, so every range is unit-tested on parsed addresses: tests never need
//! to connect anywhere to prove a refusal.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A special-purpose address range that fetches refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlockedRange {
    /// `0.0.0.0/8`, `::` — on Linux, connecting to `0.0.0.0` reaches the local host.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`) and IPv6 local-use NAT64 `64:ff9b:1::/48`.
    Private,
    /// Carrier-grade NAT shared space, `100.64.0.0/10` (RFC 6598).
    SharedCgnat,
    /// `169.254.0.0/16` (cloud metadata lives at `169.254.169.254`), `fe80::/10`.
    LinkLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// IPv6 unique local addresses, `fc00::/7`: the IPv6 private network.
    UniqueLocal,
    /// Documentation ranges: TEST-NET-1/2/3, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Benchmarking ranges: `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    /// Everything else that is not global unicast: `240/4`, IETF protocol assignments,
    /// the 6to4 relay anycast, discard-only, Teredo, deprecated site-local and
    /// IPv4-compatible IPv6, and all IPv6 outside `2000::/3`.
    Reserved,
}

impl fmt::Display for BlockedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unspecified => "unspecified",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::SharedCgnat => "carrier-grade NAT",
            Self::LinkLocal => "link-local",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::UniqueLocal => "unique local",
            Self::Documentation => "documentation",
            Self::Benchmarking => "benchmarking",
            Self::Reserved => "reserved",
        })
    }
}

/// IPv4 special-purpose ranges as (network, prefix length, range). Order matters only where
/// ranges nest: the broadcast address is listed before the `240/4` block that contains it.
const V4_RANGES: &[(u32, u8, BlockedRange)] = &[
    (0x0000_0000, 8, BlockedRange::Unspecified),    // 0.0.0.0/8 "this network"
    (0x0A00_0000, 8, BlockedRange::Private),        // 10.0.0.0/8
    (0x6440_0000, 10, BlockedRange::SharedCgnat),   // 100.64.0.0/10
    (0x7F00_0000, 8, BlockedRange::Loopback),       // 127.0.0.0/8
    (0xA9FE_0000, 16, BlockedRange::LinkLocal),     // 169.254.0.0/16
    (0xAC10_0000, 12, BlockedRange::Private),       // 172.16.0.0/12
    (0xC000_0000, 24, BlockedRange::Reserved),      // 192.0.0.0/24 IETF protocol assignments
    (0xC000_0200, 24, BlockedRange::Documentation), // 192.0.2.0/24 TEST-NET-1
    (0xC058_6300, 24, BlockedRange::Reserved),      // 192.88.99.0/24 6to4 relay anycast
    (0xC0A8_0000, 16, BlockedRange::Private),       // 192.168.0.0/16
    (0xC612_0000, 15, BlockedRange::Benchmarking),  // 198.18.0.0/15
    (0xC633_6400, 24, BlockedRange::Documentation), // 198.51.100.0/24 TEST-NET-2
    (0xCB00_7100, 24, BlockedRange::Documentation), // 203.0.113.0/24 TEST-NET-3
    (0xE000_0000, 4, BlockedRange::Multicast),      // 224.0.0.0/4
    (0xFFFF_FFFF, 32, BlockedRange::Broadcast),     // 255.255.255.255
    (0xF000_0000, 4, BlockedRange::Reserved),       // 240.0.0.0/4
];

/// The range `ip` falls in, or `None` when it is globally routable and may be fetched.
pub fn classify(ip: IpAddr) -> Option<BlockedRange> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// [`classify`] for IPv4.
pub fn classify_v4(ip: Ipv4Addr) -> Option<BlockedRange> {
    let bits = u32::from(ip);
    V4_RANGES.iter().find(|(net, len, _)| prefix_match_v4(bits, *net, *len)).map(|(_, _, range)| *range)
}

/// [`classify`] for IPv6, judging IPv4-carrying forms by the IPv4 they carry.
pub fn classify_v6(ip: Ipv6Addr) -> Option<BlockedRange> {
    let s = ip.segments();
    let embedded_tail = || Ipv4Addr::from(((u32::from(s[6])) << 16) | u32::from(s[7]));
    if ip.is_unspecified() {
        return Some(BlockedRange::Unspecified);
    }
    if ip.is_loopback() {
        return Some(BlockedRange::Loopback);
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        // ::ffff:0:0/96: the socket layer connects to the IPv4 itself.
        return classify_v4(v4);
    }
    if s[..6] == [0; 6] {
        // ::/96 IPv4-compatible, deprecated by RFC 4291: a private embedded address keeps its
        // own reason; a public one is still refused, nothing legitimate uses this form.
        return classify_v4(embedded_tail()).or(Some(BlockedRange::Reserved));
    }
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        // 64:ff9b::/96 well-known NAT64 prefix: the translator forwards to the embedded IPv4.
        return classify_v4(embedded_tail());
    }
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001 {
        // 64:ff9b:1::/48 local-use NAT64 (RFC 8215): translation inside a private network.
        return Some(BlockedRange::Private);
    }
    if s[0] == 0x2002 {
        // 2002::/16 6to4: the IPv4 of the tunnel end point is in bits 16..48.
        return classify_v4(Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2])));
    }
    let bits = u128::from(ip);
    let v6 = |net: u128, len: u8| prefix_match_v6(bits, net, len);
    if v6(0x2001_0002_0000 << 80, 48) {
        Some(BlockedRange::Benchmarking)
    } else if v6(0x2001 << 112, 23) {
        // IETF protocol assignments: Teredo, ORCHID, AMT, ... none of them serve images.
        Some(BlockedRange::Reserved)
    } else if v6(0x2001_0db8 << 96, 32) || v6(0x3fff << 112, 20) {
        Some(BlockedRange::Documentation)
    } else if v6(0x0100 << 112, 64) {
        // 100::/64 discard-only (RFC 6666).
        Some(BlockedRange::Reserved)
    } else if v6(0xfc00 << 112, 7) {
        Some(BlockedRange::UniqueLocal)
    } else if v6(0xfe80 << 112, 10) {
        Some(BlockedRange::LinkLocal)
    } else if v6(0xff00 << 112, 8) {
        Some(BlockedRange::Multicast)
    } else if !v6(0x2000 << 112, 3) {
        // Only 2000::/3 is allocated as global unicast; fec0::/10 site-local and every
        // unassigned block fall here.
        Some(BlockedRange::Reserved)
    } else {
        None
    }
}

/// The address a connection really goes to: IPv4-mapped IPv6 becomes its IPv4, so that the
/// allow-list and the socket see one form of each address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn prefix_match_v4(bits: u32, net: u32, len: u8) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
    bits & mask == net & mask
}

fn prefix_match_v6(bits: u128, net: u128, len: u8) -> bool {
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
    bits & mask == net & mask
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
