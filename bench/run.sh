#!/usr/bin/env bash
# ocular side by side with the Python stack it replaces, on this machine, in one run.
#
#   bench/run.sh                 # full run (see bench/README.md, "Python comparison")
#   BENCH_SEQ=20 BENCH_CONC=40 BENCH_PRODUCTS=10000 bench/run.sh    # a quicker, smaller run
#   BENCH_SIDES=ocular bench/run.sh    # ocular and bare ONNX Runtime only (no Python servers)
#
# Steps: build ocular + ocular-load (release); create bench/.venv from
# bench/python/requirements.txt (once; pip's cache makes it fast again); request inputs; the
# same synthetic catalog for both sides at each size; the bare ONNX Runtime row (each graph run
# directly on the same library with the same threads: the model's own cost, to which every
# ocular figure is also given as a ratio); then bench/python/driver.py runs every server alone,
# one after the other, and bench/python/report.py writes the tables and plots. The CPU is named
# from /proc/cpuinfo in the report.
# Needs the real models (`ocular models fetch`, which also keeps the original weight files in
# models/.cache/src for the Python side). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."

SEQ=${BENCH_SEQ:-60}              # measured requests per sequential cell
CONC=${BENCH_CONC:-120}           # measured requests per concurrency-10 cell
PRODUCTS=${BENCH_PRODUCTS:-10000,100000}
INGEST=${BENCH_INGEST:-200}       # real photos imported by each side
BACKENDS=${BENCH_BACKENDS:-torch,onnx}
SIDES=${BENCH_SIDES:-ocular,python}
WORK=bench/out/compare
VENV=bench/.venv

for f in models/.cache/src/sklesion/model.keras models/.cache/src/efficientnet-lite0/efficientnet-lite0.pth \
    models/.cache/src/minilm/model.safetensors models/sklesion/model.onnx; do
    [[ -f $f ]] || { echo "missing $f: run \`ocular models fetch\` first" >&2; exit 1; }
done

echo "== build (release)"
cargo build --release -p ocular -p ocular-bench
cargo build --release -p ocular-search --example bench_catalog
cargo build --release -p ocular-models --example bench_bare

if [[ $SIDES != *python* ]]; then
    # Inputs and reports only: Pillow and NumPy from the same pinned list.
    VENV=bench/.venv-lite
    if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import PIL, numpy' 2>/dev/null; then
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet $(grep -E '^(pillow|numpy)==' bench/python/requirements.txt)
    fi
elif [[ ! -x $VENV/bin/uvicorn ]]; then
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
    [[ $SIDES != *python* ]] || "$PY" bench/python/search_app.py prepare "$WORK/catalog-$n"
done

echo "== servers, one at a time"
# A copy, so that another build replacing target/release/ocular cannot change it mid-run.
mkdir -p "$WORK/bin" && cp target/release/ocular target/release/ocular-load target/release/examples/bench_bare "$WORK/bin/"
result=$("$PY" bench/python/driver.py --work "$WORK" --results bench/results --python "$PY" --ocular "$WORK/bin/ocular" --load "$WORK/bin/ocular-load" \
    --bare "$WORK/bin/bench_bare" --sides "$SIDES" \
    --products "$PRODUCTS" --seq "$SEQ" --conc "$CONC" --ingest "$INGEST" --backends "$BACKENDS" | tee /dev/stderr | tail -1)
if [[ $SIDES == *python* ]]; then
    "$PY" bench/python/report.py "$result" --plots docs/benchmarks
else
    "$PY" bench/python/report.py "$result"
fi
"$PY" bench/python/stages.py "$result" "$WORK" | tee -a "${result%.json}.md"
