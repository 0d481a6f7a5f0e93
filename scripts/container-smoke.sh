#!/usr/bin/env bash
# Builds the container image here, where no image registry is reachable, and smoke-tests it:
#  1. a Debian bookworm base root filesystem from Debian's packages (mmdebstrap), imported
#     into podman as localhost/ocular-base;
#  2. the Dockerfile's `prebuilt` target on that base, with the host's release binary and
#     models (so no Rust toolchain or model download inside the build);
#  3. the image run with a data volume and an API key, until its HEALTHCHECK command and
#     /health/ready pass; then its size, idle RSS and one real request are recorded.
# Usage: scripts/container-smoke.sh   (as root; installs podman and mmdebstrap if missing)
# Writes bench/out/container-smoke.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
if ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null; then
    apt-get update
    apt-get install -y --no-install-recommends podman mmdebstrap uidmap fuse-overlayfs slirp4netns crun
fi

# Sandboxed hosts: containers may not raise rlimits, and crun refuses a cgroup v2 hierarchy
# that still lists controllers in hybrid mode. Both are host quirks, not the image's.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '[containers]\ndefault_ulimits = []\n' > "$work/containers.conf"
export CONTAINERS_CONF="$work/containers.conf"
if [ -s /sys/fs/cgroup/unified/cgroup.controllers ] && grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers; then
    mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb || true
fi

[ -x target/release/ocular ] || cargo build --release --locked -p ocular
[ -f models/sklesion/manifest.json ] || ./target/release/ocular models fetch --models-dir ./models

if ! podman image exists localhost/ocular-base:bookworm; then
    mmdebstrap --variant=minbase --include=ca-certificates bookworm "$work/base.tar"
    podman import "$work/base.tar" localhost/ocular-base:bookworm
fi

podman build --format docker --target prebuilt \
    --build-arg RUNTIME_BASE=localhost/ocular-base:bookworm -t localhost/ocular:smoke .

podman rm -f ocular-smoke >/dev/null 2>&1 || true
podman volume rm -f ocular-smoke-data >/dev/null 2>&1 || true
port=18080
key="smoke-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
podman run -d --name ocular-smoke -p "127.0.0.1:$port:8000" -v ocular-smoke-data:/data \
    -e OCULAR_API_KEY="$key" localhost/ocular:smoke >/dev/null

ready=""
for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1; then ready=yes; break; fi
    sleep 1
done
if [ -z "$ready" ]; then
    podman logs ocular-smoke | tail -40
    echo "container never became ready" >&2
    exit 1
fi
podman healthcheck run ocular-smoke && health="healthy" || health="unhealthy"
sleep 5
pid="$(podman inspect --format '{{.State.Pid}}' ocular-smoke)"
rss_kb="$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")"
size="$(podman image inspect --format '{{.Size}}' localhost/ocular:smoke)"
user="$(podman exec ocular-smoke id -u)"
search="$(curl -fsS -H "Authorization: Bearer $key" -H 'content-type: application/json' \
    -d '{"query":"espresso"}' "http://127.0.0.1:$port/api/v1/search/text" | head -c 200 || true)"
mkdir -p bench/out
{
    echo "date: $(date -u +%FT%TZ)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
    echo "image: localhost/ocular:smoke, $((size / 1000000)) MB"
    echo "healthcheck: $health; runs as uid $user"
    echo "idle RSS after ready (three models preloaded): $((rss_kb / 1024)) MiB"
    echo "text search on the empty catalog: $search"
} | tee bench/out/container-smoke.txt
podman rm -f ocular-smoke >/dev/null
podman volume rm -f ocular-smoke-data >/dev/null
