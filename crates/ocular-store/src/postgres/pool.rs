//! A small blocking connection pool over `tokio-postgres`, and [`Db`], the synchronous face of
//! one pooled connection.
//!
//! Why not the `postgres` crate: its blocking client runs a tokio runtime per connection and
//! `block_on`s it, which panics on a thread that is already inside a tokio runtime, and
//! `ocular serve` opens the store and answers readiness from async code. Here one private
//! runtime (one worker thread) drives every connection's socket, and callers wait on request
//! futures with `futures::executor::block_on`, which parks the calling thread and works on any
//! thread. Request futures of `tokio-postgres` only exchange messages with the connection task
//! over channels, so they need no tokio context of their own.
//!
//! Why not r2d2/deadpool: the pool is small, keeps a per-connection prepared-statement cache
//! (one round trip per query instead of two), and drops broken connections by asking the
//! client (`is_closed`) rather than by a test query on every checkout.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use super::tls::RustlsConnect;
use crate::StoreError;

/// Waits for a future on the calling thread (see the module docs for why this is safe here).
pub(super) fn wait<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

/// One open connection and what this process remembers about its session.
pub(super) struct Conn {
    pub(super) client: Client,
    /// Statements prepared on this connection, by SQL text.
    stmts: RefCell<HashMap<String, Statement>>,
    /// The `hnsw.ef_search` this session was last set to, so a search sets it only on change.
    pub(super) ef_search: Cell<Option<u32>>,
}

impl Conn {
    /// The synchronous query interface of this connection (also inside a transaction opened on
    /// it: a transaction is session state, so statements sent on the client run inside it).
    pub(super) fn db(&self) -> Db<'_> {
        Db { client: &self.client, stmts: &self.stmts }
    }

    /// Splits the connection into the client (for `transaction()`) and its statement cache.
    pub(super) fn parts(&mut self) -> (&mut Client, &RefCell<HashMap<String, Statement>>) {
        (&mut self.client, &self.stmts)
    }
}

/// Blocking, statement-caching queries on one connection.
#[derive(Clone, Copy)]
pub(super) struct Db<'a> {
    pub(super) client: &'a Client,
    pub(super) stmts: &'a RefCell<HashMap<String, Statement>>,
}

pub(super) type Params<'p> = [&'p (dyn ToSql + Sync)];

impl Db<'_> {
    /// The prepared statement for `sql`, preparing it on first use on this connection.
    pub(super) fn prepare(&self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.stmts.borrow().get(sql) {
            return Ok(s.clone());
        }
        let stmt = wait(self.client.prepare(sql))?;
        self.stmts.borrow_mut().insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }

    pub(super) fn query(&self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, StoreError> {
        let stmt = self.prepare(sql)?;
        Ok(wait(self.client.query(&stmt, params))?)
    }

    pub(super) fn query_opt(&self, sql: &str, params: &Params<'_>) -> Result<Option<Row>, StoreError> {
        let stmt = self.prepare(sql)?;
        Ok(wait(self.client.query_opt(&stmt, params))?)
    }

    pub(super) fn query_one(&self, sql: &str, params: &Params<'_>) -> Result<Row, StoreError> {
        let stmt = self.prepare(sql)?;
        Ok(wait(self.client.query_one(&stmt, params))?)
    }

    pub(super) fn execute(&self, sql: &str, params: &Params<'_>) -> Result<u64, StoreError> {
        let stmt = self.prepare(sql)?;
        Ok(wait(self.client.execute(&stmt, params))?)
    }

    /// Runs SQL without parameters through the simple protocol (several statements allowed).
    pub(super) fn batch(&self, sql: &str) -> Result<(), StoreError> {
        Ok(wait(self.client.batch_execute(sql))?)
    }
}

struct State {
    idle: Vec<Conn>,
    /// Connections in existence: idle, lent out, or being opened.
    open: usize,
}

/// A fixed-size pool of connections driven by one private runtime.
pub(super) struct Pool {
    config: tokio_postgres::Config,
    /// TLS for every connection (whether it is used is `config`'s `ssl_mode`).
    tls: RustlsConnect,
    /// For error messages: the URL without its password.
    url: String,
    /// `Option` only so `Drop` can shut it down without blocking (see there).
    runtime: Option<tokio::runtime::Runtime>,
    state: Mutex<State>,
    returned: Condvar,
    size: usize,
    wait: Duration,
}

impl Pool {
    pub(super) fn new(
        config: tokio_postgres::Config,
        tls: RustlsConnect,
        url: String,
        size: usize,
        wait: Duration,
    ) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ocular-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::PgRuntime(Box::new(e)))?;
        Ok(Pool {
            config,
            tls,
            url,
            runtime: Some(runtime),
            state: Mutex::new(State { idle: Vec::new(), open: 0 }),
            returned: Condvar::new(),
            size: size.max(1),
            wait,
        })
    }

    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// A connection for the caller alone, opening one if the pool is not full, else waiting up
    /// to the pool's wait for one to come back.
    pub(super) fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let deadline = Instant::now() + self.wait;
        let mut state = self.state.lock();
        loop {
            while let Some(conn) = state.idle.pop() {
                if conn.client.is_closed() {
                    // The server or the network closed it while idle: forget it.
                    state.open -= 1;
                    continue;
                }
                return Ok(Pooled { pool: self, conn: Some(conn) });
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return match self.connect() {
                    Ok(conn) => Ok(Pooled { pool: self, conn: Some(conn) }),
                    Err(e) => {
                        self.state.lock().open -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            let timed_out = self.returned.wait_until(&mut state, deadline).timed_out();
            if timed_out && state.idle.is_empty() && state.open >= self.size {
                let waited_ms = u64::try_from(self.wait.as_millis()).unwrap_or(u64::MAX);
                return Err(StoreError::PoolTimeout { waited_ms, size: self.size });
            }
        }
    }

    fn connect(&self) -> Result<Conn, StoreError> {
        let runtime = self.runtime.as_ref().ok_or_else(|| StoreError::PgRuntime("the pool is shut down".into()))?;
        let (config, tls) = (self.config.clone(), self.tls.clone());
        let task = runtime.spawn(async move {
            let (client, connection) = config.connect(tls).await?;
            // The connection future owns the socket; it ends when the client is dropped or the
            // server goes away, after which `Client::is_closed` is true.
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::warn!(%error, "PostgreSQL connection ended with an error");
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        });
        let client = wait(task)
            .map_err(|e| StoreError::PgRuntime(Box::new(e)))?
            .map_err(|source| StoreError::PgConnect { url: self.url.clone(), source })?;
        Ok(Conn { client, stmts: RefCell::new(HashMap::new()), ef_search: Cell::new(None) })
    }

    fn put_back(&self, conn: Conn) {
        let mut state = self.state.lock();
        if conn.client.is_closed() {
            state.open -= 1;
        } else {
            state.idle.push(conn);
        }
        drop(state);
        self.returned.notify_one();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Dropping the clients ends their connection tasks; a plain `Runtime` drop would block
        // and panics inside async code (where a server may drop the last store handle).
        self.state.get_mut().idle.clear();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A connection lent by the pool; returns to it when dropped.
pub(super) struct Pooled<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
}

impl Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        // Always `Some` until `drop` takes it.
        self.conn.as_ref().unwrap_or_else(|| unreachable!("pooled connection used after return"))
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().unwrap_or_else(|| unreachable!("pooled connection used after return"))
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.put_back(conn);
        }
    }
}
