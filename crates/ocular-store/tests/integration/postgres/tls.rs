//! TLS to PostgreSQL, `sslmode` as libpq means it, against certificates made here.
//!
//! The test server's build has no SSL, so a TLS front sits between the store and it, as a
//! managed service's proxy would: it answers the client's `SSLRequest` with `S`, completes
//! the handshake with a certificate signed by a CA made for the test (`openssl`), and relays
//! the decrypted protocol to the plain server. It counts handshakes, so a test knows the
//! session really was encrypted. Certificates: one for `localhost`/127.0.0.1 and one for
//! another name, both from the test CA; a second CA trusts neither.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ocular_store::Store;
use ocular_store::postgres::{PgOptions, PgStore};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl (apt-get install openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA (`{ca}.crt`) and, for each (file, DNS name), a server certificate signed by it.
fn pki(dir: &Path, ca: &str, servers: &[(&str, &str)]) {
    let (ca_crt, ca_key, ca_cn) = (format!("{ca}.crt"), format!("{ca}.key"), format!("/CN={ca}"));
    let new_ca = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &ca_cn];
    openssl(dir, &[&new_ca[..], &["-keyout", &ca_key, "-out", &ca_crt]].concat());
    for (file, name) in servers {
        let (key, csr, crt, ext, cn) = (
            format!("{file}.key"),
            format!("{file}.csr"),
            format!("{file}.crt"),
            format!("{file}.ext"),
            format!("/CN={name}"),
        );
        std::fs::write(
            dir.join(&ext),
            format!("subjectAltName=DNS:{name}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
        )
        .unwrap();
        openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-subj", &cn, "-keyout", &key, "-out", &csr]);
        let sign = ["x509", "-req", "-in", &csr, "-CA", &ca_crt, "-CAkey", &ca_key, "-CAcreateserial"];
        openssl(dir, &[&sign[..], &["-days", "2", "-extfile", &ext, "-out", &crt]].concat());
    }
}

/// The TLS front: listens on 127.0.0.1, relays to `upstream`; returns its address and the
/// count of completed handshakes.
fn front(
    rt: &tokio::runtime::Runtime,
    cert: &Path,
    key: &Path,
    upstream: SocketAddr,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(cert).unwrap().collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let count = handshakes.clone();
    rt.spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else { return };
            let (acceptor, count) = (acceptor.clone(), count.clone());
            tokio::spawn(async move {
                // SSLRequest: length 8, code 80877103.
                let mut request = [0u8; 8];
                if client.read_exact(&mut request).await.is_err() || request != [0, 0, 0, 8, 4, 210, 22, 47] {
                    return;
                }
                if client.write_all(b"S").await.is_err() {
                    return;
                }
                let Ok(mut tls) = acceptor.accept(client).await else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    (addr, handshakes)
}

/// `url` pointed at `addr`, with extra query parameters.
fn via(url: &str, addr: SocketAddr, params: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let userinfo = authority.rsplit_once('@').map(|(u, _)| format!("{u}@")).unwrap_or_default();
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{scheme}://{userinfo}{addr}/{path}{sep}{params}")
}

fn upstream(url: &str) -> SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split_once('/').unwrap().0;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    std::net::ToSocketAddrs::to_socket_addrs(hostport).unwrap().next().unwrap()
}

fn connect(url: &str) -> Result<PgStore, ocular_store::StoreError> {
    PgStore::connect(url, &PgOptions { pool_size: 1, ..PgOptions::default() })
}

fn path(dir: &Path, file: &str) -> String {
    let p: PathBuf = dir.join(file);
    p.to_str().unwrap().to_string()
}

#[test]
fn sslmode_and_sslrootcert_as_libpq_means_them() {
    let Some(server) = super::url() else { return };
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path(), "ca", &[("good", "localhost"), ("other", "db.example")]);
    pki(dir.path(), "stranger", &[]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let pg = upstream(&server);
    let (good, good_count) = front(&rt, &dir.path().join("good.crt"), &dir.path().join("good.key"), pg);
    let (other, other_count) = front(&rt, &dir.path().join("other.crt"), &dir.path().join("other.key"), pg);
    let ca = path(dir.path(), "ca.crt");
    let stranger = path(dir.path(), "stranger.crt");
    // The front listens on 127.0.0.1; the certificate says localhost.
    let good = SocketAddr::from(([127, 0, 0, 1], good.port()));
    let localhost = |addr: SocketAddr, params: &str| via(&server, addr, params).replace("127.0.0.1", "localhost");

    // verify-full with the right CA and host name: connected, over TLS.
    let store = connect(&localhost(good, &format!("sslmode=verify-full&sslrootcert={ca}"))).expect("verify-full");
    store.ping().unwrap();
    assert!(good_count.load(Ordering::SeqCst) >= 1, "the session went through the TLS front");
    // A CA that did not sign the certificate: refused.
    let refused = connect(&localhost(good, &format!("sslmode=verify-full&sslrootcert={stranger}")));
    assert!(refused.is_err(), "an unknown CA must be refused");
    // The compiled-in web roots do not know the test CA either.
    assert!(connect(&localhost(good, "sslmode=verify-full")).is_err());

    // A certificate for another name: verify-ca accepts it, verify-full does not.
    let before = other_count.load(Ordering::SeqCst);
    connect(&localhost(other, &format!("sslmode=verify-ca&sslrootcert={ca}"))).expect("verify-ca").ping().unwrap();
    assert!(other_count.load(Ordering::SeqCst) > before);
    assert!(connect(&localhost(other, &format!("sslmode=verify-full&sslrootcert={ca}"))).is_err());
    // require without a CA encrypts but checks nothing (libpq's meaning); with one, the chain.
    connect(&localhost(other, "sslmode=require")).expect("require").ping().unwrap();
    assert!(connect(&localhost(other, &format!("sslmode=require&sslrootcert={stranger}"))).is_err());

    // The plain test server offers no TLS: require refuses it rather than sending in clear.
    let err = connect(&via(&server, pg, "sslmode=require")).expect_err("no TLS offered");
    assert!(format!("{:?}", err).contains("TLS"), "{err:?}");
    // prefer (the default) and disable still reach it.
    connect(&via(&server, pg, "sslmode=disable")).expect("disable").ping().unwrap();
    connect(&server).expect("prefer").ping().unwrap();
}
