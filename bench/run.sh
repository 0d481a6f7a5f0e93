#!/usr/bin/env bash
# ocular side by side with the Python stack it replaces, on this machine, in one run.
#
#   bench/run.sh                 # full run (see bench/README.md, "Python comparison")
#   BENCH_SEQ=20 BENCH_CONC=40 BENCH_PRODUCTS=10000 bench/run.sh    # a quicker, smaller run
#
# Steps: build ocular + ocular-load (release); create bench/.venv from
# bench/python/requirements.txt (once; pip's cache makes it fast again); request inputs; the
# same synthetic catalog for both sides at each size; then bench/python/driver.py runs every
# server alone, one after the other, and bench/python/report.py writes the tables and plots.
# Needs the real models (`ocular models fetch`, which also keeps the original weight files in
# models/.cache/src for the Python side). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."

SEQ=${BENCH_SEQ:-60}              # measured requests per sequential cell
CONC=${BENCH_CONC:-120}           # measured requests per concurrency-10 cell
PRODUCTS=${BENCH_PRODUCTS:-10000,100000}
INGEST=${BENCH_INGEST:-200}       # real photos imported by each side
BACKENDS=${BENCH_BACKENDS:-torch,onnx}
WORK=bench/out/compare
VENV=bench/.venv

for f in models/.cache/src/sklesion/model.keras models/.cache/src/efficientnet-lite0/efficientnet-lite0.pth \
    models/.cache/src/minilm/model.safetensors models/sklesion/model.onnx; do
    [[ -f $f ]] || { echo "missing $f: run \`ocular models fetch\` first" >&2; exit 1; }
done

echo "== build (release)"
cargo build --release -p ocular -p ocular-bench
cargo build --release -p ocular-search --example bench_catalog

if [[ ! -x $VENV/bin/uvicorn ]]; then
    echo "== Python environment ($VENV)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet -r bench/python/requirements.txt
fi
PY=$VENV/bin/python

echo "== inputs and catalogs"
mkdir -p "$WORK"
"$PY" bench/python/make_inputs.py "$WORK/inputs" "$INGEST"
for n in ${PRODUCTS//,/ }; do
    target/release/examples/bench_catalog --products="$n" --out="$WORK/catalog-$n"
    "$PY" bench/python/search_app.py prepare "$WORK/catalog-$n"
done

echo "== servers, one at a time"
# A copy, so that another build replacing target/release/ocular cannot change it mid-run.
mkdir -p "$WORK/bin" && cp target/release/ocular target/release/ocular-load "$WORK/bin/"
result=$("$PY" bench/python/driver.py --work "$WORK" --results bench/results --python "$PY" --ocular "$WORK/bin/ocular" --load "$WORK/bin/ocular-load" \
    --products "$PRODUCTS" --seq "$SEQ" --conc "$CONC" --ingest "$INGEST" --backends "$BACKENDS" | tee /dev/stderr | tail -1)
"$PY" bench/python/report.py "$result" --plots docs/benchmarks
"$PY" bench/python/stages.py "$result" "$WORK" | tee -a "${result%.json}.md"
