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
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::oneshot;

/// A boxed resolution future.
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;

/// Turns a host name into addresses. Implementations must not apply any policy: the fetcher
/// checks every address they return.
pub trait Resolve: Send + Sync + 'static {
    /// All addresses of `host` (a normalised DNS name, never an IP literal).
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a>;
}

/// The operating system's resolver (`getaddrinfo`), on a few threads of its own.
///
/// `getaddrinfo` cannot be cancelled: when the fetch's resolve deadline passes, the lookup
/// goes on until the name server answers or the C library's own retries give up (tens of
/// seconds). tokio's `lookup_host` ran it on the runtime's shared blocking pool, the one
/// every database call and inference also waits for, so URLs on a domain whose name server
/// never answers could fill it (issue 16). Here lookups run on `DNS_THREADS` dedicated
/// threads with at most `DNS_QUEUE` more waiting; beyond that a lookup fails at once
/// ("resolver busy", a fetch failure), and nothing else in the process ever waits on DNS.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

/// Threads that may be inside `getaddrinfo` at once.
pub const DNS_THREADS: usize = 4;
/// Lookups that may wait for one of them.
pub const DNS_QUEUE: usize = 32;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> ResolveFuture<'a> {
        static POOL: OnceLock<LookupPool> = OnceLock::new();
        let pool = POOL.get_or_init(|| LookupPool::new(DNS_THREADS, DNS_QUEUE, system_lookup));
        Box::pin(pool.lookup(host))
    }
}

/// `getaddrinfo` through the standard library. The port is required by the API and
/// irrelevant to the answer.
fn system_lookup(host: &str) -> io::Result<Vec<IpAddr>> {
    use std::net::ToSocketAddrs;
    Ok((host, 0).to_socket_addrs()?.map(|a| a.ip()).collect())
}

type Lookup = fn(&str) -> io::Result<Vec<IpAddr>>;

struct Job {
    host: String,
    reply: oneshot::Sender<io::Result<Vec<IpAddr>>>,
}

/// A bounded pool of threads running a blocking lookup function.
pub(crate) struct LookupPool {
    jobs: SyncSender<Job>,
}

impl LookupPool {
    /// `threads` threads (at least one) and a queue of `queue` jobs.
    pub(crate) fn new(threads: usize, queue: usize, lookup: Lookup) -> Self {
        let (jobs, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("ocular-dns-{i}")).spawn(move || work(&rx, lookup));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "a resolver thread could not start");
            }
        }
        Self { jobs }
    }

    /// Resolves `host` on the pool; fails at once when every thread is busy and the queue full.
    pub(crate) fn lookup(&self, host: &str) -> impl Future<Output = io::Result<Vec<IpAddr>>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let sent = self.jobs.try_send(Job { host: host.to_owned(), reply });
        async move {
            match sent {
                Ok(()) => answer.await.unwrap_or_else(|_| Err(io::Error::other("the resolver thread stopped"))),
                Err(TrySendError::Full(_)) => {
                    Err(io::Error::new(io::ErrorKind::WouldBlock, "every resolver thread is busy; retry later"))
                }
                Err(TrySendError::Disconnected(_)) => Err(io::Error::other("no resolver thread is running")),
            }
        }
    }
}

fn work(jobs: &Mutex<Receiver<Job>>, lookup: Lookup) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        // The caller gave up while the job waited (its deadline passed): do not spend a
        // thread on it.
        if job.reply.is_closed() {
            continue;
        }
        let _ = job.reply.send(lookup(&job.host));
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
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use super::*;

    static RELEASE: AtomicBool = AtomicBool::new(false);

    /// A name server that never answers (until the test releases it).
    fn hanging(_: &str) -> io::Result<Vec<IpAddr>> {
        while !RELEASE.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))])
    }

    /// Hanging lookups hold only the pool's own threads: past its threads and queue they fail
    /// at once, and the runtime's blocking pool (database calls, inference) stays free.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hanging_lookups_are_bounded_and_never_touch_the_blocking_pool() {
        let pool = LookupPool::new(2, 3, hanging);
        let mut waiting = Vec::new();
        // The two threads pick up a job each, then three more wait in the queue.
        for i in 0..5 {
            waiting.push(tokio::spawn(pool.lookup(&format!("slow{i}.example"))));
            if i == 1 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let started = Instant::now();
        let busy = tokio::time::timeout(Duration::from_secs(1), pool.lookup("one-more.example"))
            .await
            .expect("answered at once")
            .expect_err("the pool is full");
        assert_eq!(busy.kind(), io::ErrorKind::WouldBlock);
        assert!(started.elapsed() < Duration::from_millis(50), "refused at once");
        let blocking = tokio::task::spawn_blocking(|| 42);
        assert_eq!(tokio::time::timeout(Duration::from_millis(500), blocking).await.unwrap().unwrap(), 42);
        RELEASE.store(true, Ordering::SeqCst);
        for w in waiting {
            assert_eq!(w.await.unwrap().unwrap(), vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))]);
        }
    }

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
