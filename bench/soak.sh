#!/usr/bin/env bash
# Soak test (issue "Reliability"): wrk through a private nginx against lowphp-fpm for a
# long time, with pm.max_requests recycling workers and a SIGUSR2 reload every
# RELOAD_EVERY seconds, then asserts that nothing leaked or broke.
#
# Usage: bash bench/soak.sh                            # 30 minutes, a reload every 60 s
#        DURATION=60 RELOAD_EVERY=15 bash bench/soak.sh  # CI
# Env:   LOWPHP_BIN    binary under test (default build/lowphp-fpm, built if missing)
#        DURATION      seconds of load (default 1800)
#        RELOAD_EVERY  seconds of load between SIGUSR2 reloads (default 60; 0: none)
#        PM=dynamic|static|ondemand (default dynamic), MAX_CHILDREN (6), MAX_REQUESTS (200)
#        THREADS / CONNS  wrk -t / -c (2 / 8), GAP quiet seconds before each sample (3),
#        RSS_TOL       allowed RSS change in % (5), SOAK_KEEP=1 keeps the temp dir
#
# Load: hello, json_encode, a 4 KB multipart upload POST, a 50 ms usleep, sessions (the
# cookie is sent back), a write to stderr (catch_workers_output = yes), and
# fastcgi_finish_request, round robin, each through a kept-alive FastCGI upstream
# (fastcgi_keep_conn on) and a plain fastcgi_pass; wrk's lua hooks count statuses and
# check bodies. The load runs in segments of RELOAD_EVERY seconds with a reload in the
# middle of each; after each segment it pauses GAP seconds and samples RSS and open fds
# of master and zygote, and zombies under the master.
#
# Exits non-zero, listing each failure, on: any wrk socket error, non-2xx response or
# unexpected body; master or zygote RSS changed by more than RSS_TOL % or a different
# open-fd count between the sample after the first reload and the last sample; zombies
# under the master at the end; master pid changed or master died; a reload that did not
# complete; WARNING/ERROR/ALERT lines in the error log other than the expected ones
# (stderr.php's own line "child N said into stderr", and php-fpm's pm advisories
# "server reached pm.max_children setting" / "seems busy", since the pool is saturated on
# purpose); any PHP error, any nginx error; work after fastcgi_finish_request that did
# not run; a SIGQUIT shutdown that does not exit 0 or leaves processes.
#
# Everything runs on 127.0.0.1 and in a temp dir; every process it starts is stopped by
# pid on exit (Ctrl-C and SIGTERM included). The work is in bench/soak.py.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

need=()
for c in nginx wrk python3; do command -v "$c" >/dev/null || need+=("$c"); done
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    source scripts/lib/apt.sh  # waits while another apt holds the lock
    apt_get update -qq
    apt_get install -y -qq "${need[@]}" >/dev/null
fi

if [ -n "${LOWPHP_BIN:-}" ]; then
    [ -x "$LOWPHP_BIN" ] || { echo "soak: LOWPHP_BIN=$LOWPHP_BIN is not executable" >&2; exit 1; }
    bin=$(readlink -f "$LOWPHP_BIN")
else
    [ -x "$repo/build/lowphp-fpm" ] || bash scripts/build.sh >&2
    bin="$repo/build/lowphp-fpm"
fi
[ "$(id -u)" -eq 0 ] || { echo "soak: run as root (nginx and the pool run as root, -R)" >&2; exit 1; }

# soak.py stops everything it started (by pid) and removes its temp dir on exit; this
# trap only passes a signal sent to soak.sh alone on to it and waits for its cleanup.
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
python3 "$repo/bench/soak.py" "$bin" &
py_pid=$!
wait "$py_pid"
