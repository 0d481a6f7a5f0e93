#!/usr/bin/env bash
# Minor page faults and resident memory per request of a real `ocular serve` (release build,
# demo catalog, loopback only): for each request kind, N requests one after the other, the
# server's /proc/PID/stat minflt (field 10) before and after, divided by N; idle RSS after
# start-up and after the runs, and the peak (VmHWM). Then a burst of 12-megapixel analyses
# (4 clients) and RSS 10 s later, the figure the allocator tuning was chosen on.
#
#   bench/faults.sh [N]                         # default N = 40
#   MALLOC_MMAP_THRESHOLD_=131072 bench/faults.sh   # glibc's mmap threshold as before issue 15
#
# Environment variables of the server (OCULAR_*, MALLOC_*) pass through. Needs the real models
# (`ocular models fetch`) and target/release/{ocular,ocular-load}
# (`cargo build --release -p ocular -p ocular-bench`).
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-40}
port=${OCULAR_FAULTS_PORT:-18960}
bin_dir=${OCULAR_FAULTS_BIN_DIR:-target/release}   # a copy keeps a rebuild from swapping it mid-run
bin=$bin_dir/ocular
load=$bin_dir/ocular-load
mkdir -p bench/out
work=$(mktemp -d bench/out/faults.XXXXXX)
server_pid=""
cleanup() {
    [[ -z $server_pid ]] || kill -TERM "$server_pid" 2> /dev/null || true
    wait 2> /dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

minflt() { awk '{ sub(/.*\) /, ""); print $8 }' "/proc/$1/stat"; }
kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
mb() { echo $(($(kb "$1" "$2") / 1024)); }

"$bin" import demo/catalog.jsonl --data-dir "$work/data" --models-dir ./models > "$work/import.log" 2>&1
"$bin" serve --host 127.0.0.1 --port "$port" --data-dir "$work/data" --models-dir ./models > "$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$port/health/ready" > /dev/null && break
    sleep 0.2
done
sleep 3
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "env: MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-unset}"
echo "idle RSS after start: $(mb "$server_pid" VmRSS) MiB"

photo=models/photos/chelsea.png
query=models/photos/motorcycle_right.png
echo "| kind | requests | minor faults / request | p50 ms | RSS after (MiB) |"
echo "|---|---|---|---|---|"
for kind in search_photo search_text analyze analyze_gradcam; do
    case $kind in analyze*) p=$photo ;; *) p=$query ;; esac
    # Warm-up requests outside the count: first-use allocations are not per-request costs.
    "$load" --url "http://127.0.0.1:$port" --concurrency 1 --requests 5 --mix "$kind=1" --photo "$p" \
        --text "a red motorcycle" --progress 0 > /dev/null
    before=$(minflt "$server_pid")
    "$load" --url "http://127.0.0.1:$port" --concurrency 1 --requests "$n" --mix "$kind=1" --photo "$p" \
        --text "a red motorcycle" --progress 0 --json "$work/$kind.json" > /dev/null
    after=$(minflt "$server_pid")
    p50=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['latency_ms']['ok_2xx']['p50'])" "$work/$kind.json")
    echo "| $kind | $n | $(((after - before) / n)) | $p50 | $(mb "$server_pid" VmRSS) |"
done
sleep 2
echo "idle RSS after the runs: $(mb "$server_pid" VmRSS) MiB, peak (VmHWM) $(mb "$server_pid" VmHWM) MiB"

# The 12 MP photo bench/cgroup-load.sh makes (decode_probe example), when it exists.
big=bench/out/large-12mp.jpg
if [[ -s $big ]]; then
    "$load" --url "http://127.0.0.1:$port" --concurrency 4 --requests 20 --mix analyze=1 --photo "$big" \
        --timeout 120s --progress 0 > /dev/null
    echo "12 MP burst (20 analyses, 4 clients): RSS right after $(mb "$server_pid" VmRSS) MiB, peak $(mb "$server_pid" VmHWM) MiB"
    sleep 10
    echo "12 MP burst: RSS 10 s later $(mb "$server_pid" VmRSS) MiB"
fi
