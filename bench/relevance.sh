#!/usr/bin/env bash
# The relevance benchmark (issue 19): nDCG@10, MRR and recall@10 of text and photo search over
# the demo catalog and the hard catalog, rank fusion against score-aware fusion, beside search
# speed. Needs the models (`ocular models fetch`). Extra arguments go to the example, e.g.
#   bench/relevance.sh --speed-rounds=50
#   bench/relevance.sh --write-hard=/tmp/hard   # the hard catalog as JSONL + photos, for `ocular import`
#   bench/relevance.sh --labels                 # the top ImageNet labels of every photo
#   bench/relevance.sh --query-prompt           # A/B: the image_text query bare or as "a photo of a {query}"
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release -p ocular-search --example relevance -- "$@"
