"""Tables (markdown) and plots (PNG) from a bench/python/driver.py result file.

    python report.py bench/results/compare-STAMP.json [--plots DIR]

Writes compare-STAMP.md next to the JSON and prints it. Latencies are the medians (p50) of each
cell unless the column says otherwise; a ratio is ocular ÷ Python (below 1: ocular takes less
time or memory; for throughput and ingest, above 1: ocular does more per second).
"""

import json
import os
import sys


def lat(cell, q="p50"):
    lat_ = (cell or {}).get("latency_ms", {}).get("ok_2xx") or {}
    return lat_.get(q)


def ok_count(cell):
    counts = (cell or {}).get("status_counts", {})
    return sum(n for s, n in counts.items() if s.startswith("2")), (cell or {}).get("requests", 0)


def fmt(v, digits=1):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}" if abs(v) < 100 or digits == 0 else f"{v:,.0f}"


def ratio(a, b):
    if a is None or b in (None, 0):
        return "–"
    return f"{a / b:.2f}"


def find(doc, side, products=None):
    for s in doc["servers"]:
        if s["side"] == side and (products is None or s["products"] == products):
            return s
    return None


def cell(server, name):
    return (server or {}).get("cells", {}).get(name)


def rows_for(servers, metrics):
    """metrics: (label, fn(server) -> value, digits, smaller_is_better)"""
    out = []
    for label, fn, digits in metrics:
        values = [fn(s) if s else None for s in servers]
        ratios = [ratio(values[0], v) for v in values[1:]]
        cells = [fmt(v, digits) for v in values] + ratios
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return out


def latency_metrics(name, label):
    return [
        (f"{label} p50 ms", lambda s: lat(cell(s, name)), 1),
        (f"{label} p95 ms", lambda s: lat(cell(s, name), "p95"), 1),
        (f"{label} p99 ms", lambda s: lat(cell(s, name), "p99"), 1),
    ]


def throughput(name):
    return lambda s: (cell(s, name) or {}).get("ok_throughput_rps")


def faults(name):
    return lambda s: (cell(s, name) or {}).get("minor_faults_per_request")


def bare_rows(doc):
    """ocular against the model's own cost: the same graph run directly on ONNX Runtime."""
    bare = doc.get("bare") or {}
    if not bare:
        return []
    lines = ["### The model's own cost (bare ONNX Runtime: same graph, same library, same threads)", "",
             "| | bare p50 ms | ocular p50 ms | ocular ÷ bare | ocular 10-client req/s | 1000 ÷ bare ms "
             "| ocular ÷ (1000 ÷ bare) |", "|---|---|---|---|---|---|---|"]
    oc = [s for s in doc["servers"] if s["side"] == "ocular"]
    rows = []
    if "sklesion" in bare and oc:
        rows.append(("analyze + Grad-CAM (sklesion fp32)", bare["sklesion"], oc[0], "analyze_gradcam"))
        rows.append(("analyze (sklesion fp32)", bare["sklesion"], oc[0], "analyze"))
    if "efficientnet-lite0" in bare:
        for s in oc:
            rows.append((f"photo search, {s['products']:,} products (EfficientNet-Lite0 fp32)",
                         bare["efficientnet-lite0"], s, "search_photo"))
    if "minilm" in bare:
        for s in oc:
            rows.append((f"text search, {s['products']:,} products (MiniLM, 16 tokens)", bare["minilm"], s,
                         "search_text"))
    for label, b, s, kind in rows:
        p50 = lat(cell(s, f"{kind}-c1"))
        rps = (cell(s, f"{kind}-c10") or {}).get("ok_throughput_rps")
        ideal = 1000 / b["p50_ms"]
        lines.append(f"| {label} | {fmt(b['p50_ms'], 2)} | {fmt(p50)} | {ratio(p50, b['p50_ms'])} | {fmt(rps)} "
                     f"| {fmt(ideal)} | {ratio(rps, ideal)} |")
    lines += ["", "Bare runs: " + "; ".join(
        f"{m} {b['onnx']} {b['threads']} threads, p50 {b['p50_ms']:.2f} / p95 {b['p95_ms']:.2f} ms, "
        f"{b['minor_faults_per_run']} minor faults per run" for m, b in bare.items()), ""]
    return lines


def markdown(doc):
    v = doc["versions"]
    pk = v["python_packages"]
    s = doc["settings"]
    lines = [
        f"Run {doc['started']} → {doc['finished']}; {v['cpu']}, {v['cores']} cores, {v['mem_total_mb']} MB RAM; "
        f"ocular {v['ocular_commit']} with ONNX Runtime {v['ocular_onnxruntime']}; Python {pk['python']}, "
        f"TensorFlow {pk['tensorflow-cpu']} (Keras {pk['keras']}), PyTorch {pk['torch']}, ONNX Runtime "
        f"{pk['onnxruntime']}, sentence-transformers {pk['sentence-transformers']}, FastAPI {pk['fastapi']}, "
        f"uvicorn {pk['uvicorn']} (1 worker).",
        f"Requests per cell: {s['seq']} sequential (concurrency 1), {s['conc']} at concurrency 10, "
        f"after {s['warmup']} warm-up requests; ingest: {s['ingest']} real photos (640×480 JPEG).",
        "",
    ]
    oc = find(doc, "ocular", doc["servers"][0]["products"])
    py = find(doc, "python-skin")
    lines += ["### Skin analysis (640×480 JPEG, age/sex/site sent)", "",
              "| | ocular | Python (TF/Keras) | ocular ÷ Python |", "|---|---|---|---|"]
    lines += rows_for([oc, py], [
        ("cold start → ready (s)", lambda s: s["ready_s"], 2),
        ("cold start → first analysis answered (s)", lambda s: s.get("first_analyze_s"), 2),
        ("idle RSS, models loaded (MB)", lambda s: s["rss_idle_mb"], 0),
        *latency_metrics("analyze-c1", "analyze, sequential,"),
        *latency_metrics("analyze_gradcam-c1", "analyze + Grad-CAM, sequential,"),
        ("analyze, concurrency 10, p50 ms", lambda s: lat(cell(s, "analyze-c10")), 1),
        ("analyze, concurrency 10, p95 ms", lambda s: lat(cell(s, "analyze-c10"), "p95"), 1),
        ("analyze, concurrency 10, req/s", throughput("analyze-c10"), 2),
        ("analyze + Grad-CAM, concurrency 10, p50 ms", lambda s: lat(cell(s, "analyze_gradcam-c10")), 1),
        ("analyze + Grad-CAM, concurrency 10, p95 ms", lambda s: lat(cell(s, "analyze_gradcam-c10"), "p95"), 1),
        ("analyze + Grad-CAM, concurrency 10, req/s", throughput("analyze_gradcam-c10"), 2),
        ("minor page faults per analysis + Grad-CAM (sequential)", faults("analyze_gradcam-c1"), 0),
        ("minor page faults per analysis + Grad-CAM (concurrency 10)", faults("analyze_gradcam-c10"), 0),
        ("peak RSS under load (MB)", lambda s: s["rss_peak_load_mb"], 0),
    ])
    lines.append("")
    backends = sorted({x["side"].removeprefix("python-search-") for x in doc["servers"]
                       if x["side"].startswith("python-search-")})
    for n in sorted({x["products"] for x in doc["servers"] if x["side"] == "ocular"}):
        servers = [find(doc, "ocular", n)] + [find(doc, f"python-search-{b}", n) for b in backends]
        head = "".join(f" Python ({'PyTorch' if b == 'torch' else 'ONNX Runtime'}) |" for b in backends)
        ratios = "".join(f" ocular ÷ {b} |" for b in backends)
        lines += [f"### Product search, {n:,} products", "",
                  f"| | ocular |{head}{ratios}", "|---|---|" + "---|" * (2 * len(backends))]
        lines += rows_for(servers, [
            ("cold start → ready (s)", lambda s: s["ready_s"], 2),
            ("cold start → first photo search answered (s)", lambda s: s.get("first_search_s"), 2),
            ("idle RSS, models + catalog loaded (MB)", lambda s: s["rss_idle_mb"], 0),
            *latency_metrics("search_photo-c1", "photo search, sequential,"),
            *latency_metrics("search_text-c1", "text search, sequential,"),
            ("photo search, concurrency 10, p50 ms", lambda s: lat(cell(s, "search_photo-c10")), 1),
            ("photo search, concurrency 10, req/s", throughput("search_photo-c10"), 1),
            ("text search, concurrency 10, p50 ms", lambda s: lat(cell(s, "search_text-c10")), 1),
            ("text search, concurrency 10, req/s", throughput("search_text-c10"), 1),
            ("minor page faults per photo search (sequential)", faults("search_photo-c1"), 0),
            ("minor page faults per photo search (concurrency 10)", faults("search_photo-c10"), 0),
            ("peak RSS under load (MB)", lambda s: s["rss_peak_load_mb"], 0),
        ])
        lines.append("")
    lines += bare_rows(doc)
    lines += ["### Ingest (real photos, 640×480 JPEG, batches of 8, models loaded before the clock)", "",
              "| side | images | seconds | images/s (end to end) |", "|---|---|---|---|"]
    for i in doc["ingest"]:
        lines.append(f"| {i['side']} | {i['images']} | {i['seconds']:.1f} | {i['images_per_s']:.1f} |")
    lines.append("")
    lines += ["### Every cell: answered / sent, load average", "",
              "| server | cells (2xx/requests) | load avg before → after |", "|---|---|---|"]
    for x in doc["servers"]:
        cells = ", ".join(f"{k} {ok_count(c)[0]}/{ok_count(c)[1]}" for k, c in x["cells"].items())
        lines.append(f"| {x['name']} | {cells} | {x['loadavg_before'][0]:.2f} → {x['loadavg_after'][0]:.2f} |")
    return "\n".join(lines) + "\n"


def plots(doc, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out, exist_ok=True)
    groups = [
        ("analyze", [("ocular", find(doc, "ocular", doc["servers"][0]["products"])),
                     ("Python TF", find(doc, "python-skin"))],
         ["analyze-c1", "analyze_gradcam-c1", "analyze-c10", "analyze_gradcam-c10"]),
    ]
    for n in sorted({x["products"] for x in doc["servers"] if x["side"] == "ocular"}):
        sides = [("ocular", find(doc, "ocular", n))]
        sides += [(f"Python {x['side'].removeprefix('python-search-')}", x) for x in doc["servers"]
                  if x["side"].startswith("python-search-") and x["products"] == n]
        groups.append((f"search-{n}", sides, ["search_photo-c1", "search_text-c1", "search_photo-c10",
                                              "search_text-c10"]))
    written = []
    for name, sides, cells in groups:
        fig, axes = plt.subplots(1, len(cells), figsize=(4 * len(cells), 3.6))
        for ax, c in zip(axes, cells):
            for i, (label, server) in enumerate(sides):
                l_ = (cell(server, c) or {}).get("latency_ms", {}).get("ok_2xx") or {}
                qs = [l_.get(q) for q in ("p50", "p95", "p99")]
                if None in qs:
                    continue
                ax.bar([j + i * 0.8 / len(sides) for j in range(3)], qs, width=0.8 / len(sides), label=label)
            ax.set_xticks([j + 0.4 - 0.4 / len(sides) for j in range(3)], ["p50", "p95", "p99"])
            ax.set_title(c)
            ax.set_ylabel("ms")
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(out, f"{name}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def main():
    path = sys.argv[1]
    with open(path) as f:
        doc = json.load(f)
    text = markdown(doc)
    with open(path.removesuffix(".json") + ".md", "w") as f:
        f.write(text)
    print(text)
    if "--plots" in sys.argv:
        for p in plots(doc, sys.argv[sys.argv.index("--plots") + 1]):
            print("plot:", p)


if __name__ == "__main__":
    main()
