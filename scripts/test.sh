#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs unit, integration
# and compat tests on the normal build (with the .deb checks), installs the .deb
# into a clean Debian 12 chroot, then runs the tests again on the ASan+UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
(cd build && ctest --output-on-failure)
# The fuzzers (libFuzzer, ASan+UBSan), 20 s each over their corpora; saved
# reproducers replay first. Long runs: bash scripts/fuzz.sh 3600
bash scripts/fuzz.sh 20
# The benchmark's smoke run: both backends answer every bench script correctly
# behind the same nginx (asserts answers, never timings).
LOWPHP_BIN="$PWD/build/lowphp-fpm" DUR=1 BENCH_OUT="$PWD/build/bench-smoke.md" bash bench/run.sh --quick
# One minute of the soak (wrk through nginx, pm.max_requests recycling, a reload
# every 15 s): no error, master and zygote RSS and fds flat, no zombie.
# The long run: bash bench/soak.sh (30 minutes, a reload every minute).
DURATION=60 RELOAD_EVERY=15 LOWPHP_BIN="$PWD/build/lowphp-fpm" bash bench/soak.sh
# The .deb installed into a clean debootstrap Debian 12 root (needs deb.debian.org).
bash packaging/test-install-chroot.sh
bash scripts/build.sh --sanitize
# PHP keeps persistent allocations until exit by design: leak reports would be noise.
# handle_segv=0: the crash tests kill workers with SIGSEGV on purpose; the master must see the signal itself.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:handle_segv=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure)
