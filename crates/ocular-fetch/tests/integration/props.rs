//! Property: every textual form of an IPv4 address (decimal, hex, octal, short forms, mixed
//! radices, IPv4-mapped IPv6, a trailing dot, percent-encoding) is refused exactly as its
//! canonical dotted form is, without a connection attempt.
//!
//! Only addresses inside blocked ranges are generated, so a correct fetcher never connects; a
//! fetcher that misread a form into some public address would hit the `loopback-only` guard
//! (no socket) and fail the property by its error.

use std::net::{IpAddr, Ipv4Addr};

use ocular_fetch::{FetchError, Fetcher, classify};
use proptest::prelude::*;

use crate::server::policy;

/// Blocked IPv4 ranges as (network, prefix length): an address is drawn inside one.
const RANGES: &[(u32, u32)] = &[
    (0x0000_0000, 8),  // this network
    (0x0A00_0000, 8),  // private
    (0x6440_0000, 10), // CGNAT
    (0x7F00_0000, 8),  // loopback
    (0xA9FE_0000, 16), // link-local, metadata service
    (0xAC10_0000, 12), // private
    (0xC0A8_0000, 16), // private
    (0xE000_0000, 4),  // multicast
    (0xF000_0000, 4),  // reserved and broadcast
];

fn blocked_v4() -> impl Strategy<Value = u32> {
    (0..RANGES.len(), any::<u32>()).prop_map(|(i, host)| {
        let (net, len) = RANGES[i];
        net | (host & (u32::MAX >> len))
    })
}

/// Ways to write `ip` in a URL host that WHATWG URL parsing (and so every browser and our
/// fetcher) reads as the same address.
fn forms(ip: u32) -> Vec<String> {
    let [a, b, c, d] = ip.to_be_bytes();
    let low16 = ip & 0xFFFF;
    let low24 = ip & 0xFF_FFFF;
    let dotted = format!("{a}.{b}.{c}.{d}");
    vec![
        dotted.clone(),
        format!("{a}.{b}.{c}.{d}."),
        format!("{ip}"),
        format!("0x{ip:x}"),
        format!("0X{ip:X}"),
        format!("0{ip:o}"),
        format!("0x{a:x}.0x{b:x}.0x{c:x}.0x{d:x}"),
        format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
        format!("{a}.{b}.{low16}"),
        format!("{a}.{low24}"),
        format!("0x{a:x}.{b}.0{c:o}.{d}"),
        format!("0x000{ip:08x}"),
        format!("[::ffff:{a}.{b}.{c}.{d}]"),
        format!("[::FFFF:{:x}:{:x}]", ip >> 16, low16),
        // The first digit percent-encoded (`%31` is `1`).
        format!("%{:02X}{}", dotted.as_bytes()[0], &dotted[1..]),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_form_of_a_blocked_ipv4_is_refused_like_its_canonical_form(ip in blocked_v4(), port in 1u16..) {
        let expected = classify(IpAddr::V4(Ipv4Addr::from(ip)));
        prop_assert!(expected.is_some(), "strategy drew an unblocked address {}", Ipv4Addr::from(ip));
        let fetcher = Fetcher::new(policy("")).expect("fetcher");
        let rt = runtime();
        for host in forms(ip) {
            let url = format!("http://{host}:{port}/a.png");
            let err = rt.block_on(fetcher.fetch_image(&url)).expect_err("a blocked address was fetched");
            match err {
                FetchError::AddressNotAllowed { range, .. } => prop_assert_eq!(Some(range), expected, "{}", url),
                other => prop_assert!(false, "{url}: expected a refusal, got {other:?}"),
            }
        }
        prop_assert_eq!(fetcher.connect_attempts(), 0);
    }

    /// The classification itself: an IPv4 address and its IPv4-mapped IPv6 form agree, for
    /// every address (public ones included; nothing is fetched here).
    #[test]
    fn mapped_ipv6_classifies_like_ipv4(ip in any::<u32>()) {
        let v4 = Ipv4Addr::from(ip);
        prop_assert_eq!(classify(IpAddr::V6(v4.to_ipv6_mapped())), classify(IpAddr::V4(v4)));
    }
}
