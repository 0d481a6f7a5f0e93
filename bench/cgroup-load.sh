#!/usr/bin/env bash
# ocular under a memory limit: runs `ocular serve` inside a memory cgroup and loads it with
# `ocular-load`, first at normal load, then at three times that, while sampling the cgroup.
#
# Usage (as root; cgroup v1 or v2):
#   bench/cgroup-load.sh [LIMIT] [PHASE_SECONDS] [CLIENTS]
#   bench/cgroup-load.sh 512M 300 10     # the issue's test: 10 clients for 5 min, then 30 for 5 min
#   bench/cgroup-load.sh 256M 300
#
# Steps: builds ocular and ocular-load (release), installs the models (`ocular models fetch`),
# imports demo/catalog.jsonl into a fresh data directory, creates a child memory cgroup of this
# shell's own (limit LIMIT, swap limited to the same so the server cannot swap its way out),
# starts the server inside it, waits for /health/ready, runs the two phases with a mix of
# analyze (with and without Grad-CAM) and search (photo and text) over the demo photos plus one
# generated 12-megapixel JPEG, and samples the cgroup's usage every second. It then prints and
# writes bench/results/cgroup-LIMIT-STAMP.{json,md}: peak usage, failcnt / memory.events, OOM
# kills, whether the server survived, counts by status, 503 rate, p50/p95/p99 per phase, the
# server's RSS at the end and the load average. Work files (server log, samples) stay in
# bench/out/cgroup/STAMP/. The server runs with its defaults; environment variables such as
# OCULAR_MAX_CONCURRENCY or OCULAR_MEMORY_BUDGET are passed through to it. OCULAR_LOAD_PORT
# picks the port; OCULAR_LOAD_BIN_DIR=DIR skips the build and runs the ocular and ocular-load
# binaries found in DIR (e.g. copies taken while others rebuild target/). OCULAR_LOAD_MIX
# replaces the request mix; add issue 16's attacks to the normal load with
#   OCULAR_LOAD_MIX=analyze=1,analyze_gradcam=1,search_photo=2,search_text=2,attack_json=1,attack_strip=1
# (an 18 MB JSON search with an unknown field, and a 1,000,000 x 2 PNG strip): both must be
# refused (413, 422) while the rest is served and the server stays inside its limit.
#
# Only loopback is ever contacted (the server listens on 127.0.0.1:$OCULAR_LOAD_PORT, default 18950).
set -euo pipefail
cd "$(dirname "$0")/.."

limit=${1:-512M}
phase_s=${2:-300}
clients=${3:-10}
overload=$((clients * 3))
port=${OCULAR_LOAD_PORT:-18950}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
name="cgroup-${limit}-${stamp}"
work="bench/out/cgroup/${stamp}"
results=bench/results
mkdir -p "$work" "$results"

log() { printf '==> %s\n' "$*" >&2; }

# OCULAR_LOAD_BIN_DIR=DIR: no build; the binaries in DIR are used as they are.
bin_dir=${OCULAR_LOAD_BIN_DIR:-}
if [[ -z $bin_dir ]]; then
    log "building ocular and ocular-load (release)"
    cargo build --release --locked -p ocular -p ocular-bench
    bin_dir=target/release
fi
case $bin_dir in /*) ;; *) bin_dir=./$bin_dir ;; esac
bin=$bin_dir/ocular
load=$bin_dir/ocular-load

# OCULAR_LOAD_MODELS_READY=1: the models in ./models are installed already (by someone else
# on a shared machine): no `ocular models fetch`.
if [[ -z ${OCULAR_LOAD_MODELS_READY:-} ]]; then
    log "models"
    "$bin" models fetch --models-dir ./models
fi

# OCULAR_LOAD_DATA_DIR=DIR: serve an existing catalog (e.g. a million products written by
# `bench_catalog`) instead of importing the demo one; DIR is used in place and kept.
data=${OCULAR_LOAD_DATA_DIR:-$work/data}
if [[ -n ${OCULAR_LOAD_DATA_DIR:-} ]]; then
    log "existing catalog in $data"
else
    log "demo catalog into a fresh data directory ($data)"
    "$bin" import demo/catalog.jsonl --data-dir "$data" --models-dir ./models > "$work/import.log" 2>&1
fi

# One large photo (4000 x 3000, ~12 MP): the biggest memory cost on the request path.
large=bench/out/large-12mp.jpg
if [[ ! -s $large ]]; then
    log "generating $large from models/photos/retina.jpg"
    cargo run --release --locked -p ocular-image --example decode_probe -- make models/photos/retina.jpg "$large" 4000 3000
fi

cg=""
server_pid=""
sampler_pid=""
cleanup() {
    set +e
    [[ -n $sampler_pid ]] && kill "$sampler_pid" 2> /dev/null
    if [[ -n $server_pid ]] && alive_check "$server_pid"; then
        kill -TERM "$server_pid"
        for _ in $(seq 50); do alive_check "$server_pid" || break; sleep 0.2; done
        kill -KILL "$server_pid" 2> /dev/null
    fi
    wait 2> /dev/null
    # A v1 group can only be removed once empty; give the kernel a moment after the kill.
    [[ -n $cg ]] && for _ in $(seq 25); do rmdir "$cg" 2> /dev/null && break; sleep 0.2; done
    rm -rf "$work/data"
}
trap cleanup EXIT
# A trap that returns lets the script carry on: stop instead (cleanup then runs on EXIT).
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the cgroup ---------------------------------------------------------------------------
if own=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup) && [[ -n $own && -d /sys/fs/cgroup/memory ]]; then
    version=1
    cg="/sys/fs/cgroup/memory${own%/}/ocular-load-$$"
    mkdir "$cg"
    echo "$limit" > "$cg/memory.limit_in_bytes"
    # memsw = memory + swap: equal to the limit means no swap at all.
    if [[ -f $cg/memory.memsw.limit_in_bytes ]]; then
        echo "$limit" > "$cg/memory.memsw.limit_in_bytes"
        swap_limited=true
    else
        swap_limited="no memsw file (kernel without swap accounting)"
    fi
elif [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    version=2
    own=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
    parent="/sys/fs/cgroup${own%/}"
    # The memory controller must be enabled for children; this fails when the parent itself
    # holds processes (the "no internal processes" rule): then run from a leaf you own.
    grep -qw memory "$parent/cgroup.subtree_control" || echo +memory > "$parent/cgroup.subtree_control"
    cg="$parent/ocular-load-$$"
    mkdir "$cg"
    echo "$limit" > "$cg/memory.max"
    if [[ -f $cg/memory.swap.max ]]; then
        echo 0 > "$cg/memory.swap.max"
        swap_limited=true
    else
        swap_limited="no memory.swap.max"
    fi
else
    echo "no memory cgroup found (neither v1 /sys/fs/cgroup/memory nor v2)" >&2
    exit 1
fi
limit_bytes=$(cat "$cg/memory.limit_in_bytes" 2> /dev/null || cat "$cg/memory.max")
log "cgroup v$version: $cg (limit $limit_bytes bytes, swap limited: $swap_limited)"


# kill -0 succeeds on a zombie (a killed child not yet reaped), so read the process state.
alive_check() { [[ -r /proc/$1/stat ]] && [[ $(awk '{ print $3 }' "/proc/$1/stat" 2> /dev/null) != Z ]]; }
cg_usage() { cat "$cg/memory.usage_in_bytes" 2> /dev/null || cat "$cg/memory.current"; }
rss_of() { awk -v f="$2:" '$1 == f { print $2 * 1024 }' "/proc/$1/status" 2> /dev/null || true; }

# ---- the server ---------------------------------------------------------------------------
log "starting ocular serve in the cgroup on 127.0.0.1:$port"
# The shell joins the cgroup first and then becomes the server, so every byte it ever
# allocates (model loading included) is charged to the group.
sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' _ "$cg" \
    "$bin" serve --host 127.0.0.1 --port "$port" --data-dir "$data" --models-dir ./models \
    > "$work/serve.log" 2>&1 &
server_pid=$!

(
    start=$(date +%s)
    while :; do
        printf '%s\t%s\t%s\t%s\n' "$(($(date +%s) - start))" "$(cg_usage)" \
            "$(rss_of "$server_pid" VmRSS)" "$(cut -d' ' -f1 /proc/loadavg)"
        sleep 1
    done
) > "$work/samples.tsv" &
sampler_pid=$!

ready=false
for _ in $(seq 300); do
    alive_check "$server_pid" || break
    if curl -sf "http://127.0.0.1:$port/health/ready" > /dev/null; then ready=true; break; fi
    sleep 1
done
health() {
    local h
    h=$(curl -sf --max-time 5 "http://127.0.0.1:$port/health?verbose=1" | jq -c '{memory, admission}' 2> /dev/null || true)
    echo "${h:-null}"
}
health_start=$(health)
log "ready: $ready; health at start: $health_start"

photos=(models/photos/china.jpg models/photos/flower.jpg models/photos/rocket.jpg models/photos/retina.jpg
    models/photos/hubble_deep_field.jpg models/photos/coffee.png models/photos/chelsea.png "$large")
photo_args=()
for p in "${photos[@]}"; do photo_args+=(--photo "$p"); done
run_phase() { # label clients name
    "$load" --url "http://127.0.0.1:$port" --concurrency "$2" --duration "${phase_s}s" --label "$1" \
        --mix "${OCULAR_LOAD_MIX:-analyze=1,analyze_gradcam=1,search_photo=2,search_text=2}" "${photo_args[@]}" \
        --text "a cup of coffee" --text "red motorbike" --text "tabby cat print" --text "rocket launch poster" \
        --timeout 60s --json "$work/$3.json" > "$work/$3.txt" &
    local load_pid=$!
    # If the server dies, stop the load at once (ocular-load still reports what it did).
    while alive_check "$load_pid"; do
        if ! alive_check "$server_pid"; then
            log "the server died; stopping the load"
            kill -TERM "$load_pid"
            break
        fi
        sleep 1
    done
    wait "$load_pid" || true
    cat "$work/$3.txt"
}

loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
if $ready; then
    log "phase 1: $clients clients for ${phase_s}s"
    run_phase "$limit x$clients" "$clients" phase1
    if alive_check "$server_pid"; then
        log "phase 2: $overload clients (3x) for ${phase_s}s"
        run_phase "$limit x$overload" "$overload" phase2
    else
        log "the server died during phase 1; phase 2 skipped"
    fi
fi
loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)
sleep 1
kill "$sampler_pid" 2> /dev/null || true
sampler_pid=""

# ---- what the kernel says -----------------------------------------------------------------
alive=false
alive_check "$server_pid" && alive=true
health_end=$(health)
rss_end=$(rss_of "$server_pid" VmRSS)
hwm_end=$(rss_of "$server_pid" VmHWM)
if [[ $version == 1 ]]; then
    peak=$(cat "$cg/memory.max_usage_in_bytes")
    kernel=$(jq -n --arg failcnt "$(cat "$cg/memory.failcnt")" \
        --arg memsw_failcnt "$(cat "$cg/memory.memsw.failcnt" 2> /dev/null || echo null)" \
        --arg oom "$(tr '\n' ' ' < "$cg/memory.oom_control")" \
        '{failcnt: ($failcnt | tonumber), memsw_failcnt: ($memsw_failcnt | fromjson? // null), oom_control: $oom,
          oom_kill: (($oom | capture("oom_kill (?<n>[0-9]+)").n | tonumber)? // null)}')
else
    peak=$(cat "$cg/memory.peak" 2> /dev/null || echo null)
    kernel=$(awk '{ printf "%s\"%s\": %s", (NR > 1 ? ", " : "{"), $1, $2 } END { print "}" }' "$cg/memory.events" |
        jq '{events: ., oom_kill: .oom_kill}')
fi
[[ -z $rss_end ]] && rss_end=null
[[ -z $hwm_end ]] && hwm_end=null
exit_status=null
if ! $alive; then
    wait "$server_pid" 2> /dev/null && exit_status=0 || exit_status=$?
    server_pid=""
fi
tail -n 200 "$work/serve.log" > "$results/$name.server-log-tail.txt"

samples_json=$(awk -F'\t' 'NF >= 4 && $2 != "" {
        if ($2 > max) max = $2; if ($4 > lmax) lmax = $4; lsum += $4; n++ }
    END { printf "{\"samples\": %d, \"max_usage_bytes\": %d, \"loadavg_1m_mean\": %.2f, \"loadavg_1m_max\": %.2f}", n, max, (n ? lsum / n : 0), lmax }' \
    "$work/samples.tsv")
phase_json() { [[ -s $1 ]] && cat "$1" || echo null; }
jq -n \
    --arg limit "$limit" --argjson limit_bytes "$limit_bytes" --argjson cgroup_version "$version" \
    --arg swap_limited "$swap_limited" --argjson phase_s "$phase_s" --argjson ready "$ready" --argjson alive "$alive" \
    --argjson exit_status "$exit_status" --argjson peak "$peak" --argjson kernel "$kernel" \
    --argjson rss_end "$rss_end" --argjson hwm_end "$hwm_end" --argjson sampled "$samples_json" \
    --argjson health_start "$health_start" --argjson health_end "$health_end" \
    --arg loadavg_start "$loadavg_start" --arg loadavg_end "$loadavg_end" --arg cores "$(nproc)" \
    --arg commit "$(git rev-parse --short HEAD 2> /dev/null || echo unknown)" \
    --argjson dirty "$(git status --porcelain 2> /dev/null | wc -l)" \
    --slurpfile p1 <(phase_json "$work/phase1.json") --slurpfile p2 <(phase_json "$work/phase2.json") '
    def summary: if . == null then null else {
        label: .label, concurrency, requests, status_counts, errors, rate_503, retry_after_on_503, error_codes,
        throughput_rps, ok_throughput_rps, elapsed_s, cancelled,
        p50_ms: .latency_ms.all.p50, p95_ms: .latency_ms.all.p95, p99_ms: .latency_ms.all.p99,
        ok_p50_ms: .latency_ms.ok_2xx.p50, ok_p99_ms: .latency_ms.ok_2xx.p99,
        by_kind: (.by_kind | map_values({requests, status_counts, p50_ms: .latency_ms.all.p50,
            p99_ms: .latency_ms.all.p99, ok_p99_ms: .latency_ms.ok_2xx.p99}))
        } end;
    def unexpected: if . == null then null else
        [.status_counts | to_entries[] | select((.key | startswith("2") | not) and .key != "503")] | from_entries end;
    {commit: $commit, uncommitted_files: $dirty, limit: $limit, limit_bytes: $limit_bytes, cgroup_version: $cgroup_version, swap_limited: $swap_limited,
     phase_seconds: $phase_s, ready: $ready, server_alive_at_end: $alive, server_exit_status: $exit_status,
     peak_usage_bytes: $peak, kernel: $kernel, sampled: $sampled,
     server_rss_end_bytes: $rss_end, server_rss_peak_bytes: $hwm_end,
     health_memory_start: $health_start, health_memory_end: $health_end,
     loadavg_start: $loadavg_start, loadavg_end: $loadavg_end, cores: ($cores | tonumber),
     phases: [($p1[0] | summary), ($p2[0] | summary)],
     unexpected_statuses: [($p1[0] | unexpected), ($p2[0] | unexpected)],
     connection_errors: [($p1[0].errors // null), ($p2[0].errors // null)]}' > "$results/$name.json"

# The markdown table, from the JSON just written.
jq -r '
    def mb: if . == null then "-" else (. / 1048576 | floor | tostring) + " MB" end;
    def ms: if . == null then "-" else (. | floor | tostring) end;
    "### \(.limit) memory cgroup (v\(.cgroup_version)), \(.phase_seconds) s per phase\n",
    "- peak usage (kernel): \(.peak_usage_bytes | mb); sampled max \(.sampled.max_usage_bytes | mb); limit \(.limit_bytes | mb)",
    "- kernel: \(.kernel | tostring)",
    "- server alive at end: \(.server_alive_at_end) (exit status \(.server_exit_status)); RSS at end \(.server_rss_end_bytes | mb), peak RSS \(.server_rss_peak_bytes | mb)",
    "- load average (1 min) during the run: mean \(.sampled.loadavg_1m_mean), max \(.sampled.loadavg_1m_max) on \(.cores) cores",
    "- /health memory at start: `\(.health_memory_start.memory | tostring)`; at end: `\(.health_memory_end.memory | tostring)`\n",
    "| phase | clients | seconds | requests | 2xx | 503 | other | conn. errors | 503 rate | p50 ms | p95 ms | p99 ms | 2xx p99 ms |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    (.phases[] | select(. != null) |
        ([.status_counts | to_entries[] | select(.key | startswith("2")) | .value] | add // 0) as $ok |
        (.status_counts["503"] // 0) as $n503 |
        "| \(.label) | \(.concurrency) | \(.elapsed_s | floor)\(if .cancelled then " (stopped)" else "" end) | \(.requests) | \($ok) | \($n503) | \(.requests - $ok - $n503 - (.errors | add)) | \(.errors | add) | \(.rate_503 * 1000 | floor / 10)% | \(.p50_ms | ms) | \(.p95_ms | ms) | \(.p99_ms | ms) | \(.ok_p99_ms | ms) |"),
    "\n| phase | kind | requests | statuses | p50 ms | p99 ms | 2xx p99 ms |",
    "|---|---|---|---|---|---|---|",
    (.phases[] | select(. != null) | .label as $l | .by_kind | to_entries[] |
        "| \($l) | \(.key) | \(.value.requests) | \(.value.status_counts | to_entries | map("\(.key)=\(.value)") | join(" ")) | \(.value.p50_ms | ms) | \(.value.p99_ms | ms) | \(.value.ok_p99_ms | ms) |")
' "$results/$name.json" > "$results/$name.md"

cat "$results/$name.md"
echo
log "written: $results/$name.json, $results/$name.md (work files in $work)"
