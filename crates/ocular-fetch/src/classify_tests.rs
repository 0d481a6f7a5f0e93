//! Unit tests of the address classification: every refused range, its edges, and the
//! IPv6 forms that embed an IPv4. Pure functions on parsed addresses; nothing connects.

use super::*;
use BlockedRange::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn check(cases: &[(&str, Option<BlockedRange>)]) {
    for (addr, want) in cases {
        assert_eq!(classify(ip(addr)), *want, "{addr}");
    }
}

#[test]
fn ipv4_special_ranges_and_their_edges() {
    check(&[
        ("0.0.0.0", Some(Unspecified)),
        ("0.255.255.255", Some(Unspecified)),
        ("1.0.0.0", None),
        ("9.255.255.255", None),
        ("10.0.0.0", Some(Private)),
        ("10.255.255.255", Some(Private)),
        ("11.0.0.0", None),
        ("100.63.255.255", None),
        ("100.64.0.0", Some(SharedCgnat)),
        ("100.127.255.255", Some(SharedCgnat)),
        ("100.128.0.0", None),
        ("126.255.255.255", None),
        ("127.0.0.1", Some(Loopback)),
        ("127.0.0.0", Some(Loopback)),
        ("127.255.255.254", Some(Loopback)),
        ("128.0.0.0", None),
        ("169.253.255.255", None),
        ("169.254.0.0", Some(LinkLocal)),
        ("169.254.169.254", Some(LinkLocal)),
        ("169.254.255.255", Some(LinkLocal)),
        ("169.255.0.0", None),
        ("172.15.255.255", None),
        ("172.16.0.0", Some(Private)),
        ("172.31.255.255", Some(Private)),
        ("172.32.0.0", None),
        ("192.0.0.8", Some(Reserved)),
        ("192.0.2.1", Some(Documentation)),
        ("192.0.3.0", None),
        ("192.88.99.1", Some(Reserved)),
        ("192.167.255.255", None),
        ("192.168.0.1", Some(Private)),
        ("192.168.255.255", Some(Private)),
        ("192.169.0.0", None),
        ("198.17.255.255", None),
        ("198.18.0.0", Some(Benchmarking)),
        ("198.19.255.255", Some(Benchmarking)),
        ("198.20.0.0", None),
        ("198.51.100.7", Some(Documentation)),
        ("203.0.113.9", Some(Documentation)),
        ("223.255.255.255", None),
        ("224.0.0.1", Some(Multicast)),
        ("239.255.255.255", Some(Multicast)),
        ("240.0.0.1", Some(Reserved)),
        ("254.255.255.255", Some(Reserved)),
        ("255.255.255.254", Some(Reserved)),
        ("255.255.255.255", Some(Broadcast)),
        ("8.8.8.8", None),
        ("93.184.216.34", None),
    ]);
}

#[test]
fn ipv6_special_ranges() {
    check(&[
        ("::", Some(Unspecified)),
        ("::1", Some(Loopback)),
        ("fe80::1", Some(LinkLocal)),
        ("febf:ffff::1", Some(LinkLocal)),
        ("fec0::1", Some(Reserved)),
        ("fc00::1", Some(UniqueLocal)),
        ("fd12:3456:789a::1", Some(UniqueLocal)),
        ("ff02::1", Some(Multicast)),
        ("ff0e::1", Some(Multicast)),
        ("2001:db8::1", Some(Documentation)),
        ("3fff::1", Some(Documentation)),
        ("2001:2::1", Some(Benchmarking)),
        ("2001::1", Some(Reserved)), // Teredo
        ("2001:10::1", Some(Reserved)),
        ("100::1", Some(Reserved)),
        ("1000::1", Some(Reserved)),
        ("4000::1", Some(Reserved)),
        ("2606:4700::1111", None),
        ("2a00:1450:4001::1", None),
        ("2001:4860:4860::8888", None),
    ]);
}

#[test]
fn ipv4_mapped_is_judged_by_its_ipv4() {
    check(&[
        ("::ffff:127.0.0.1", Some(Loopback)),
        ("::ffff:7f00:1", Some(Loopback)),
        ("::ffff:10.1.2.3", Some(Private)),
        ("::ffff:169.254.169.254", Some(LinkLocal)),
        ("::ffff:0.0.0.0", Some(Unspecified)),
        ("::ffff:100.64.0.1", Some(SharedCgnat)),
        ("::ffff:8.8.8.8", None),
    ]);
    assert_eq!(canonical(ip("::ffff:127.0.0.1")), ip("127.0.0.1"));
    assert_eq!(canonical(ip("::1")), ip("::1"));
}

#[test]
fn ipv4_compatible_is_always_refused() {
    check(&[
        ("::127.0.0.1", Some(Loopback)),
        ("::10.0.0.1", Some(Private)),
        ("::169.254.169.254", Some(LinkLocal)),
        ("::8.8.8.8", Some(Reserved)),
    ]);
}

#[test]
fn nat64_is_judged_by_its_ipv4() {
    check(&[
        ("64:ff9b::127.0.0.1", Some(Loopback)),
        ("64:ff9b::a9fe:a9fe", Some(LinkLocal)),
        ("64:ff9b::192.168.1.1", Some(Private)),
        ("64:ff9b::8.8.8.8", None),
        ("64:ff9b:1::a00:1", Some(Private)),
    ]);
}

#[test]
fn six_to_four_is_judged_by_its_ipv4() {
    check(&[
        ("2002:7f00:1::", Some(Loopback)),
        ("2002:a00:1::1", Some(Private)),
        ("2002:c0a8:101::1", Some(Private)),
        ("2002:a9fe:a9fe::", Some(LinkLocal)),
        ("2002:808:808::1", None),
    ]);
}

#[test]
fn every_range_has_a_readable_name() {
    assert_eq!(LinkLocal.to_string(), "link-local");
    assert_eq!(SharedCgnat.to_string(), "carrier-grade NAT");
}
