"""Server settings compared under load, interleaved (standard library only).

    python variants.py --ocular BIN --load BIN --bare BIN --data DIR --inputs DIR --out FILE.json \
        --variant base: --variant batch1:OCULAR_INFERENCE_BATCH=1 [--rounds 3] [--cells ...]

A variant is NAME:ENV=VALUE,ENV=VALUE (empty for the defaults). Each round starts one server
per variant, in turn (never two at once), runs the same cells with ocular-load (driver.py's
`load`), and records per cell: throughput, p50, minor faults per request and the peak RSS of
the cell (polled every 100 ms). Each round also runs the bare ONNX Runtime row of each cell's
model (bench_bare, the same graph and threads; CELL_MODEL), so throughput can be read as a ratio to the
model's own rate measured minutes apart on the same loaded machine. Rounds interleave the
variants (A B A B ...): on a shared machine only medians over rounds and ratios within one run
mean anything.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import time

import driver

# The model whose bare run each kind of cell is compared with.
CELL_MODEL = {"search_photo": "efficientnet-lite0", "analyze": "sklesion", "analyze_gradcam": "sklesion",
              "search_text": "minilm"}

CELLS = {
    "search_photo-c1": ("search_photo=1", 1, "query.jpg"),
    "search_photo-c10": ("search_photo=1", 10, "query.jpg"),
    "analyze_gradcam-c1": ("analyze_gradcam=1", 1, "analyze.jpg"),
    "analyze_gradcam-c10": ("analyze_gradcam=1", 10, "analyze.jpg"),
    "analyze-c10": ("analyze=1", 10, "analyze.jpg"),
    "search_text-c1": ("search_text=1", 1, "query.jpg"),
    "search_text-c10": ("search_text=1", 10, "query.jpg"),
}


def parse_variant(text):
    name, _, env = text.partition(":")
    pairs = [p.split("=", 1) for p in env.split(",") if p]
    return name, {k: v for k, v in pairs}


def bare(args, model):
    out = subprocess.check_output([args.bare, os.path.join(driver.ROOT, "models", model), str(args.bare_iterations)],
                                  cwd=driver.ROOT, text=True)
    return json.loads(out.strip().splitlines()[-1])


def run_variant(args, name, env, round_no):
    seq_or_conc = {1: args.seq, 10: args.conc}
    full_env = {"OCULAR_PORT": str(driver.PORT), "OCULAR_DATA_DIR": args.data,
                "OCULAR_MODELS_DIR": os.path.join(driver.ROOT, "models"), **env}
    log = os.path.join(os.path.dirname(args.out), f"{name}-{round_no}.log")
    result = {"variant": name, "round": round_no, "env": env, "loadavg_before": driver.loadavg(), "cells": {}}
    with socket.socket() as probe:  # another server on the port would answer our load
        probe.bind(("127.0.0.1", driver.PORT))
    with driver.Server(name, [args.ocular, "serve"], full_env, log) as server:
        server.wait_ready()
        result["settle_s"] = driver.settle(server.proc.pid)
        result["rss_idle_mb"] = driver.rss_mb(server.proc.pid)
        for cell in args.cells.split(","):
            mix, conc, photo = CELLS[cell]
            faults = driver.minor_faults(server.proc.pid)
            with driver.Sampler(server.proc.pid) as sampler:
                report = driver.load(args, f"{name}-{round_no}-{cell}", mix, conc, seq_or_conc[conc],
                                     os.path.join(args.inputs, photo), os.path.dirname(args.out))
            sent = report.get("requests", seq_or_conc[conc]) + args.warmup
            lat = report["latency_ms"]["all"] or {}
            result["cells"][cell] = {
                "rps": report["ok_throughput_rps"], "p50_ms": lat.get("p50"), "p95_ms": lat.get("p95"),
                "ok": report["status_counts"], "faults_per_request":
                    (driver.minor_faults(server.proc.pid) - faults) / max(sent, 1),
                "peak_rss_mb": sampler.peak,
            }
        result["vmhwm_mb"] = driver.hwm_mb(server.proc.pid)
    result["loadavg_after"] = driver.loadavg()
    print(json.dumps(result), flush=True)
    return result


def summary(doc):
    lines = ["| variant | cell | rounds | req/s (median) | x bare rate | p50 ms | x bare p50 | faults/req | "
             "peak RSS MB |", "|---|---|---|---|---|---|---|---|---|"]
    bare_ms = {m: statistics.median(b["p50_ms"] for b in runs) for m, runs in doc["bare"].items() if runs}
    for name in doc["variants"]:
        runs = [r for r in doc["runs"] if r["variant"] == name]
        for cell in doc["settings"]["cells"].split(","):
            got = [r["cells"][cell] for r in runs if cell in r["cells"]]
            if not got:
                continue
            med = lambda k: statistics.median(c[k] for c in got if c[k] is not None)  # noqa: E731
            bare = bare_ms.get(CELL_MODEL[cell.rsplit("-", 1)[0]], float("nan"))
            lines.append(f"| {name} | {cell} | {len(got)} | {med('rps'):.1f} | {med('rps') * bare / 1000:.2f} | "
                         f"{med('p50_ms'):.1f} | {med('p50_ms') / bare:.2f} | {med('faults_per_request'):.0f} | "
                         f"{med('peak_rss_mb'):.0f} |")
    lines.append("")
    for m, ms in bare_ms.items():
        lines.append(f"bare {m} p50 (median of {len(doc['bare'][m])} runs, one per round): {ms:.2f} ms")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ocular", required=True)
    p.add_argument("--load", required=True)
    p.add_argument("--bare", help="bench_bare example; without it no bare row")
    p.add_argument("--data", required=True, help="an imported data dir (bench_catalog's ocular/)")
    p.add_argument("--inputs", required=True, help="make_inputs.py's output")
    p.add_argument("--out", required=True)
    p.add_argument("--variant", action="append", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seq", type=int, default=30)
    p.add_argument("--conc", type=int, default=120)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--bare-iterations", type=int, default=40)
    p.add_argument("--cells", default="search_photo-c1,search_photo-c10,analyze_gradcam-c10")
    p.add_argument("--port", type=int, default=18190, help="not driver.py's, so the two can never mix")
    args = p.parse_args()
    driver.PORT = args.port
    variants = [parse_variant(v) for v in args.variant]
    doc = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "settings": vars(args),
           "cpu": driver_cpu(), "variants": [n for n, _ in variants], "runs": [],
           "bare": {CELL_MODEL[c.rsplit("-", 1)[0]]: [] for c in args.cells.split(",")} if args.bare else {}}
    for round_no in range(args.rounds):
        for model in doc["bare"]:
            doc["bare"][model].append({**bare(args, model), "loadavg": driver.loadavg()})
        for name, env in variants:
            doc["runs"].append(run_variant(args, name, env, round_no))
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
    table = summary(doc)
    with open(args.out.removesuffix(".json") + ".md", "w") as f:
        f.write(f"{doc['cpu']}; started {doc['started']}\n\n{table}\n")
    print(table)


def driver_cpu():
    with open("/proc/cpuinfo") as f:
        name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown CPU")
    flags = open("/proc/cpuinfo").read()
    vnni = " (AVX-512 VNNI)" if "avx512_vnni" in flags else ""
    return f"{name}{vnni}, {os.cpu_count()} cores"


if __name__ == "__main__":
    main()
