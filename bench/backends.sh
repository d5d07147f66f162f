#!/usr/bin/env bash
# Per-site backends side by side: php8.2-fpm (PDO, phpredis) vs lowphp-fpm
# (LowPHP\pgsql()/mysql()/redis()) behind one nginx, loaded with wrk, against real
# PostgreSQL 15, MariaDB and Redis servers started on loopback in temp dirs.
#
# Usage: bash bench/backends.sh [--quick]
#   (default) 3 interleaved runs x 10 s per variant (~6 min); writes bench/results/backends.md (+ -raw.txt)
#   --quick   1 run x 2 s per variant (CI smoke, ~1 min); exits non-zero if the two sides answer a
#             request with different JSON; writes bench/results/backends-quick.md
#   --cells pg-select,aggregate,pdo-reuse,mysqli-reuse   only these cells (set BENCH_OUT too, so the
#             full report is not overwritten)
# Env: LOWPHP_BIN=/path/to/lowphp-fpm (default build/lowphp-fpm, built if missing)
#      DUR=seconds per wrk run, RUNS=runs per variant, QUIET_WAIT=seconds at most to wait
#      before each run for other load to go away (full mode, default 30), BENCH_OUT=report path
# The work (servers, fixtures, processes, measuring, report) is in bench/backends.py.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

install_deps() {
    # Idempotent: only asks apt for what is missing. Debian's packages may start their
    # own system services (nginx, php8.2-fpm, the database servers); those are not ours
    # and are left alone: the benchmark starts its own servers on free ports.
    local need=()
    command -v nginx >/dev/null || need+=(nginx)
    command -v php-fpm8.2 >/dev/null || need+=(php8.2-fpm)
    command -v wrk >/dev/null || need+=(wrk)
    command -v python3 >/dev/null || need+=(python3)
    [ -e /etc/php/8.2/mods-available/opcache.ini ] || need+=(php8.2-opcache)
    [ -e /etc/php/8.2/mods-available/pdo_pgsql.ini ] || need+=(php8.2-pgsql)
    [ -e /etc/php/8.2/mods-available/pdo_mysql.ini ] || need+=(php8.2-mysql)
    [ -e /etc/php/8.2/mods-available/redis.ini ] || need+=(php8.2-redis)
    [ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
    [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
    [ -x /usr/bin/mariadb ] || need+=(mariadb-client)
    [ -x /usr/bin/redis-server ] || need+=(redis-server)
    if [ ${#need[@]} -gt 0 ]; then
        echo "installing: ${need[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        source scripts/lib/apt.sh  # (cwd: the repo) waits while another apt holds the lock
        apt_get update -qq
        apt_get install -y -qq "${need[@]}" >/dev/null
    fi
}

lowphp_bin() {
    if [ -n "${LOWPHP_BIN:-}" ]; then
        [ -x "$LOWPHP_BIN" ] || { echo "LOWPHP_BIN=$LOWPHP_BIN is not executable" >&2; exit 1; }
        echo "$LOWPHP_BIN"
        return
    fi
    [ -x "$repo/build/lowphp-fpm" ] || bash scripts/build.sh >&2
    echo "$repo/build/lowphp-fpm"
}

install_deps
bin=$(lowphp_bin)

# backends.py stops everything it started (by pid) and removes its temp dirs on exit,
# SIGINT/SIGTERM/SIGHUP included. This trap only makes sure backends.py itself gets the
# signal when this script is signalled alone, then waits for its cleanup to finish.
py_pid=
forward() {
    trap - INT TERM HUP
    if [ -n "$py_pid" ] && kill -0 "$py_pid" 2>/dev/null; then
        kill -TERM "$py_pid" 2>/dev/null || true
        wait "$py_pid" 2>/dev/null || true
    fi
    exit 130
}
trap forward INT TERM HUP
python3 "$repo/bench/backends.py" --bin "$bin" "$@" &
py_pid=$!
wait "$py_pid"
