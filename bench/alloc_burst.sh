#!/usr/bin/env bash
# Which allocator gives memory back: RSS of a real `ocular serve` under 20 analyses of a
# 12-megapixel JPEG (4 at a time), right after and 10 s after, with each allocator variant.
# Prints one table row per variant (docs/DEPLOY.md, "Memory"). Loopback only.
#
# Usage: bench/alloc_burst.sh [variant ...]   (default: all)
#   glibc             the system malloc as is (plus ocular's malloc_trim after model loads)
#   glibc-tuned       glibc with MALLOC_ARENA_MAX=2 and MALLOC_TRIM_THRESHOLD_=32 MiB
#   mimalloc          mimalloc for Rust's allocations (ONNX Runtime stays on glibc)
#   mimalloc-override mimalloc for the whole process, ONNX Runtime included
#   jemalloc          jemalloc for Rust's allocations, background purging, 1 s dirty decay
set -euo pipefail
cd "$(dirname "$0")/.."

variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(glibc glibc-tuned mimalloc mimalloc-override jemalloc)
out=target/alloc-variants
mkdir -p "$out"
requests=${REQUESTS:-20}
clients=${CLIENTS:-4}

build() { # variant -> binary path
    local features=$1 name=$2
    if [ ! -x "$out/ocular-$name" ] || [ -n "${REBUILD:-}" ]; then
        cargo build --release -p ocular --no-default-features ${features:+--features "$features"} >&2
        cp target/release/ocular "$out/ocular-$name"
    fi
    echo "$out/ocular-$name"
}

cargo build --release -p ocular-server --example alloc_burst >&2
for v in "${variants[@]}"; do
    case $v in
        glibc) bin=$(build "" glibc); env=() ;;
        glibc-tuned) bin=$(build "" glibc); env=(MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=33554432) ;;
        mimalloc) bin=$(build mimalloc mimalloc); env=() ;;
        mimalloc-override) bin=$(build mimalloc-override mimalloc-override); env=() ;;
        jemalloc)
            bin=$(build jemalloc jemalloc)
            env=(_RJEM_MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0)
            ;;
        *) echo "unknown variant $v" >&2; exit 2 ;;
    esac
    printf '| %s ' "$v"
    env "${env[@]}" target/release/examples/alloc_burst "$bin" --requests "$requests" --clients "$clients"
done
