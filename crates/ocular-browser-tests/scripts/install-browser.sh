#!/usr/bin/env bash
# Installs the browser the end-to-end tests drive: Debian's chromium and its chromedriver.
# Idempotent and cheap when they are already there, so CI may call it on every run.
# Usage: crates/ocular-browser-tests/scripts/install-browser.sh   (as root, or with sudo)
set -euo pipefail

if [ -x /usr/bin/chromedriver ] && [ -x /usr/bin/chromium ]; then
    echo "chromium and chromedriver already installed: $(/usr/bin/chromedriver --version)"
    exit 0
fi

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then
    sudo_cmd="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update
$sudo_cmd apt-get install -y --no-install-recommends chromium chromium-driver
echo "installed: $(/usr/bin/chromedriver --version)"
