//! One keep-alive HTTP/1.1 connection per client. A closed-loop client sends its next request
//! when the previous one ends, so one connection each is exactly what a browser-like client
//! does; a broken or timed-out connection is dropped and a new one opened for the next request.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::payload::Prepared;

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A response, with its status, whether a 503 carried `Retry-After`, and the envelope's
    /// `error.code` for non-2xx responses when the body has one.
    Response { status: u16, retry_after: bool, error_code: Option<String> },
    /// The TCP connection could not be opened (server down, port closed).
    Connect,
    /// No complete response within `--timeout`.
    Timeout,
    /// The connection broke mid-request (reset, closed before the response).
    Broken,
}

pub struct Client {
    host: String,
    addr: String,
    timeout: Duration,
    conn: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    /// `authority` is `host:port`, used both to connect and as the `Host` header.
    pub fn new(authority: &str, timeout: Duration) -> Client {
        Client { host: authority.to_string(), addr: authority.to_string(), timeout, conn: None }
    }

    /// Sends one request and reads the whole response; returns the outcome and the latency
    /// from just before sending (connection set-up included when one had to be opened).
    pub async fn send(&mut self, req: &Prepared) -> (Outcome, Duration) {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(self.timeout, self.exchange(req)).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(outcome)) => {
                self.conn = None;
                outcome
            }
            Err(_) => {
                self.conn = None;
                Outcome::Timeout
            }
        };
        (outcome, started.elapsed())
    }

    async fn exchange(&mut self, req: &Prepared) -> Result<Outcome, Outcome> {
        if self.conn.as_ref().is_none_or(|c| c.is_closed()) {
            self.conn = Some(self.connect().await?);
        }
        let Some(sender) = self.conn.as_mut() else { return Err(Outcome::Broken) };
        if sender.ready().await.is_err() {
            // The server closed the idle connection between requests: one fresh try.
            self.conn = Some(self.connect().await?);
        }
        let Some(sender) = self.conn.as_mut() else { return Err(Outcome::Broken) };
        let request = Request::builder()
            .method(Method::POST)
            .uri(&req.path)
            .header(HOST, &self.host)
            .header(CONTENT_TYPE, &req.content_type)
            .body(Full::new(req.body.clone()))
            .map_err(|_| Outcome::Broken)?;
        let response = sender.send_request(request).await.map_err(|_| Outcome::Broken)?;
        let status = response.status().as_u16();
        let retry_after = status == 503 && response.headers().contains_key(RETRY_AFTER);
        let body = response.into_body().collect().await.map_err(|_| Outcome::Broken)?.to_bytes();
        let error_code = if (200..300).contains(&status) { None } else { error_code(&body) };
        Ok(Outcome::Response { status, retry_after, error_code })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Outcome> {
        let stream = TcpStream::connect(&self.addr).await.map_err(|_| Outcome::Connect)?;
        // Requests are small writes followed by a wait: Nagle would only add delay.
        let _ = stream.set_nodelay(true);
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|_| Outcome::Connect)?;
        tokio::spawn(async move {
            // Ends when the connection closes; its error, if any, shows up on the next send.
            let _ = conn.await;
        });
        Ok(sender)
    }
}

/// `error.code` from ocular's envelope `{"error": {"code": ...}}`, or a top-level `detail`
/// string (FastAPI's error body), so refusals can be told apart in the report.
fn error_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.pointer("/error/code")
        .and_then(|c| c.as_str())
        .or_else(|| v.get("detail").and_then(|d| d.as_str()))
        .map(|s| s.chars().take(80).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_error_code_from_either_envelope() {
        assert_eq!(error_code(br#"{"error":{"code":"overloaded","message":"busy"}}"#), Some("overloaded".into()));
        assert_eq!(error_code(br#"{"detail":"Model not loaded"}"#), Some("Model not loaded".into()));
        assert_eq!(error_code(b"<html>502</html>"), None);
        assert_eq!(error_code(br#"{"error":"flat"}"#), None);
    }
}
