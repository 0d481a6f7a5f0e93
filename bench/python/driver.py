"""Runs the side-by-side benchmark (called by bench/run.sh; standard library only).

For each server (ocular, then its Python equivalents), one at a time, never two at once:
launch → cold start (to /health/ready, and to the first answered request), idle RSS, closed-loop
load cells with target/release/ocular-load (each writes its JSON report), RSS of the process
tree polled every 100 ms during the load (and VmHWM), load average before and after. Then
ingest images/s for each side. Writes bench/results/compare-STAMP.json (everything raw) and
prints the path; bench/python/report.py turns it into tables and plots.
"""

import argparse
import http.client
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PORT = 8190


def proc_tree(pid):
    """pid and all its descendants (uvicorn may fork; ONNX Runtime and TF use threads)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid):
    total = 0.0
    for p in proc_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            continue
    return total


def settle(pid, limit=120):
    """Waits (at least 2 s) until the tree used under 5% of a core for a whole second."""
    started = time.monotonic()
    time.sleep(1)
    while time.monotonic() - started < limit:
        before = cpu_s(pid)
        time.sleep(1)
        if cpu_s(pid) - before < 0.05:
            break
    return time.monotonic() - started


def minor_faults(pid):
    """Minor page faults of the process tree so far (/proc/PID/stat field 10)."""
    total = 0
    for p in proc_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                total += int(f.read().rsplit(")", 1)[1].split()[7])
        except (OSError, IndexError, ValueError):
            pass
    return total


def rss_mb(pid):
    return sum(status_kb(p, "VmRSS") for p in proc_tree(pid)) / 1024


def hwm_mb(pid):
    return sum(status_kb(p, "VmHWM") for p in proc_tree(pid)) / 1024


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


class Sampler:
    """Polls the tree's RSS; `peak` is the highest sum seen while running."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._stop.wait(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()


def multipart(fields, file_path):
    boundary = uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    with open(file_path, "rb") as f:
        data = f.read()
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="photo.jpg"\r\n'
                 f"Content-Type: image/jpeg\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def request(method, path, body=None, content_type=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def first_ok(method, path, body, content_type, deadline):
    """Repeats a request until it is answered 2xx (ocular says 503 while its index loads)."""
    while time.monotonic() < deadline:
        try:
            status, _ = request(method, path, body, content_type)
            if 200 <= status < 300:
                return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


class Server:
    def __init__(self, name, cmd, env, log):
        self.name, self.cmd, self.env, self.log = name, cmd, env, log

    def __enter__(self):
        self.log_file = open(self.log, "w")
        self.launched = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, env={**os.environ, **self.env}, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        return self

    def wait_ready(self, timeout=600):
        deadline = self.launched + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log}")
            try:
                if request("GET", "/health/ready", timeout=2)[0] == 200:
                    return time.monotonic() - self.launched
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} not ready in {timeout} s; see {self.log}")

    def __exit__(self, *_):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log_file.close()


def load(args, label, mix, concurrency, requests, photo, work):
    out = os.path.join(work, "load", label + ".json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cmd = [os.path.abspath(args.load), "--url", f"http://127.0.0.1:{PORT}",
           "--concurrency", str(concurrency), "--requests", str(requests), "--warmup", str(args.warmup),
           "--mix", mix, "--photo", photo, "--top-k", "10", "--timeout", "120s", "--json", out, "--label", label,
           "--progress", "0"]
    for text in ("a red motorcycle", "a cup of coffee", "a cat portrait"):
        cmd += ["--text", text]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)


def run_server(args, server, cells, first, work):
    """One server's whole session: cold start, idle RSS, load cells, peak RSS."""
    result = {"name": server.name, "cmd": server.cmd, "loadavg_before": loadavg()}
    print(f"== {server.name}", flush=True)
    with server:
        result["ready_s"] = server.wait_ready()
        result["rss_ready_mb"] = rss_mb(server.proc.pid)
        for kind, (method, path, body, ctype) in first.items():
            ok = first_ok(method, path, body, ctype, server.launched + 600)
            result[f"first_{kind}_s"] = time.monotonic() - server.launched if ok else None
        # Background start-up work (ocular embeds its ConSE class prompts after ready) must not
        # land in the first cell: wait until the server is idle.
        result["settle_s"] = settle(server.proc.pid)
        result["rss_idle_mb"] = rss_mb(server.proc.pid)
        result["cells"] = {}
        with Sampler(server.proc.pid) as sampler:
            for label, (mix, concurrency, requests, photo) in cells.items():
                print(f"   {label}", flush=True)
                faults = minor_faults(server.proc.pid)
                report = load(args, f"{server.name}-{label}", mix, concurrency, requests, photo, work)
                sent = report.get("requests", requests) + args.warmup
                report["minor_faults_per_request"] = (minor_faults(server.proc.pid) - faults) / max(sent, 1)
                result["cells"][label] = report
        result["rss_peak_load_mb"] = sampler.peak
        result["vmhwm_mb"] = hwm_mb(server.proc.pid)
    result["loadavg_after"] = loadavg()
    print(f"   ready {result['ready_s']:.2f} s, idle {result['rss_idle_mb']:.0f} MB, "
          f"peak {result['rss_peak_load_mb']:.0f} MB", flush=True)
    return result


def versions(py):
    code = ("import json, platform, importlib.metadata as m\n"
            "def ver(p):\n"
            "    try:\n        return m.version(p)\n"
            "    except m.PackageNotFoundError:\n        return None\n"
            "v = {p: ver(p) for p in ['tensorflow-cpu', 'keras', 'torch', 'onnxruntime', "
            "'sentence-transformers', 'transformers', 'fastapi', 'uvicorn', 'numpy']}\n"
            "v['python'] = platform.python_version()\nprint(json.dumps(v))")
    v = json.loads(subprocess.check_output([py, "-c", code], text=True))
    commit = subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True).strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT).returncode != 0
    lib = [f for f in os.listdir(os.path.join(ROOT, "models/onnxruntime")) if f.startswith("libonnxruntime")]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return {"ocular_commit": commit + ("+uncommitted" if dirty else ""),
            "ocular_onnxruntime": lib[0].removeprefix("libonnxruntime.so.") if lib else "?",
            "python_packages": v, "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "mem_total_mb": status_meminfo()}


def status_meminfo():
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) // 1024


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("--python", required=True)
    p.add_argument("--products", default="10000,100000")
    p.add_argument("--seq", type=int, default=60, help="measured requests per sequential cell")
    p.add_argument("--conc", type=int, default=120, help="measured requests per concurrency-10 cell")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--ingest", type=int, default=200)
    p.add_argument("--backends", default="torch,onnx")
    p.add_argument("--ocular", default=os.path.join(ROOT, "target/release/ocular"))
    p.add_argument("--load", default=os.path.join(ROOT, "target/release/ocular-load"))
    p.add_argument("--sides", default="ocular,python", help="ocular, python or both")
    p.add_argument("--bare", help="bench_bare example: the graphs run directly on ONNX Runtime")
    p.add_argument("--bare-iterations", type=int, default=40)
    args = p.parse_args()
    sides = set(args.sides.split(","))
    work, inputs = args.work, os.path.join(args.work, "inputs")
    analyze_jpg, query_jpg = os.path.join(inputs, "analyze.jpg"), os.path.join(inputs, "query.jpg")
    sizes = [int(n) for n in args.products.split(",")]
    backends = [b for b in args.backends.split(",") if b]
    ocular = os.path.abspath(args.ocular)
    analyze_body = multipart({"age": "45", "sex": "female", "location": "trunk"}, analyze_jpg)
    search_body = multipart({"top_k": "10"}, query_jpg)
    first_analyze = ("POST", "/api/v1/analyze?gradcam=true&force=true", *analyze_body)
    first_search = ("POST", "/api/v1/search", *search_body)
    analyze_cells = {
        "analyze-c1": ("analyze=1", 1, args.seq, analyze_jpg),
        "analyze_gradcam-c1": ("analyze_gradcam=1", 1, args.seq, analyze_jpg),
        "analyze-c10": ("analyze=1", 10, args.conc, analyze_jpg),
        "analyze_gradcam-c10": ("analyze_gradcam=1", 10, args.conc, analyze_jpg),
    }
    search_cells = {
        "search_photo-c1": ("search_photo=1", 1, args.seq, query_jpg),
        "search_text-c1": ("search_text=1", 1, args.seq, query_jpg),
        "search_photo-c10": ("search_photo=1", 10, args.conc, query_jpg),
        "search_text-c10": ("search_text=1", 10, args.conc, query_jpg),
    }
    doc = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "settings": vars(args),
           "versions": versions(args.python), "servers": [], "ingest": []}
    uv = [args.python, "-m", "uvicorn", "--app-dir", os.path.join(ROOT, "bench/python"), "--host", "127.0.0.1",
          "--port", str(PORT), "--workers", "1"]

    # The model's own cost: each graph ocular serves, run directly on the same ONNX Runtime
    # library with the same thread count (ONNX Runtime's default session options).
    doc["bare"] = {}
    for model in (["sklesion", "efficientnet-lite0", "minilm"] if args.bare else []):
        print(f"== bare ONNX Runtime: {model}", flush=True)
        out = subprocess.check_output([os.path.abspath(args.bare), os.path.join(ROOT, "models", model),
                                       str(args.bare_iterations)], cwd=ROOT, text=True)
        doc["bare"][model] = {**json.loads(out.strip().splitlines()[-1]), "loadavg": loadavg()}

    for n in (sizes if "ocular" in sides else []):
        data = os.path.join(work, f"catalog-{n}", "ocular")
        env = {"OCULAR_PORT": str(PORT), "OCULAR_DATA_DIR": data, "OCULAR_MODELS_DIR": os.path.join(ROOT, "models")}
        # At the smallest catalog ocular also serves analyze: one process does both jobs.
        cells = {**(analyze_cells if n == sizes[0] else {}), **search_cells}
        first = {"analyze": first_analyze, "search": first_search} if n == sizes[0] else {"search": first_search}
        srv = Server(f"ocular-{n}", [ocular, "serve"], env, os.path.join(work, f"ocular-{n}.log"))
        doc["servers"].append({"side": "ocular", "products": n, **run_server(args, srv, cells, first, work)})

    skin_env = {"BENCH_DATA": os.path.join(work, "python-skin"),
                "OCULAR_SKLESION_KERAS": os.path.join(ROOT, "models/.cache/src/sklesion/model.keras")}
    if "python" not in sides:
        backends = []
    else:
        srv = Server("python-skin", uv + ["skin_app:app"], skin_env, os.path.join(work, "python-skin.log"))
        doc["servers"].append({"side": "python-skin", "products": None,
                               **run_server(args, srv, analyze_cells, {"analyze": first_analyze}, work)})
    for backend in backends:
        for n in sizes:
            env = {"BENCH_CATALOG": os.path.join(work, f"catalog-{n}", "python"), "BENCH_IMAGE_BACKEND": backend}
            name = f"python-search-{backend}-{n}"
            srv = Server(name, uv + ["search_app:app"], env, os.path.join(work, name + ".log"))
            doc["servers"].append({"side": f"python-search-{backend}", "products": n,
                                   **run_server(args, srv, search_cells, {"search": first_search}, work)})

    # Ingest: the same N real photos, a fresh store each time, models loaded before the clock.
    catalog = os.path.join(inputs, "ingest", "catalog.jsonl")
    data = os.path.join(work, "ingest-ocular")
    subprocess.run(["rm", "-rf", data], check=True)
    started = time.monotonic()
    out = subprocess.check_output([ocular, "import", catalog, "--json"], cwd=ROOT, text=True,
                                  env={**os.environ, "OCULAR_DATA_DIR": data,
                                       "OCULAR_MODELS_DIR": os.path.join(ROOT, "models")})
    report = json.loads(out)
    # End to end like the Python side (first record to last write, models loaded before the
    # clock); ocular's own `images_per_s` counts only the time inside decode+embed+write.
    doc["ingest"].append({"side": "ocular", "images": report["written"], "seconds": report["seconds"],
                          "images_per_s": report["written"] / report["seconds"],
                          "embed_images_per_s": report["images_per_s"], "failed": report["failed"],
                          "wall_s": time.monotonic() - started, "loadavg": loadavg()})
    for backend in backends:
        started = time.monotonic()
        out = subprocess.check_output([args.python, os.path.join(ROOT, "bench/python/search_app.py"), "ingest",
                                       catalog, str(args.ingest)], text=True,
                                      env={**os.environ, "BENCH_IMAGE_BACKEND": backend})
        report = json.loads(out.strip().splitlines()[-1])
        doc["ingest"].append({"side": f"python-{backend}", **report, "wall_s": time.monotonic() - started,
                              "loadavg": loadavg()})
    print("ingest:", [(i["side"], round(i["images_per_s"], 1)) for i in doc["ingest"]], flush=True)

    doc["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    os.makedirs(args.results, exist_ok=True)
    path = os.path.join(args.results, f"compare-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    print(path)


if __name__ == "__main__":
    sys.exit(main())
