#!/usr/bin/env bash
# Start -> searchable: starts `ocular serve` over an existing data directory RUNS times, and for
# each start prints the seconds until /health/ready answers 200 (models preloaded and every
# search index loaded), the index lines of the server's log (opened from the saved snapshot or
# rebuilt, load and save times), and the idle RSS (anonymous and file-backed) 5 s after ready.
# The first start after a catalog is written rebuilds and saves the index (`<db>.index`); the
# later ones open it. Medians are left to the reader (RUNS is small).
#
# Usage: bench/start-time.sh DATA_DIR [RUNS] [BIN]
#   bench/start-time.sh /work/scratch/c100k/ocular 4 target/release/ocular
#
# Only loopback is contacted (127.0.0.1:$OCULAR_LOAD_PORT, default 18951).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?data dir}
runs=${2:-4}
bin=${3:-target/release/ocular}
port=${OCULAR_LOAD_PORT:-18951}
for run in $(seq "$runs"); do
    log=$(mktemp)
    start=$(date +%s.%N)
    "$bin" serve --host 127.0.0.1 --port "$port" --data-dir "$data" --models-dir ./models > "$log" 2>&1 &
    pid=$!
    until curl -fs "http://127.0.0.1:$port/health/ready" > /dev/null 2>&1; do
        kill -0 "$pid" 2> /dev/null || { cat "$log"; exit 1; }
        sleep 0.05
    done
    ready=$(date +%s.%N)
    sleep 5
    rss=$(grep -E '^(VmRSS|RssAnon|RssFile)' "/proc/$pid/status" | tr -s ' \t' ' ' | tr '\n' ' ')
    # The largest resident mappings (a vector file listed here was read through its map).
    top=$(awk '/^[0-9a-f]+-[0-9a-f]+ /{name=$6} /^Rss:/{if ($2 > 20000) print "      " $2 " kB " name}' \
        "/proc/$pid/smaps" | sort -rn -k1 | head -4)
    kill -TERM "$pid"
    wait "$pid" || true
    printf 'run %d: ready after %.2f s; %s\n%s\n' "$run" "$(echo "$ready - $start" | bc)" "$rss" "$top"
    grep -E 'index (opened|loaded|saved|not)|saved index|no saved|search indexes loaded' "$log" \
        | sed -E 's/\x1b\[[0-9;]*m//g; s/^/    /' || true
    rm -f "$log"
done
