#!/usr/bin/env bash
# Benchmark lowphp-fpm against php8.2-fpm behind one nginx.
# Usage: bash bench/run.sh [--quick]
#   --quick: 1 run x 2s per row, and asserts every backend x script answers correctly.
# Env: LOWPHP_BIN=/path/to/lowphp-fpm (default build/lowphp-fpm, built if missing),
#      DUR=8 (seconds per wrk run, full mode), RUNS=3.
# Writes bench/results/latest.md (full mode) or bench/results/quick.md (--quick).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

need=()
command -v nginx >/dev/null || need+=(nginx)
command -v php-fpm8.2 >/dev/null || need+=(php8.2-fpm)
[ -e /etc/php/8.2/mods-available/opcache.ini ] || need+=(php8.2-opcache)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}"
fi
# Debian's packages may start system services; they are not ours, leave them be.

bin=${LOWPHP_BIN:-$repo/build/lowphp-fpm}
if [ ! -x "$bin" ]; then
    if [ -n "${LOWPHP_BIN:-}" ]; then echo "LOWPHP_BIN=$bin is not executable" >&2; exit 1; fi
    bash scripts/build.sh
fi

py_pid=
cleanup() {
    local rc=$?
    if [ -n "$py_pid" ] && kill -0 "$py_pid" 2>/dev/null; then
        kill -TERM "$py_pid" 2>/dev/null || true
        wait "$py_pid" 2>/dev/null || true
    fi
    exit $rc
}
trap cleanup EXIT INT TERM ERR
python3 "$repo/bench/bench.py" --bin "$bin" "$@" &
py_pid=$!
wait "$py_pid"
