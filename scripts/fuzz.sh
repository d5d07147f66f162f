#!/usr/bin/env bash
# Coverage-guided fuzzing of the pure modules with libFuzzer, ASan and UBSan
# (clang 14, Debian 12): builds tests/fuzz/ into build-fuzz/, replays the saved
# reproducers of tests/fuzz/regressions/<name>/, then fuzzes each harness for
# SECONDS_PER_TARGET (default 20) on a copy of tests/fuzz/corpus/<name>/ (the
# repository is not written to). Exits 1 on any crash, leak, timeout or
# out-of-memory, printing the reproducer's path.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]
#   FUZZ_TARGETS="config connection" bash scripts/fuzz.sh 3600   # some harnesses only
#
# A reproducer replays with: build-fuzz/fuzz_<name> <file>
# Needs (Debian 12): clang libclang-rt-14-dev llvm-14 (llvm-symbolizer), plus
# cmake and make; installed here when missing and run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-20}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
  echo "usage: $0 [SECONDS_PER_TARGET]" >&2
  exit 2
fi

if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a \
    >/dev/null 2>&1 || ! command -v llvm-symbolizer-14 >/dev/null; then
  packages=(clang libclang-rt-14-dev llvm-14 cmake make)
  if [ "$(id -u)" -ne 0 ]; then
    echo "fuzz.sh: needs ${packages[*]} (apt-get install --no-install-recommends ${packages[*]})" >&2
    exit 2
  fi
  echo "fuzz.sh: installing ${packages[*]}"
  source "$root/scripts/lib/apt.sh"  # waits while another apt holds the lock
  apt_get update -qq
  DEBIAN_FRONTEND=noninteractive apt_get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

build=$root/build-fuzz
cmake -S tests/fuzz -B "$build" -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build "$build" -j"$(nproc)" >"$build/build.log" 2>&1 || {
  tail -50 "$build/build.log"
  echo "fuzz.sh: build failed (full log: $build/build.log)" >&2
  exit 1
}

# The environment of a test suite (detect_leaks=0, handle_segv=0) must not leak in.
export ASAN_OPTIONS=detect_leaks=1:handle_segv=1:handle_abort=1:allocator_may_return_null=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
common=(-timeout=10 -rss_limit_mb=2048)

mapfile -t harnesses <"$build/harnesses.txt"
if [ -n "${FUZZ_TARGETS:-}" ]; then read -r -a harnesses <<<"$FUZZ_TARGETS"; fi

# The sanitizer's verdict and the top of the stack, from a libFuzzer log.
explain() {
  grep -E "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY:|ALARM|out-of-memory" "$1" |
    head -5 | sed 's/^/    /'
  grep -E "^ +#[0-9]+ " "$1" | grep -v -E "libFuzzer|fuzzer::|__sanitizer|__asan|__ubsan|libc.so|_start" |
    head -6 | sed 's/^/    /'
}

failed=0
summary=()
for name in "${harnesses[@]}"; do
  bin=$build/fuzz_$name
  [ -x "$bin" ] || { echo "fuzz.sh: no harness '$name'" >&2; failed=1; continue; }
  run=$build/runs/$name
  rm -rf "$run"
  mkdir -p "$run/corpus" "$run/artifacts"
  [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$run/corpus/"
  opts=("${common[@]}" -artifact_prefix="$run/artifacts/")
  [ -e "tests/fuzz/$name.dict" ] && opts+=(-dict="$root/tests/fuzz/$name.dict")

  # Saved reproducers first: each must now pass.
  regressions=()
  if [ -d "tests/fuzz/regressions/$name" ]; then
    mapfile -t regressions < <(find "tests/fuzz/regressions/$name" -type f ! -name '*.md' | sort)
  fi
  result=ok
  for f in "${regressions[@]}"; do
    if ! "$bin" "${opts[@]}" "$f" >"$run/regression.log" 2>&1; then
      echo "FAIL $name: saved reproducer still fails: $f"
      explain "$run/regression.log"
      result="regression fails"
      failed=1
    fi
  done

  echo "== $name: ${secs}s"
  rc=0
  "$bin" "${opts[@]}" -max_total_time="$secs" -print_final_stats=1 "$run/corpus" >"$run/fuzz.log" 2>&1 || rc=$?
  stats=$(grep -E "^#[0-9]+" "$run/fuzz.log" | grep "cov:" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run/fuzz.log")
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$stats")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$stats")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$stats")
  mapfile -t found < <(find "$run/artifacts" -type f | sort)
  if [ "$rc" -ne 0 ] || [ "${#found[@]}" -gt 0 ]; then
    failed=1
    result="FAILED (exit $rc)"
    echo "FAIL $name (exit $rc), log: $run/fuzz.log"
    explain "$run/fuzz.log"
    for f in "${found[@]}"; do
      echo "    reproducer: $f    (replay: $bin $f)"
    done
  fi
  summary+=("$(printf '%-16s execs %-10s cov %-6s ft %-7s corpus %-6s %s' "$name" "${execs:-?}" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result")")
done

echo
echo "fuzz.sh: ${secs}s per target"
printf '  %s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
  echo "fuzz.sh: FAILED (save a reproducer under tests/fuzz/regressions/<name>/ once it is understood)"
  exit 1
fi
echo "fuzz.sh: all targets passed"
