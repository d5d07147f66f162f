#!/usr/bin/env bash
# php-src's own FPM test suite (sapi/fpm/tests of PHP 8.2) against an FPM binary.
# Optional: not part of CI nor of scripts/test.sh. Debian 12, as root.
#
#   bash tests/php-src/run.sh [--compare] [BINARY] [tests...]
#
#   BINARY      default build/lowphp-fpm
#   tests       .phpt files or directories, relative to the php-src tree
#               (sapi/fpm/tests/status-basic.phpt) or bare names (status-basic);
#               default the whole sapi/fpm/tests
#   --compare   also run the same tests against /usr/sbin/php-fpm8.2 and list
#               the tests that pass there and fail on BINARY; exit 1 if any
#
# Environment:
#   PHPSRC_CACHE   where the tests are kept (default /var/cache/lowphp/php-src as
#                  root, ~/.cache/lowphp/php-src otherwise); fetched once
#   PHPSRC_OUT     results directory (default build/php-src-tests, with
#                  RUN_AS_NOBODY=1 /tmp/lowphp-php-src-tests-nobody)
#   WATCHDOG_SECS  SIGKILL a master of this run older than this (default 60)
#   RUN_AS_NOBODY=1  run as uid/gid 65534: the 7 tests that skip themselves as root
#   HEAVY=1        also the resource-heavy tests (skipped by default)
#
# How: the tests come from Debian's php8.2 source package (the PHP release
# tarball), fetched with `apt-get source --download-only` under a private apt
# configuration (deb-src entries derived from this machine's Debian mirror; the
# system's apt configuration is not touched); only run-tests.php, sapi/fpm/tests
# and the browscap.ini one test reads are extracted. Each run gets its own tree (bin/php ->
# php8.2, sbin/php-fpm -> BINARY: tester.inc finds the FPM binary as
# dirname(dirname(TEST_PHP_EXECUTABLE))/sbin/php-fpm), an empty php.ini through
# PHPRC (PHP's built-in defaults as php-src's CI; Debian's fpm php.ini sets
# expose_php = Off which fails most tests even on php-fpm8.2), and its own
# network namespace (`unshare --net`: the tests use fixed ports 9008, 9009...).
# A watchdog SIGKILLs, by pid, masters of this run (processes in this run's
# network namespace) that outlive WATCHDOG_SECS: a master that ignores the
# tester's SIGTERM makes tester.inc's shutdown function loop forever.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
COMPARE=0
ARGS=()
for a in "$@"; do
  case "$a" in
    --compare) COMPARE=1 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ARGS+=("$a") ;;
  esac
done
set -- "${ARGS[@]+"${ARGS[@]}"}"
BIN=build/lowphp-fpm
if [ $# -gt 0 ] && [[ "$1" != *.phpt ]] && [ -f "$1" ]; then BIN=$1; shift; fi
[[ "$BIN" = /* ]] || BIN="$REPO/$BIN"
[ -x "$BIN" ] || { echo "php-src tests: not an executable: $BIN (build it with bash scripts/build.sh)" >&2; exit 2; }
BIN=$(readlink -f "$BIN")
[ "$(id -u)" -eq 0 ] || { echo "php-src tests: run as root (unshare --net, tests as root with -R)" >&2; exit 2; }
REF=/usr/sbin/php-fpm8.2

# ---- (a) what the runner needs, installed only when missing ---------------------------------
need=(php8.2-cli iproute2 util-linux procps xz-utils dpkg-dev ca-certificates acl)
[ $COMPARE = 1 ] && need+=(php8.2-fpm)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "php-src tests: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  source "$REPO/scripts/lib/apt.sh"  # waits while another apt holds the lock
  apt_get update -qq && apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { echo "php-src tests: apt-get install failed" >&2; exit 2; }
fi

# ---- (b) php-src's tests, fetched once into the cache ---------------------------------------
CACHE=${PHPSRC_CACHE:-/var/cache/lowphp/php-src}
[ "$(id -u)" -eq 0 ] || CACHE=${PHPSRC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lowphp/php-src}
SRC=$CACHE/current
BROWSCAP=ext/standard/tests/misc/browscap.ini   # gh12621.phpt reads it as ../../../$BROWSCAP

# deb-src entries for this machine's Debian mirror: every enabled deb entry (one-line
# .list or deb822 .sources) whose suite is this release's codename or codename-*,
# turned into deb-src with the same URI, components and options (Signed-By...).
derive_sources() {  # $1 = output directory (a private sources.list.d)
  local out=$1 codename f n=0
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v cn="$codename" '
      /^[ \t]*deb(-src)?[ \t]/ {
        line = $0; sub(/^[ \t]*deb(-src)?[ \t]+/, "", line)
        opts = ""
        if (line ~ /^\[/) { opts = substr(line, 1, index(line, "]")); line = substr(line, index(line, "]") + 1); sub(/^[ \t]+/, "", line) }
        split(line, w, /[ \t]+/)
        if (w[2] ~ ("^" cn "([-/].*)?$")) print "deb-src " (opts != "" ? opts " " : "") line
      }' "$f" | awk '!seen[$0]++' > "$out/$n.list"
    n=$((n + 1))
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v cn="$codename" '
      function flush(   i, k, s, keep) {
        if (nl == 0) return
        if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled !~ /^[ \t]*no[ \t]*$/) {
          s = ""; k = split(suites, a, /[ \t]+/)
          for (i = 1; i <= k; i++) if (a[i] ~ ("^" cn "([-/].*)?$")) s = s " " a[i]
          if (s != "") {
            for (i = 1; i <= nl; i++) {
              if (L[i] ~ /^Types:/) print "Types: deb-src"
              else if (L[i] ~ /^Suites:/) print "Suites:" s
              else print L[i]
            }
            print ""
          }
        }
        nl = 0; types = ""; suites = ""; enabled = ""
      }
      /^#/ { next }
      /^[ \t]*$/ { flush(); next }
      { L[++nl] = $0
        if ($0 ~ /^Types:/)   { types = $0;   sub(/^Types:/, "", types) }
        if ($0 ~ /^Suites:/)  { suites = $0;  sub(/^Suites:[ \t]*/, "", suites) }
        if ($0 ~ /^Enabled:/) { enabled = $0; sub(/^Enabled:/, "", enabled) } }
      END { flush() }' "$f" > "$out/$n.sources"
    n=$((n + 1))
  done
  if ! cat "$out"/* 2>/dev/null | grep -q .; then
    echo "php-src tests: no Debian $codename entry in /etc/apt/sources.list*, using deb.debian.org" >&2
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb-src\nURIs: http://deb.debian.org/debian-security\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$codename" "$codename" "$codename" > "$out/fallback.sources"
  fi
}

fetch_tests() {
  local T O v dsc orig top ok=0
  T=$(mktemp -d /tmp/lowphp-phpsrc-apt.XXXXXX)
  mkdir -p "$T/sources.list.d" "$T/lists/partial" "$T/cache/archives/partial" "$T/dl"
  derive_sources "$T/sources.list.d"
  echo "php-src tests: fetching Debian's php8.2 source package (private apt config in $T):"
  cat "$T"/sources.list.d/* | sed 's/^/    /'
  # Everything apt reads or writes besides the keyrings is in $T.
  O=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$T/sources.list.d"
     -o Dir::State::Lists="$T/lists" -o Dir::Cache="$T/cache" -o Debug::NoLocking=1
     -o APT::Sandbox::User=root -o Acquire::Languages=none)
  apt-get "${O[@]}" -qq update || { echo "php-src tests: apt-get update (private config) failed" >&2; rm -rf "$T"; return 1; }
  # Newest version first; a security mirror may list a version whose files it lacks (404).
  for v in $(apt-cache "${O[@]}" showsrc php8.2 | sed -n 's/^Version: //p' | sort -u | sort -rV); do
    rm -f "$T"/dl/*
    if (cd "$T/dl" && apt-get "${O[@]}" -qq source --download-only "php8.2=$v" >/dev/null 2>"$T/err"); then ok=1; break; fi
    echo "php-src tests: php8.2 $v not downloadable: $(grep -m1 'E:' "$T/err")" >&2
  done
  [ $ok = 1 ] || { echo "php-src tests: could not download php8.2's source" >&2; rm -rf "$T"; return 1; }
  dsc=$(ls "$T"/dl/*.dsc); orig=$(ls "$T"/dl/php8.2_*.orig.tar.* | grep -v '\.asc$' | head -1)
  top=$(tar tf "$orig" | head -1 | cut -d/ -f1)                 # php-8.2.NN
  mkdir -p "$CACHE"; rm -rf "${CACHE:?}/$top.tmp"; mkdir "$CACHE/$top.tmp"
  tar xf "$orig" -C "$CACHE/$top.tmp" --strip-components=1 "$top/run-tests.php" "$top/sapi/fpm/tests" \
      "$top/$BROWSCAP" \
    || { echo "php-src tests: extracting $orig failed" >&2; rm -rf "$T" "$CACHE/$top.tmp"; return 1; }
  cp "$dsc" "$CACHE/$top.tmp/"
  echo "$v" > "$CACHE/$top.tmp/DEBIAN_VERSION"
  rm -rf "${CACHE:?}/$top"; mv "$CACHE/$top.tmp" "$CACHE/$top"; ln -sfn "$top" "$SRC"
  rm -rf "$T"
  echo "php-src tests: $CACHE/$top ($(ls "$SRC"/sapi/fpm/tests/*.phpt | wc -l) tests, Debian php8.2 $v)"
}
if [ ! -f "$SRC/run-tests.php" ] || [ ! -d "$SRC/sapi/fpm/tests" ] || [ ! -f "$SRC/$BROWSCAP" ]; then
  fetch_tests || exit 2
fi
SRCVER=$(cat "$SRC/DEBIAN_VERSION" 2>/dev/null || echo '?')

# ---- (c) one run of the suite against one binary --------------------------------------------
OUT=${PHPSRC_OUT:-$REPO/build/php-src-tests}
# uid 65534 must be able to reach the run tree: under /tmp unless told otherwise.
[ "${RUN_AS_NOBODY:-0}" = 1 ] && OUT=${PHPSRC_OUT:-/tmp/lowphp-php-src-tests-nobody}
[[ "$OUT" = /* ]] || OUT="$PWD/$OUT"
mkdir -p "$OUT/ini"
cat > "$OUT/ini/php.ini" <<'EOF'
; Empty on purpose (PHPRC points here): PHP's built-in defaults, as php-src's CI runs
; php-fpm. Extensions still come from PHP_INI_SCAN_DIR (/etc/php/8.2/fpm/conf.d).
EOF
TESTS=()
for t in "$@"; do
  if [ -e "$SRC/$t" ]; then TESTS+=("$t")
  elif [ -e "$SRC/sapi/fpm/tests/$t" ]; then TESTS+=("sapi/fpm/tests/$t")
  elif [ -e "$SRC/sapi/fpm/tests/$t.phpt" ]; then TESTS+=("sapi/fpm/tests/$t.phpt")
  else echo "php-src tests: no such test: $t" >&2; exit 2; fi
done
[ ${#TESTS[@]} -eq 0 ] && TESTS=(sapi/fpm/tests)

RT=""; NETNS=""
in_our_netns() {  # pids of processes in this run's network namespace
  local d
  [ -n "$NETNS" ] || return 0
  for d in /proc/[0-9]*; do
    [ "$(readlink "$d/ns/net" 2>/dev/null)" = "$NETNS" ] && echo "${d#/proc/}"
  done
}
cleanup() {  # on interrupt: this run's run-tests and whatever is left in its namespace
  [ -n "$RT" ] && kill "$RT" 2>/dev/null
  for p in $(in_our_netns); do kill -9 "$p" 2>/dev/null; done
  exit 130
}
trap cleanup INT TERM

run_suite() {  # $1 = binary, $2 = run name; results in $OUT/$2
  local bin=$1 name=$2 D p c et wd=${WATCHDOG_SECS:-60}
  D=$OUT/$name
  rm -rf "$D"; mkdir -p "$D/bin" "$D/sbin" "$D/sapi/fpm"
  cp -a "$SRC/sapi/fpm/tests" "$D/sapi/fpm/"
  cp "$SRC/run-tests.php" "$D/"                       # writes run-test-info.php next to itself
  mkdir -p "$D/$(dirname "$BROWSCAP")"; cp "$SRC/$BROWSCAP" "$D/$BROWSCAP"
  ln -s /usr/bin/php8.2 "$D/bin/php"
  ln -s "$bin" "$D/sbin/php-fpm"
  ln -s "$bin" "$D/sapi/fpm/php-fpm"
  local as=""
  (
    cd "$D" || exit 2
    export TEST_PHP_EXECUTABLE="$D/bin/php" NO_INTERACTION=1 REPORT_EXIT_STATUS=0 PHPRC="$OUT/ini"
    export TEST_FPM_RUN_AS_ROOT=1                      # tester.inc then adds --allow-to-run-as-root
    if [ "${HEAVY:-0}" = 1 ]; then export RUN_RESOURCE_HEAVY_TESTS=1 FPM_RUN_RESOURCE_HEAVY_TESTS=1; fi
    if [ "${RUN_AS_NOBODY:-0}" = 1 ]; then
      unset TEST_FPM_RUN_AS_ROOT; chown -R 65534:65534 "$D"
      as="setpriv --reuid=65534 --regid=65534 --clear-groups"
    fi
    export AS="$as" NETNS_FILE="$D/netns"
    exec unshare --net bash -c '
      ip link set lo up || exit 2
      readlink /proc/self/ns/net > "$NETNS_FILE"
      exec $AS /usr/bin/php8.2 "$PWD/run-tests.php" -p "$TEST_PHP_EXECUTABLE" -q --no-color --set-timeout 120 "$@"
    ' run "${TESTS[@]}"
  ) > "$D/run-tests.out" 2>&1 &
  RT=$!
  for _ in $(seq 50); do [ -s "$D/netns" ] && break; sleep 0.1; done
  NETNS=$(cat "$D/netns" 2>/dev/null)
  [ "$NETNS" = "$(readlink /proc/self/ns/net)" ] && NETNS=""   # never the host's namespace
  # Watchdog: only processes in this run's own network namespace can be this run's.
  while kill -0 "$RT" 2>/dev/null; do
    for p in $(in_our_netns); do
      c=$(tr '\0' ' ' 2>/dev/null < "/proc/$p/cmdline") || continue
      case "$c" in *"master process ("*) ;; *) continue ;; esac
      et=$(ps -o etimes= -p "$p" 2>/dev/null | tr -d ' ')
      if [ -n "$et" ] && [ "$et" -gt "$wd" ]; then
        echo "$(date -u +%T) SIGKILL $p after ${et}s: $c" >> "$D/watchdog.log"; kill -9 "$p" 2>/dev/null
      fi
    done
    sleep 2
  done
  wait "$RT"
  for p in $(in_our_netns); do                         # anything of this run still alive
    echo "$(date -u +%T) left over after the run, SIGKILL $p: $(tr '\0' ' ' 2>/dev/null < "/proc/$p/cmdline")" >> "$D/watchdog.log"
    kill -9 "$p" 2>/dev/null
  done
  RT=""; NETNS=""
  # One "STATUS path" line per test, the last verdict of each (run-tests may retry one).
  grep -oE '(PASS|FAIL|SKIP|XFAIL|XPASS|BORK|LEAK|WARN|LEAK&FAIL) .*\[[^]]*\.phpt\]' "$D/run-tests.out" \
    | sed -E 's/^([A-Z&]+) .*\[([^]]*\.phpt)\]$/\1 \2/' \
    | awk '{ s[$2] = $1; if (!($2 in o)) o[$2] = ++n } END { for (t in s) print o[t], s[t], t }' \
    | sort -n | cut -d' ' -f2- > "$D/results.txt"
}

is_failure() { case "$1" in PASS|SKIP|XFAIL) return 1 ;; *) return 0 ;; esac; }

reason() {  # first line that says why a test failed
  local D=$1 t=$2 base r
  base=$D/${t%.phpt}
  r=$(grep -m1 -E 'ERROR|Fatal|EXCEPTION|timed out|not found|Warning' "$base.out" 2>/dev/null)
  [ -z "$r" ] && r=$(grep -m1 -E '^[0-9]+[+-] ' "$base.diff" 2>/dev/null)
  printf '%s' "${r:0:150}"
}

summary() {  # $1 = run name, $2 = label
  local D=$OUT/$1
  printf '%s: %s\n' "$2" "$(awk '{ c[$1]++ } END { for (s in c) printf "%s %d  ", s, c[s] }' "$D/results.txt" | tr -s ' ' | sed 's/ $//')"
}

# ---- (d) run, summary --------------------------------------------------------------------------
echo "php-src tests: PHP $(basename "$(readlink -f "$SRC")") (Debian $SRCVER), ${TESTS[*]}"
echo "php-src tests: $BIN ... (results in $OUT/binary)"
run_suite "$BIN" binary
if [ $COMPARE = 1 ]; then
  [ -x "$REF" ] || { echo "php-src tests: $REF missing" >&2; exit 2; }
  echo "php-src tests: $REF ... (results in $OUT/php-fpm8.2)"
  run_suite "$REF" php-fpm8.2
fi

echo
echo "== php-src FPM tests ($(basename "$(readlink -f "$SRC")"), $(wc -l < "$OUT/binary/results.txt") tests) =="
summary binary "$BIN"
[ -s "$OUT/binary/watchdog.log" ] && echo "  watchdog: $(wc -l < "$OUT/binary/watchdog.log") SIGKILL(s), see $OUT/binary/watchdog.log"
rc=0
if [ $COMPARE = 0 ]; then
  echo "failures:"
  while read -r s t; do
    is_failure "$s" || continue
    rc=1; printf '  %-5s %s  %s\n' "$s" "$(basename "$t" .phpt)" "$(reason "$OUT/binary" "$t")"
  done < "$OUT/binary/results.txt"
  [ $rc = 0 ] && echo "  none"
else
  summary php-fpm8.2 "$REF"
  [ -s "$OUT/php-fpm8.2/watchdog.log" ] && echo "  watchdog: see $OUT/php-fpm8.2/watchdog.log"
  join <(sort -k2 "$OUT/binary/results.txt" | awk '{print $2, $1}') \
       <(sort -k2 "$OUT/php-fpm8.2/results.txt" | awk '{print $2, $1}') > "$OUT/compare.txt"   # test bin ref
  regr=()
  while read -r t b r; do
    [ "$r" = PASS ] && is_failure "$b" && regr+=("$b $t")
  done < "$OUT/compare.txt"
  echo
  echo "pass on php-fpm8.2, fail on the binary: ${#regr[@]}"
  for x in "${regr[@]+"${regr[@]}"}"; do
    rc=1; printf '  %-5s %s  %s\n' "${x%% *}" "$(basename "${x#* }" .phpt)" "$(reason "$OUT/binary" "${x#* }")"
  done
  echo "other failures on the binary (fail on php-fpm8.2 too, or php-fpm8.2 skips them):"
  k=0
  while read -r t b r; do
    [ "$r" != PASS ] && is_failure "$b" || continue
    k=1; printf '  %-5s %s  (php-fpm8.2: %s)\n' "$b" "$(basename "$t" .phpt)" "$r"
  done < "$OUT/compare.txt"
  [ $k = 0 ] && echo "  none"
  echo "fail on php-fpm8.2, pass on the binary:"
  k=0
  while read -r t b r; do
    [ "$b" = PASS ] && is_failure "$r" || continue
    k=1; printf '  %-5s %s\n' "$r" "$(basename "$t" .phpt)"
  done < "$OUT/compare.txt"
  [ $k = 0 ] && echo "  none"
fi
echo "per-test results: $OUT/binary/results.txt; .diff/.out/.log of each failure next to its .phpt under $OUT/binary/sapi/fpm/tests/"
exit $rc
