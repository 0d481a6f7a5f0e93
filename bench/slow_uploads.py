#!/usr/bin/env python3
"""A slow-upload flood against a running `ocular serve`, with the server's memory sampled.

    bench/slow_uploads.py --port 18970 --pid PID --photo bench/out/.../query.jpg

`--clients` connections each declare a `--declare`-byte multipart photo search, send
`--sent` bytes of it at once, then one byte every `--trickle` seconds; when the server answers
or closes, the client opens a new connection and starts again, for `--duration` seconds. A probe
sends a real photo search every `--probe-every` seconds meanwhile. Printed as one JSON object:
the statuses the flood and the probe got, the server's RSS before the flood, its largest sampled
RSS during it, and VmHWM. Standard library only; loopback only. Not part of CI (docs/DEPLOY.md,
"Slow uploads", has the numbers it gave).
"""

import argparse
import collections
import json
import socket
import threading
import time

BOUNDARY = "flood-boundary"


def rss_mb(pid, field="VmRSS:"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return None


def status_of(data):
    if data.startswith(b"HTTP/1.1 ") and len(data) >= 12:
        return data[9:12].decode()
    return "closed" if not data else "garbled"


def head(port, length):
    return (
        f"POST /api/v1/search HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def form(photo):
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"q.jpg\"\r\n"
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode() + photo + f"\r\n--{BOUNDARY}--\r\n".encode()


def read_answer(sock):
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except OSError:
        pass
    return out


def flood_client(args, stop, counts, lock):
    start = form(b"")[: -len(f"\r\n--{BOUNDARY}--\r\n")]
    body = start + b"\xff" * max(0, args.sent - len(start))
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", args.port), timeout=60)
            s.sendall(head(args.port, args.declare) + body)
            s.setblocking(False)
            answer = b""
            while not stop.is_set():
                try:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
                except BlockingIOError:
                    pass
                try:
                    s.send(b"\xff")
                except BlockingIOError:
                    pass
                time.sleep(args.trickle)
            s.close()
            outcome = status_of(answer)
        except OSError:
            outcome = "error"
        with lock:
            counts[outcome] += 1


def probe(args, stop, counts, latencies, lock):
    photo = open(args.photo, "rb").read()
    body = form(photo)
    while not stop.is_set():
        started = time.monotonic()
        try:
            s = socket.create_connection(("127.0.0.1", args.port), timeout=60)
            s.sendall(head(args.port, len(body)) + body)
            outcome = status_of(read_answer(s))
            s.close()
        except OSError:
            outcome = "error"
        with lock:
            counts[outcome] += 1
            latencies.append(time.monotonic() - started)
        time.sleep(args.probe_every)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--photo", required=True)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--sent", type=int, default=256 * 1024)
    ap.add_argument("--declare", type=int, default=4 * 1024 * 1024)
    ap.add_argument("--trickle", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=40.0)
    ap.add_argument("--probe-every", type=float, default=0.5)
    args = ap.parse_args()

    before = rss_mb(args.pid)
    stop, lock = threading.Event(), threading.Lock()
    flood, probes, latencies = collections.Counter(), collections.Counter(), []
    threads = [threading.Thread(target=flood_client, args=(args, stop, flood, lock)) for _ in range(args.clients)]
    threads.append(threading.Thread(target=probe, args=(args, stop, probes, latencies, lock)))
    for t in threads:
        t.start()
    peak, ended = before, time.monotonic() + args.duration
    while time.monotonic() < ended:
        peak = max(peak, rss_mb(args.pid) or 0)
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    latencies.sort()
    print(json.dumps({
        "clients": args.clients, "sent": args.sent, "declare": args.declare, "trickle_s": args.trickle,
        "duration_s": args.duration, "flood": dict(flood), "probe": dict(probes),
        "probe_p50_ms": round(1000 * latencies[len(latencies) // 2], 1) if latencies else None,
        "rss_before_mb": round(before, 1), "rss_peak_sampled_mb": round(peak, 1),
        "vmhwm_mb": round(rss_mb(args.pid, "VmHWM:"), 1),
    }))


if __name__ == "__main__":
    main()
