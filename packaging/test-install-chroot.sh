#!/usr/bin/env bash
# Installs the .deb into a clean Debian 12 root made by debootstrap from
# Debian's mirror (minbase, plus bookworm-updates and bookworm-security as a
# real Debian 12 has them), then checks what a newcomer would do:
#   - apt install ./lowphp-fpm_*.deb pulls every library it needs (ldd: nothing
#     missing) and its postinst does nothing harmful without systemd running
#     (no process started, exit 0);
#   - lowphp-fpm -t passes on the installed default configuration;
#   - the man pages render (man --warnings -l: no warning) and man finds them;
#   - systemd-analyze verify accepts the installed unit;
#   - the default pool serves PHP behind nginx with the README's
#     fastcgi_pass unix:/run/lowphp/lowphp-fpm.sock; snippet;
#   - booted with systemd (systemd-nspawn): the enabled unit is active after
#     boot, serves behind nginx with its hardening, `systemctl reload` keeps
#     the pid, `systemctl stop` is graceful;
#   - reinstall (upgrade path) and purge work, purge removes /etc/lowphp.
# Usage (root): bash packaging/test-install-chroot.sh [path/to/lowphp-fpm_*.deb]
# Without a .deb it builds one with packaging/build-deb.sh. Takes a few minutes
# (debootstrap downloads ~40 MB). LOWPHP_DEBIAN_MIRROR overrides the mirror;
# LOWPHP_CHROOT_KEEP=1 keeps the root for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
mirror=${LOWPHP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${LOWPHP_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
[ "$(id -u)" -eq 0 ] || { echo "needs root (debootstrap, chroot)" >&2; exit 1; }
for tool in debootstrap systemd-nspawn nsenter curl; do
    command -v $tool >/dev/null || { echo "$tool missing: bash scripts/install-deps.sh" >&2; exit 1; }
done

deb=${1:-}
if [ -z "$deb" ]; then
    deb=$(bash packaging/build-deb.sh | tail -1)
fi
deb=$(readlink -f "$deb")
[ -f "$deb" ] || { echo "no .deb at $deb" >&2; exit 1; }

work=$(mktemp -d /tmp/lowphp-chroot.XXXXXX)
root="$work/root"
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "PASS $*"; }
nspawn_pid=""
cleanup() {
    set +e
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        kill -TERM "$nspawn_pid"
        for _ in $(seq 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$nspawn_pid" 2>/dev/null
    fi
    for pidfile in "$root/run/lowphp/lowphp-fpm.pid" "$root/run/nginx.pid"; do
        [ -s "$pidfile" ] && kill -QUIT "$(cat "$pidfile")" 2>/dev/null
    done
    sleep 1
    for m in "$root/proc" "$root/dev/pts" "$root/dev"; do
        mountpoint -q "$m" && umount -l "$m"
    done
    if [ "${LOWPHP_CHROOT_KEEP:-}" = 1 ]; then echo "kept $root"; else rm -rf "$work"; fi
}
trap cleanup EXIT
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"; }

t0=$(date +%s)
echo "debootstrap bookworm from $mirror ..."
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -30 "$work/debootstrap.log" >&2; fail "debootstrap could not build a Debian 12 root from $mirror"; }
# Files written into the root are removed first: a symlink there (absolute,
# meant for inside the chroot) would otherwise be followed to the host's file.
rm -f "$root/etc/apt/sources.list" "$root/etc/resolv.conf"
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
pass "debootstrap ($(($(date +%s) - t0)) s)"

in_root apt-get update -qq >/dev/null
cp "$deb" "$root/root/"
name=$(basename "$deb")
in_root apt-get install -y -q --no-install-recommends "/root/$name" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "apt install ./$name"; }
pass "apt install ./$name in a clean Debian 12 root"
grep -qi "error" "$work/install.log" && { cat "$work/install.log" >&2; fail "errors during install"; }
ldd_out=$(in_root ldd /usr/sbin/lowphp-fpm)
echo "$ldd_out" | grep -q "not found" && { echo "$ldd_out" >&2; fail "missing libraries"; }
pass "ldd: every library found"
if in_root sh -c 'for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr "\0" " "; echo; done' |
    grep -q "^lowphp-fpm: master\|^/usr/sbin/lowphp-fpm"; then
    fail "the package started lowphp-fpm without systemd"
fi
pass "postinst started nothing without systemd"

out=$(in_root /usr/sbin/lowphp-fpm -t 2>&1) || { echo "$out" >&2; fail "lowphp-fpm -t"; }
echo "$out" | grep -q "configuration file /etc/lowphp/lowphp-fpm.conf test is successful" ||
    fail "-t output: $out"
pass "lowphp-fpm -t on the installed default configuration"

in_root apt-get install -y -q --no-install-recommends man-db systemd nginx-light >"$work/tools.log" 2>&1 ||
    { tail -30 "$work/tools.log" >&2; fail "installing man-db systemd nginx-light"; }
for page in /usr/share/man/man8/lowphp-fpm.8.gz /usr/share/man/man5/lowphp-fpm.conf.5.gz; do
    err=$(in_root env MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) || fail "man -l $page"
    [ -z "$err" ] || fail "man --warnings -l $page: $err"
done
in_root man -w lowphp-fpm >/dev/null && in_root man -w 5 lowphp-fpm.conf >/dev/null || fail "man -w"
pass "man pages render without warnings"
err=$(in_root systemd-analyze verify lowphp-fpm.service 2>&1) || fail "systemd-analyze verify: $err"
[ -z "$err" ] || fail "systemd-analyze verify: $err"
pass "systemd-analyze verify lowphp-fpm.service"
[ -L "$root/etc/systemd/system/multi-user.target.wants/lowphp-fpm.service" ] ||
    fail "unit not enabled by the package"
pass "unit enabled (started at next boot under systemd)"

# The README's nginx setup, then the service as a container would run it.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$root/var/www/html"
rm -f "$root/var/www/html/hello.php" "$root/etc/nginx/sites-enabled/default"
printf '<?php echo "hello from ", PHP_SAPI, " as ", posix_getpwuid(posix_geteuid())["name"];\n' \
    >"$root/var/www/html/hello.php"
cat >"$root/etc/nginx/sites-enabled/lowphp-test" <<EOF
server {
    listen 127.0.0.1:$port;
    root /var/www/html;
    location ~ \.php\$ {
        include snippets/fastcgi-php.conf;
        fastcgi_pass unix:/run/lowphp/lowphp-fpm.sock;
    }
}
EOF
in_root systemd-tmpfiles --create lowphp-fpm.conf
[ -d "$root/run/lowphp" ] || fail "tmpfiles did not create /run/lowphp"
in_root /usr/sbin/lowphp-fpm -D || fail "lowphp-fpm -D"
in_root /usr/sbin/nginx || fail "nginx"
body=""
for _ in $(seq 50); do
    body=$(curl -fsS "http://127.0.0.1:$port/hello.php" 2>/dev/null) && break
    sleep 0.1
done
[ "$body" = "hello from fpm-fcgi as www-data" ] || fail "nginx -> lowphp-fpm answered: '$body'"
grep -q "ready to handle connections" "$root/var/log/lowphp-fpm.log" || fail "error log"
pass "nginx + default pool serve PHP as www-data"
kill -QUIT "$(cat "$root/run/nginx.pid")"
master=$(cat "$root/run/lowphp/lowphp-fpm.pid")
kill -QUIT "$master"
for _ in $(seq 100); do kill -0 "$master" 2>/dev/null || break; sleep 0.1; done
kill -0 "$master" 2>/dev/null && fail "master $master still running after SIGQUIT"
pass "graceful stop"

# Boot the same root with systemd (systemd-nspawn, host network): the enabled
# unit starts at boot (Type=notify: "active" only after READY=1), serves as
# www-data behind nginx with its hardening, reloads keeping its pid, and stops
# gracefully.
for m in "$root/proc" "$root/dev/pts" "$root/dev"; do
    if mountpoint -q "$m"; then umount "$m"; fi
done
rm -f "$root/run/nginx.pid" "$root/run/lowphp/lowphp-fpm.pid"
: >"$root/var/log/lowphp-fpm.log"
systemd-nspawn -q -D "$root" --boot --register=no --keep-unit --machine="lowphp-test-$$" \
    >"$work/nspawn.log" 2>&1 &
nspawn_pid=$!
# The container's init: the process under systemd-nspawn that is pid 1 in its
# own pid namespace (nspawn forks helpers first, so not just any child).
find_leader() {
    local p c
    for p in $(ps -o pid= --ppid "$nspawn_pid" 2>/dev/null || true); do
        for c in $p $(ps -o pid= --ppid "$p" 2>/dev/null || true); do
            if awk '/^NSpid:/ { exit !(NF > 2 && $NF == 1) }' "/proc/$c/status" 2>/dev/null; then
                echo "$c"
                return
            fi
        done
    done
}
leader=""
in_box() { nsenter -t "$leader" -m -u -i -n -p -- "$@"; }
state=""
for _ in $(seq 600); do
    [ -n "$leader" ] && [ -d "/proc/$leader" ] || leader=$(find_leader)
    if [ -n "$leader" ]; then
        state=$(in_box systemctl is-system-running 2>/dev/null) || true
        case "$state" in running|degraded) break ;; esac
    fi
    sleep 0.1
done
case "$state" in running|degraded) ;; *) cat "$work/nspawn.log" >&2; fail "systemd in the container: '$state'" ;; esac
[ "$(in_box systemctl is-active lowphp-fpm.service)" = active ] ||
    { in_box systemctl status lowphp-fpm.service --no-pager >&2; fail "lowphp-fpm.service not active after boot"; }
pass "systemd boot: lowphp-fpm.service active (READY=1 received)"
body=$(curl -fsS "http://127.0.0.1:$port/hello.php" 2>&1) || true
[ "$body" = "hello from fpm-fcgi as www-data" ] || { in_box journalctl -u lowphp-fpm --no-pager >&2; fail "service behind nginx answered: '$body'"; }
pass "service behind nginx serves PHP as www-data (hardened unit)"
pid_before=$(in_box systemctl show -p MainPID --value lowphp-fpm.service)
in_box systemctl reload lowphp-fpm.service || { in_box journalctl -u lowphp-fpm --no-pager >&2; fail "systemctl reload"; }
pid_after=$(in_box systemctl show -p MainPID --value lowphp-fpm.service)
[ "$pid_before" = "$pid_after" ] || fail "MainPID changed across reload ($pid_before -> $pid_after)"
grep -q 'reloading: execv' "$root/var/log/lowphp-fpm.log" || fail "no re-exec in the error log after reload"
body=$(curl -fsS "http://127.0.0.1:$port/hello.php" 2>&1) || true
[ "$body" = "hello from fpm-fcgi as www-data" ] || fail "after reload: '$body'"
pass "systemctl reload: same MainPID, re-executed, still serving"
in_box systemctl stop lowphp-fpm.service
[ "$(in_box systemctl show -p Result --value lowphp-fpm.service)" = success ] || fail "stop result"
grep -q "exiting, bye-bye!" "$root/var/log/lowphp-fpm.log" || fail "graceful stop not logged"
pass "systemctl stop: graceful (SIGQUIT), result success"
# Maintainer scripts with systemd running: purge stops and removes, a fresh
# install starts the service at once, an upgrade reloads it (same pid).
in_box dpkg --purge lowphp-fpm >"$work/box-purge.log" 2>&1 || { cat "$work/box-purge.log" >&2; fail "purge under systemd"; }
in_box systemctl is-active -q lowphp-fpm.service && fail "still active after purge"
in_box dpkg -i "/root/$name" >"$work/box-install.log" 2>&1 || { cat "$work/box-install.log" >&2; fail "install under systemd"; }
[ "$(in_box systemctl is-active lowphp-fpm.service)" = active ] || fail "not started by the install under systemd"
pass "install with systemd running starts the service"
pid_before=$(in_box systemctl show -p MainPID --value lowphp-fpm.service)
execs_before=$(grep -c 'reloading: execv' "$root/var/log/lowphp-fpm.log" || true)
in_box dpkg -i "/root/$name" >"$work/box-upgrade.log" 2>&1 || { cat "$work/box-upgrade.log" >&2; fail "upgrade under systemd"; }
[ "$(in_box systemctl is-active lowphp-fpm.service)" = active ] || fail "not active after upgrade"
[ "$(in_box systemctl show -p MainPID --value lowphp-fpm.service)" = "$pid_before" ] || fail "upgrade restarted (pid changed)"
[ "$(grep -c 'reloading: execv' "$root/var/log/lowphp-fpm.log")" -gt "$execs_before" ] || fail "upgrade did not reload"
pass "upgrade with systemd running reloads the service (same pid, re-executed)"
kill -s RTMIN+4 "$leader" # asks systemd in the container to power off
for _ in $(seq 200); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$nspawn_pid" 2>/dev/null; then kill -TERM "$nspawn_pid"; wait "$nspawn_pid" || true; fi
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"

in_root dpkg -i "/root/$name" >"$work/reinstall.log" 2>&1 || { cat "$work/reinstall.log" >&2; fail "reinstall"; }
pass "reinstall (upgrade path)"
in_root apt-get purge -y -q lowphp-fpm >"$work/purge.log" 2>&1 || { cat "$work/purge.log" >&2; fail "purge"; }
[ ! -e "$root/etc/lowphp" ] || fail "/etc/lowphp left after purge"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/lowphp-fpm.service" ] || fail "unit link left"
pass "purge"
echo "all chroot checks passed ($(($(date +%s) - t0)) s)"
