//! HTTPS: the connection goes to the checked address while the certificate is verified
//! against the URL's host name (SNI set to it). The server's certificate is made here and
//! trusted through `with_root_certificates`; the default (Mozilla) roots refuse it.

use std::sync::Arc;

use ocular_fetch::{FetchError, Fetcher};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

use crate::server::{PNG, TestServer, fetcher_with, png_reply, policy};

struct Tls {
    acceptor: TlsAcceptor,
    cert: CertificateDer<'static>,
}

fn self_signed(name: &str) -> Tls {
    let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    Tls { acceptor: TlsAcceptor::from(Arc::new(config)), cert }
}

fn trusting(fetcher: Fetcher, cert: &CertificateDer<'static>) -> Fetcher {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    fetcher.with_root_certificates(roots).unwrap()
}

#[tokio::test]
async fn https_verifies_the_name_while_connecting_to_the_checked_address() {
    let tls = self_signed("images.test");
    let server = TestServer::start_tls(tls.acceptor.clone(), |_| png_reply()).await;
    let fetcher = trusting(fetcher_with(policy("images.test"), &["images.test", "other.test"]), &tls.cert);

    let image = fetcher.fetch_image(&format!("https://images.test:{}/a.png", server.port())).await.unwrap();
    assert_eq!(&image.bytes[..], PNG);

    // Same address, a name the certificate does not cover: the handshake fails.
    let fetcher = trusting(fetcher_with(policy("other.test"), &["other.test"]), &tls.cert);
    let err = fetcher.fetch_image(&format!("https://other.test:{}/a.png", server.port())).await.unwrap_err();
    assert!(matches!(err, FetchError::Tls { .. }), "{err:?}");
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_fetch_failure() {
    let tls = self_signed("images.test");
    let server = TestServer::start_tls(tls.acceptor.clone(), |_| png_reply()).await;
    let fetcher = fetcher_with(policy("images.test"), &["images.test"]);
    let err = fetcher.fetch_image(&format!("https://images.test:{}/a.png", server.port())).await.unwrap_err();
    assert!(matches!(err, FetchError::Tls { .. }), "{err:?}");
    assert_eq!(err.code(), "url_fetch_failed");
}
