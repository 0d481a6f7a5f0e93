//! A minimal blocking HTTP/1.1 client and file server over `std::net`, for test set-up only:
//! polling readiness, seeding the catalog through the public API, and serving images for the
//! "by image address" paths. What is under test always goes through the browser.
//!
//! Every request says `Connection: close`, so a response ends when the connection does; the
//! only framing left to handle is chunked transfer encoding.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

fn addr(base: &str) -> Result<SocketAddr, String> {
    let host = base.strip_prefix("http://").ok_or_else(|| format!("not an http URL: {base}"))?;
    host.trim_end_matches('/').parse().map_err(|e| format!("{base}: {e}"))
}

pub fn request(base: &str, method: &str, path: &str, body: Option<(&str, &[u8])>) -> Result<Response, String> {
    let addr = addr(base)?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(120))).map_err(|e| e.to_string())?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n");
    let (content_type, bytes) = body.unwrap_or(("", &[]));
    if body.is_some() {
        head.push_str(&format!("Content-Type: {content_type}\r\nContent-Length: {}\r\n", bytes.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(bytes)).map_err(|e| e.to_string())?;
    let (head, body) = read_response(&mut stream)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    Ok(Response { status, body })
}

/// The value of header `name` in a response head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads one response. Some servers (chromedriver) keep the connection open despite
/// `Connection: close`, so the body is framed by Content-Length or chunking when present.
fn read_response(stream: &mut TcpStream) -> Result<(String, Vec<u8>), String> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut head: Option<(String, usize)> = None;
    loop {
        if head.is_none()
            && let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n")
        {
            head = Some((String::from_utf8_lossy(&raw[..split]).into_owned(), split + 4));
        }
        if let Some((h, start)) = &head {
            let body = &raw[*start..];
            if let Some(len) = header(h, "content-length").and_then(|v| v.parse::<usize>().ok())
                && body.len() >= len
            {
                return Ok((h.clone(), body[..len].to_vec()));
            }
            if header(h, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
                && body.ends_with(b"0\r\n\r\n")
            {
                return Ok((h.clone(), dechunk(body)?));
            }
        }
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            let (h, start) = head.ok_or("connection closed before the response head")?;
            let body = &raw[start..];
            let chunked = header(&h, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
            return Ok((h, if chunked { dechunk(body)? } else { body.to_vec() }));
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// Decodes a chunked body: `SIZE-in-hex\r\nDATA\r\n` repeated, ending with size 0.
fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").ok_or("truncated chunk size")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|e| format!("chunk size {size_hex:?}: {e}"))?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let data = raw.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(data);
        raw = raw.get(size + 2..).unwrap_or_default();
    }
}

pub fn get(base: &str, path: &str) -> Result<Response, String> {
    request(base, "GET", path, None)
}

/// A `multipart/form-data` body: text fields and one file. Returns (content type, body).
pub fn multipart(fields: &[(&str, &str)], file: (&str, &Path)) -> Result<(String, Vec<u8>), String> {
    let boundary = "ocular-e2e-7d1f0c2b9a";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    let (name, path) = file;
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let filename = path.file_name().and_then(|f| f.to_str()).unwrap_or("image");
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {}\r\n\r\n",
            image_type(path)
        )
        .as_bytes(),
    );
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok((format!("multipart/form-data; boundary={boundary}"), body))
}

fn image_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        _ => "image/jpeg",
    }
}

/// Serves one file at any path on a loopback port, from a background thread, for as long as
/// the test process lives. Returns the base URL (`http://127.0.0.1:PORT`).
pub fn serve_file(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let content_type = image_type(path);
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let base = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            // Read the request head (its content does not matter) before answering.
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&bytes));
        }
    });
    Ok(base)
}
