//! RSS of a real `ocular serve` under a burst of large-photo analyses, and after it settles:
//! the measurement behind the allocator choice (docs/DEPLOY.md, "Memory"; run all variants with
//! `bench/alloc_burst.sh`).
//!
//! Starts the given `ocular` binary on a loopback port with the real models, waits until it is
//! ready, then sends `--requests` analyses of one 12-megapixel JPEG (made here, photo-like
//! texture) with `--clients` at a time, each over its own connection. Reports the server's RSS
//! when ready, its peak during the burst (the kernel's `VmHWM`), its RSS right after and 10 s
//! after the burst, and the median and p90 request latency. Everything stays on 127.0.0.1.
//!
//! ```sh
//! cargo run --release -p ocular-server --example alloc_burst -- target/release/ocular [--requests 20] [--clients 4]
//! ```
//! Extra environment for the server (e.g. `MALLOC_ARENA_MAX=2`) is passed through.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ocular_image::image::{Rgb, RgbImage};

fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// One HTTP/1.1 exchange on a fresh connection; returns the status code.
fn http(port: u16, method: &str, path: &str, content_type: &str, body: &[u8]) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let line = String::from_utf8_lossy(&resp[..resp.len().min(32)]).to_string();
    line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| std::io::Error::other(line))
}

fn photo(w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 27;
        Rgb([(180 + n) as u8, (120 + x * 40 / w) as u8, (100 + y * 40 / h) as u8])
    });
    let mut out = Vec::new();
    ocular_image::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&img).expect("jpeg");
    out
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let binary = args.get(1).cloned().unwrap_or_else(|| "target/release/ocular".into());
    let requests = arg(&args, "--requests", 20);
    let clients = arg(&args, "--clients", 4);
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("free port").local_addr().expect("addr").port();
    let data = tempfile::tempdir().expect("tempdir");
    let child = Command::new(&binary)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--memory-budget", "off"])
        .args(["--models", "sklesion,efficientnet-lite0,minilm", "--data-dir"])
        .arg(data.path())
        .arg("serve")
        .env("OCULAR_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{binary}: {e}"));
    let pid = child.id();
    let _server = Server(child);
    let started = Instant::now();
    while http(port, "GET", "/health/ready", "text/plain", b"").ok() != Some(200) {
        assert!(started.elapsed() < Duration::from_secs(120), "server not ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let ready_kb = status_kb(pid, "VmRSS:");

    let jpeg = photo(4000, 3000);
    let boundary = "ocular-alloc-burst";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&jpeg);
    body.extend(format!("\r\n--{boundary}--\r\n").bytes());
    let body = Arc::new(body);
    let content_type = format!("multipart/form-data; boundary={boundary}");

    let next = Arc::new(Mutex::new(0usize));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let burst = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (next, latencies, body, content_type) =
                (next.clone(), latencies.clone(), body.clone(), content_type.clone());
            std::thread::spawn(move || {
                loop {
                    {
                        let mut n = next.lock().expect("lock");
                        if *n >= requests {
                            return;
                        }
                        *n += 1;
                    }
                    let t = Instant::now();
                    let code = http(port, "POST", "/api/v1/analyze?force=true", &content_type, &body).expect("request");
                    assert_eq!(code, 200, "analysis failed");
                    latencies.lock().expect("lock").push(t.elapsed().as_secs_f64() * 1e3);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("client");
    }
    let burst_s = burst.elapsed().as_secs_f64();
    let peak_kb = status_kb(pid, "VmHWM:");
    let after_kb = status_kb(pid, "VmRSS:");
    std::thread::sleep(Duration::from_secs(10));
    let settled_kb = status_kb(pid, "VmRSS:");
    let mut l = latencies.lock().expect("lock").clone();
    l.sort_by(f64::total_cmp);
    let pct = |p: f64| l[((l.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "| ready {:.0} | peak {:.0} | after burst {:.0} | settled 10 s {:.0} | median {:.0} ms | p90 {:.0} ms | burst {:.1} s | {} × {:.1} MB JPEG, {} clients |",
        mib(ready_kb),
        mib(peak_kb),
        mib(after_kb),
        mib(settled_kb),
        pct(0.5),
        pct(0.9),
        burst_s,
        requests,
        jpeg.len() as f64 / 1e6,
        clients
    );
}
