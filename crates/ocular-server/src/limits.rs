//! Bounds on what strangers can make the server hold before any handler decides anything.
//!
//! Request bodies are buffered whole (a photo must be complete to be decoded), so each
//! upload in flight is memory, up to `OCULAR_MAX_BODY_BYTES` (20 MB) apiece, and nothing
//! bounded how many were in flight: 20 anonymous uploads were 400 MB before admission control
//! had seen any of them (issue 16). This module adds, in order:
//!
//! - **an early refusal**: a `Content-Length` above the body limit is `413` before a byte is
//!   read;
//! - **a global in-flight body budget** (`OCULAR_MAX_INFLIGHT_BODY_BYTES`): every body chunk
//!   received is counted against it as it arrives and given back when its request ends; a
//!   chunk that finds the budget spent fails the request with `503 body_budget_exceeded` +
//!   `Retry-After`. Counting what really arrived, rather than what a client declares, means a
//!   slow client that announces 20 MB and trickles bytes holds only what it has sent. A
//!   declared `Content-Length` that does not fit in what is left of the budget right now is
//!   refused the same way before a byte is read;
//! - **a read-progress deadline** ([`Pace`]): while a handler waits for body bytes, every
//!   `OCULAR_BODY_TIMEOUT_MS` must bring `OCULAR_BODY_MIN_RATE` bytes/s' worth (any byte when
//!   the rate is 0), else the request fails with `408 body_timeout`. Without it a flood of clients
//!   that each send part of an upload and then trickle a byte now and then held their bytes,
//!   their connections and the budget until the 30 s request deadline, and every real upload
//!   meanwhile got 503 (docs/DEPLOY.md, "Slow uploads", has the measurement);
//! - **a cross-site write refusal**: a browser marks every request with `Sec-Fetch-Site`;
//!   a state-changing request (`POST`, `PUT`, `PATCH`, `DELETE`) from another site is
//!   `403 cross_site_request` unless that origin is allowed by `OCULAR_CORS_ORIGINS`. A
//!   multipart form is a "simple" request that needs no CORS preflight, so without this any
//!   page a user visited could upload to a server on their network.
//!
//! - **a Host check** against DNS rebinding: a web page can point its own name at 127.0.0.1
//!   and then talk to a loopback-bound server as its own origin (so neither CORS nor the
//!   cross-site check above stops it). On a loopback address only loopback names and
//!   `OCULAR_ALLOWED_HOSTS` are answered (`400 host_not_allowed`); on a public one, only
//!   `OCULAR_ALLOWED_HOSTS` when it is set. A request without `Host` (HTTP/1.0) passes.
//!
//! The connection cap is in [`crate::listen`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
#[cfg(test)]
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::error::ApiError;
use crate::state::AppState;

/// Budget accounting is in KiB so 4 GiB budgets fit tokio's `u32` permit counts.
const UNIT: usize = 1024;

pub use ocular_app::config::DEFAULT_INFLIGHT_BODY_BYTES;

/// The in-flight body budget shared by every request of one server.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    units: Arc<Semaphore>,
    total_units: usize,
}

impl BodyBudget {
    pub fn new(bytes: usize) -> Self {
        let total_units = bytes.div_ceil(UNIT).clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        Self { units: Arc::new(Semaphore::new(total_units)), total_units }
    }

    /// Bytes of bodies held right now.
    pub fn in_use_bytes(&self) -> usize {
        (self.total_units - self.units.available_permits()) * UNIT
    }

    pub fn limit_bytes(&self) -> usize {
        self.total_units * UNIT
    }

    /// Bytes of the budget free right now.
    pub fn available_bytes(&self) -> usize {
        self.units.available_permits() * UNIT
    }
}

/// The error a body yields when its client stops sending, or sends too slowly ([`Pace`]);
/// found again in error chains by [`is_timeout_error`].
#[derive(Debug, thiserror::Error)]
#[error("the request body stopped arriving, or arrived slower than the minimum rate (window {0:?})")]
pub struct BodyStalled(Duration);

/// Whether `e` or one of its sources is [`BodyStalled`].
pub fn is_timeout_error(e: &(dyn std::error::Error + 'static)) -> bool {
    chain_has::<BodyStalled>(e)
}

fn chain_has<E: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<E>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The read-progress rule of one body: while a handler waits for it, each window of `idle`
/// must bring at least `min_rate × idle` bytes (any byte at all when `min_rate` is 0). A
/// window starts at the first read and again each time its quota has arrived. A sliding quota
/// rather than an average since the start, so bytes sent early buy no right to stall later:
/// a client that sent 1 MB and then trickled a byte every second would otherwise keep its
/// megabyte in the budget until the request deadline. The clock starts at the handler's first
/// read: a request queued for admission before it reads its body is not the client's delay.
pub struct Pace {
    idle: Duration,
    /// Bytes each window must bring (at least 1).
    quota: u64,
    window: Option<Instant>,
    got: u64,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Pace {
    /// `min_rate` in bytes per second.
    pub fn new(idle: Duration, min_rate: u64) -> Self {
        let quota = (min_rate as f64 * idle.as_secs_f64()).ceil().max(1.0) as u64;
        Self { idle, quota, window: None, got: 0, timer: None }
    }

    /// Called before each read of the body.
    fn start(&mut self) {
        self.window.get_or_insert_with(Instant::now);
    }

    /// `bytes` arrived: once the window's quota is in, the next window starts.
    fn progress(&mut self, bytes: usize) {
        self.got += bytes as u64;
        if self.got >= self.quota {
            self.got = 0;
            self.window = Some(Instant::now());
            self.timer = None;
        }
    }

    /// The body is waiting for the client: `Ready` once the deadline has passed.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let due = *self.window.get_or_insert_with(Instant::now) + self.idle;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        timer.as_mut().poll(cx)
    }
}

/// The error a budgeted body yields when the budget is spent; found again in error chains by
/// [`is_budget_error`].
#[derive(Debug, thiserror::Error)]
#[error("the in-flight request body budget is spent")]
pub struct BudgetSpent;

/// Whether `e` or one of its sources is [`BudgetSpent`].
pub fn is_budget_error(e: &(dyn std::error::Error + 'static)) -> bool {
    chain_has::<BudgetSpent>(e)
}

/// What one request holds of the budget, given back when the last reference drops (the
/// middleware's, once the response is ready, and the body's).
type Held = Arc<Mutex<Option<OwnedSemaphorePermit>>>;

/// A request body that takes budget for each chunk as it arrives (rounded up to whole KiB, so
/// many tiny chunks are counted too), into one permit in `held`.
struct Budgeted<B> {
    inner: B,
    budget: Arc<Semaphore>,
    held: Held,
    pace: Pace,
}

impl<B> HttpBody for Budgeted<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        this.pace.start();
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(axum::Error::new(e)))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {
                return match this.pace.poll_expired(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyStalled(this.pace.idle))))),
                    Poll::Pending => Poll::Pending,
                };
            }
        };
        if let Some(data) = frame.data_ref()
            && !data.is_empty()
        {
            this.pace.progress(data.len());
            let spent = || Poll::Ready(Some(Err(axum::Error::new(BudgetSpent))));
            let Ok(units) = u32::try_from(data.len().div_ceil(UNIT)) else { return spent() };
            match this.budget.clone().try_acquire_many_owned(units) {
                Ok(permit) => {
                    if let Ok(mut held) = this.held.lock() {
                        match held.as_mut() {
                            Some(all) => all.merge(permit),
                            None => *held = Some(permit),
                        }
                    }
                }
                Err(_) => return spent(),
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn writes(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
}

/// The middleware: Host check, early `Content-Length` refusal, cross-site refusal, body budget.
pub async fn bound_bodies(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(host) = disallowed_host(&state, req.headers()) {
        return ApiError::HostNotAllowed(host).into_response();
    }
    let max = state.config.max_body_bytes;
    // A catalog upload is written to disk as it arrives, under its own cap (`crate::imports`):
    // neither this limit nor the in-memory budget applies to it.
    let spooled = req.method() == Method::POST && req.uri().path() == crate::imports::PATH;
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if !spooled && declared.is_some_and(|n| n > max as u64) {
        return ApiError::PayloadTooLarge { max }.into_response();
    }
    // A body that cannot fit in what is left of the budget now would be refused part-way
    // through: refuse it before its bytes cross the network (it may fit in a moment).
    if !spooled && declared.is_some_and(|n| n > state.body_budget.available_bytes() as u64) {
        return ApiError::BodyBudget.into_response();
    }
    if writes(req.method())
        && let Some(site) = cross_site(&state, req.headers())
    {
        return ApiError::CrossSite(site).into_response();
    }
    if spooled || declared == Some(0) || (declared.is_none() && req.body().is_end_stream()) {
        return next.run(req).await;
    }
    let held: Held = Arc::new(Mutex::new(None));
    let (parts, body) = req.into_parts();
    let pace = Pace::new(state.config.body_timeout(), state.config.body_min_rate);
    let body = Budgeted { inner: body, budget: state.body_budget.units.clone(), held: held.clone(), pace };
    let resp = next.run(Request::from_parts(parts, Body::new(body))).await;
    // The handler is done with the body (it has answered): its bytes go back to the budget.
    drop(held);
    resp
}

/// `Some(host)` when the request's `Host` is not one this server answers to (see the module
/// header).
fn disallowed_host(state: &AppState, headers: &axum::http::HeaderMap) -> Option<String> {
    let raw = headers.get(header::HOST).and_then(|v| v.to_str().ok())?;
    let name = host_name(raw);
    let listed = state.config.allowed_host_list();
    let allowed = if state.config.is_public() {
        listed.is_empty() || listed.contains(&name)
    } else {
        is_loopback_name(&name) || listed.contains(&name)
    };
    (!allowed).then(|| raw.chars().take(100).collect())
}

/// The name of a `Host` value: without its port, brackets and trailing dot, lower case.
fn host_name(raw: &str) -> String {
    let raw = raw.trim();
    let name = match raw.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => {
            raw.rsplit_once(':').map_or(raw, |(h, port)| if port.bytes().all(|b| b.is_ascii_digit()) { h } else { raw })
        }
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// `localhost`, `*.localhost` (RFC 6761) and loopback addresses.
fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `Some(value of Sec-Fetch-Site)` when a browser says the request comes from another site
/// whose origin is not allowed by CORS. Requests without the header (curl, programs, old
/// browsers) are not browsers' cross-site requests and pass.
fn cross_site(state: &AppState, headers: &axum::http::HeaderMap) -> Option<String> {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())?.to_ascii_lowercase();
    if site != "cross-site" && site != "same-site" {
        return None;
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let allowed = match crate::cors::parse_origins(&state.config.cors_origins) {
        Ok(Some(crate::cors::Origins::Any)) => true,
        Ok(Some(crate::cors::Origins::List(list))) => list.iter().any(|a| a.eq_ignore_ascii_case(origin)),
        _ => false,
    };
    (!allowed).then_some(site)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// A body that yields the given chunks.
    struct Chunks(VecDeque<Bytes>);

    impl HttpBody for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("127.0.0.1:8000"), "127.0.0.1");
        assert_eq!(host_name("[::1]:80"), "::1");
        assert_eq!(host_name("LocalHost."), "localhost");
        assert_eq!(host_name("shop.example.com"), "shop.example.com");
        for ok in ["localhost", "app.localhost", "127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback_name(ok), "{ok}");
        }
        for no in ["evil.example", "localhost.evil.example", "10.0.0.1", "0.0.0.0"] {
            assert!(!is_loopback_name(no), "{no}");
        }
    }

    #[tokio::test]
    async fn chunks_take_budget_until_the_request_ends() {
        let budget = BodyBudget::new(8 * UNIT);
        let held: Held = Arc::new(Mutex::new(None));
        let chunks = [3 * UNIT, 10, 5 * UNIT].map(|n| Bytes::from(vec![0u8; n]));
        let pace = Pace::new(Duration::from_secs(60), 0);
        let body = Budgeted { inner: Chunks(chunks.into()), budget: budget.units.clone(), held: held.clone(), pace };
        let err = body.collect().await.map(|_| ()).expect_err("3 + 1 + 5 units do not fit in 8");
        assert!(is_budget_error(&err), "{err}");
        assert_eq!(budget.in_use_bytes(), 4 * UNIT, "what arrived is held until the request ends");
        drop(held);
        assert_eq!(budget.in_use_bytes(), 0);
    }
}
