#!/usr/bin/env bash
# Side-by-side benchmark: lowphp-fpm vs php8.2-fpm behind one nginx, loaded with wrk.
#
# Usage: bash bench/run.sh [--quick]
#   (default) 3 interleaved runs x 10 s per cell; writes bench/results/latest.md (+ -raw.txt)
#   --quick   1 run x 2 s per cell (CI smoke); also asserts that every backend answers every
#             script correctly (never timing), exits non-zero if not; writes bench/results/quick.md
# Env: LOWPHP_BIN=/path/to/lowphp-fpm (default build/lowphp-fpm, built if missing)
#      SCRIPTS="hello bootstrap", MODES="keep-alive" or "no keep-alive": a subset of the cells
#        (scripts: hello json bootstrap bootstrap-worker upload slow; bootstrap-worker is
#        php-fpm's classic bootstrap.php against a lowphp worker-mode pool)
#      DUR=seconds per wrk run, RUNS=runs per cell (override either mode's defaults)
#      WORKER_MEMORY=100000: also send that many requests to a fresh worker-mode pool and
#        report each worker's RSS at start (after WORKER_MEMORY_WARMUP=1000) and end
#        (and after each of WORKER_MEMORY_STEPS=10 steps)
# The work (fixtures, processes, measuring, report) is in bench/bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

install_deps() {
    # Idempotent: only asks apt for what is missing. Debian's packages may start their
    # own system services (nginx, php8.2-fpm); those are not ours and are left alone.
    local need=()
    command -v nginx >/dev/null || need+=(nginx)
    command -v php-fpm8.2 >/dev/null || need+=(php8.2-fpm)
    [ -e /etc/php/8.2/mods-available/opcache.ini ] || need+=(php8.2-opcache)
    command -v wrk >/dev/null || need+=(wrk)
    command -v python3 >/dev/null || need+=(python3)
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

# bench.py stops everything it started (by pid) and removes its temp dir on exit,
# SIGINT/SIGTERM/SIGHUP included. This trap only makes sure bench.py itself gets the
# signal when run.sh is signalled alone, then waits for its cleanup to finish.
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
python3 "$repo/bench/bench.py" --bin "$bin" "$@" &
py_pid=$!
wait "$py_pid"
