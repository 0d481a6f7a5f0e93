//! Accepting connections with deadlines a slow client cannot stretch.
//!
//! `axum::serve` sets no timer on hyper's connection builder, so hyper's header-read timeout
//! never runs there: a client that sends its request line and headers one byte per second
//! (slow-loris) holds a connection, a task and a file descriptor for as long as it likes. This
//! accept loop serves HTTP/1.1 through hyper directly with a Tokio timer and
//! [`Config::header_timeout`](crate::Config::header_timeout): headers not complete by then close
//! the connection (idle keep-alive connections too). The body is bounded by the request
//! deadline middleware (`OCULAR_REQUEST_TIMEOUT_S`), which answers `503 request_timeout`,
//! because handlers read bodies inside it.
//!
//! Connections are capped ([`ConnectionLimits::max_connections`], `OCULAR_MAX_CONNECTIONS`):
//! each holds a task, buffers and a file descriptor, and a process out of descriptors cannot
//! open its database or model files. At the cap the loop stops accepting; new clients wait in
//! the kernel's accept queue until a connection ends (idle ones end after the header
//! timeout), instead of the process running out of descriptors.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The most one connection's read buffer grows to (hyper's default is about 400 KiB). A body's
/// chunks are slices of this buffer until the handler copies them, and it is memory outside
/// the in-flight body budget for as long as the connection lives: 200 connections uploading
/// at once held ~80 MB in these buffers alone (docs/DEPLOY.md, "Slow uploads"). 64 KiB still
/// reads a 20 MB upload in a few hundred reads; request heads must fit in it.
pub const READ_BUFFER: usize = 64 * 1024;

/// What one connection may hold.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Deadline for a request's headers, and for an idle keep-alive connection.
    pub header_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and waits for
/// the connections in flight to finish their current request.
pub async fn serve_until(
    app: Router,
    listener: TcpListener,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let slots = Arc::new(Semaphore::new(limits.max_connections.clamp(1, Semaphore::MAX_PERMITS)));
    loop {
        // A free slot first, then accept: at the cap, new clients wait in the accept queue.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like pass; back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(READ_BUFFER)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _slot = slot;
            // Header timeouts, resets and malformed requests end here; the client is gone.
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
