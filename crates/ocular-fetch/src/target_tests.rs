//! Unit tests of the gate: every textual form of an address is judged as the address the URL
//! parser makes of it. The resolver here is a fixed table (unknown names fail), so no test
//! queries DNS, and nothing connects.

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::classify::BlockedRange;
use crate::resolve::StaticResolver;

const T: Duration = Duration::from_secs(1);

async fn gate(text: &str, allow: &str, resolver: &StaticResolver) -> Result<Target, FetchError> {
    let allow = AllowList::parse(allow).unwrap();
    check(parse(text)?, &allow, resolver, T).await
}

async fn refused_as(text: &str) -> (IpAddr, BlockedRange) {
    match gate(text, "", &StaticResolver::new()).await {
        Err(FetchError::AddressNotAllowed { addr, range, .. }) => (addr, range),
        other => panic!("{text}: expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn every_ipv4_spelling_of_loopback_is_refused() {
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    for text in [
        "http://127.0.0.1/",
        "http://127.1/",
        "http://127.0.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0x7F.1/",
        "http://0x7f.0.0.1/",
        "http://0177.0.0.1/",
        "http://017700000001/",
        "http://0177.1/",
        "http://127.0.0.1./",
        "http://%31%32%37.0.0.1/",
        "http://\u{ff11}\u{ff12}\u{ff17}.0.0.1/", // full-width digits, mapped by IDNA
        "https://127.0.0.1:8443/x.png",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
    ] {
        assert_eq!(refused_as(text).await, (loopback, BlockedRange::Loopback), "{text}");
    }
}

#[tokio::test]
async fn other_ranges_in_disguise_are_refused() {
    let cases = [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", BlockedRange::LinkLocal),
        ("http://2852039166/", "169.254.169.254", BlockedRange::LinkLocal),
        ("http://0xa9fea9fe/", "169.254.169.254", BlockedRange::LinkLocal),
        ("http://0251.0376.0251.0376/", "169.254.169.254", BlockedRange::LinkLocal),
        ("http://[::ffff:a9fe:a9fe]/", "169.254.169.254", BlockedRange::LinkLocal),
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe", BlockedRange::LinkLocal),
        ("http://[2002:a9fe:a9fe::1]/", "2002:a9fe:a9fe::1", BlockedRange::LinkLocal),
        ("http://10.1/", "10.0.0.1", BlockedRange::Private),
        ("http://0/", "0.0.0.0", BlockedRange::Unspecified),
        ("http://0.0.0.0/", "0.0.0.0", BlockedRange::Unspecified),
        ("http://[::]/", "::", BlockedRange::Unspecified),
        ("http://[::1]/", "::1", BlockedRange::Loopback),
        ("http://[fe80::1]/", "fe80::1", BlockedRange::LinkLocal),
        ("http://[fd00::1]/", "fd00::1", BlockedRange::UniqueLocal),
        ("http://100.64.0.1/", "100.64.0.1", BlockedRange::SharedCgnat),
        ("http://192.168.1.1/", "192.168.1.1", BlockedRange::Private),
        ("http://172.16.0.1/", "172.16.0.1", BlockedRange::Private),
        ("http://224.0.0.1/", "224.0.0.1", BlockedRange::Multicast),
        ("http://[ff02::1]/", "ff02::1", BlockedRange::Multicast),
        ("http://255.255.255.255/", "255.255.255.255", BlockedRange::Broadcast),
        ("http://4294967295/", "255.255.255.255", BlockedRange::Broadcast),
        ("http://240.0.0.1/", "240.0.0.1", BlockedRange::Reserved),
        ("http://192.0.2.1/", "192.0.2.1", BlockedRange::Documentation),
        ("http://198.18.0.1/", "198.18.0.1", BlockedRange::Benchmarking),
    ];
    for (text, addr, range) in cases {
        assert_eq!(refused_as(text).await, (addr.parse().unwrap(), range), "{text}");
    }
}

#[tokio::test]
async fn names_are_resolved_once_and_every_address_is_checked() {
    let dns = StaticResolver::new()
        .with("public.test", ["93.184.216.34".parse().unwrap()])
        .with("metadata.test", ["169.254.169.254".parse().unwrap()])
        .with("mixed.test", ["93.184.216.34".parse().unwrap(), "10.0.0.7".parse().unwrap()])
        .with("empty.test", []);
    let ok = gate("http://Public.Test./a.png", "", &dns).await.unwrap();
    assert_eq!(ok.host, "public.test");
    assert_eq!(ok.addrs, ["93.184.216.34:80".parse().unwrap()]);

    let err = gate("http://metadata.test/", "", &dns).await.unwrap_err();
    assert!(matches!(err, FetchError::AddressNotAllowed { range: BlockedRange::LinkLocal, .. }), "{err:?}");
    let err = gate("http://mixed.test/", "", &dns).await.unwrap_err();
    assert!(matches!(err, FetchError::AddressNotAllowed { range: BlockedRange::Private, .. }), "{err:?}");
    assert!(matches!(gate("http://empty.test/", "", &dns).await, Err(FetchError::NoAddresses { .. })));
    assert!(matches!(gate("http://unknown.test/", "", &dns).await, Err(FetchError::Resolve { .. })));
}

#[tokio::test]
async fn localhost_never_reaches_the_resolver() {
    // The table is empty: if these went to the resolver they would fail with `Resolve`.
    for text in ["http://localhost/", "http://localhost./", "http://LOCALHOST:8080/", "http://api.localhost/"] {
        let (_, range) = refused_as(text).await;
        assert_eq!(range, BlockedRange::Loopback, "{text}");
    }
}

#[tokio::test]
async fn the_allow_list_admits_names_and_addresses() {
    let dns = StaticResolver::new().with("cdn.internal", ["10.0.0.7".parse().unwrap()]);
    assert!(gate("http://cdn.internal/", "cdn.internal", &dns).await.is_ok());
    assert!(gate("http://cdn.internal/", "10.0.0.0/8", &dns).await.is_ok());
    assert!(gate("http://cdn.internal/", "10.0.0.8", &dns).await.is_err());
    // An allowed address is allowed in every spelling...
    let t = gate("http://2130706433:81/", "127.0.0.1", &dns).await.unwrap();
    assert_eq!(t.addrs, ["127.0.0.1:81".parse().unwrap()]);
    let t = gate("http://[::ffff:127.0.0.1]/", "127.0.0.1", &dns).await.unwrap();
    assert_eq!(t.addrs, ["127.0.0.1:80".parse().unwrap()], "mapped forms connect as IPv4");
    // ...but allowing an address does not allow the name `localhost`, which is also ::1.
    assert!(gate("http://localhost/", "127.0.0.1", &dns).await.is_err());
    assert!(gate("http://localhost/", "localhost", &dns).await.is_ok());
}

#[test]
fn only_http_and_https_without_credentials() {
    for text in ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/_x", "data:image/png;base64,AA"] {
        assert!(matches!(parse(text), Err(FetchError::SchemeNotAllowed { .. })), "{text}");
    }
    for text in ["http://user:pass@example.com/", "http://user@example.com/", "https://:pw@example.com/"] {
        assert!(matches!(parse(text), Err(FetchError::CredentialsNotAllowed)), "{text}");
    }
    for text in ["", "not a url", "/relative/path.png", "http://", "http://[::1/", "http://1.2.3.4.5/"] {
        assert!(matches!(parse(text), Err(FetchError::InvalidUrl { .. })), "{text:?}");
    }
    assert!(parse("HTTPS://Example.COM/a.png").is_ok());
}
