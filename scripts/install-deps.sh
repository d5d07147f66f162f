#!/usr/bin/env bash
# Installs every Debian 12 package lowphp-fpm builds with, and the real servers
# its tests and benchmarks drive, and the Debian packaging tools the package
# test uses (dpkg-buildpackage, debhelper, lintian, mandoc/groff/man-db for the
# man pages, systemd for systemd-analyze/systemd-tmpfiles, logrotate -d,
# debootstrap and systemd-container (systemd-nspawn) for the clean Debian 12
# install test, which boots the root with systemd).
# Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
source "$(dirname "$0")/lib/apt.sh"  # apt_get: waits while another apt holds the lock
apt_get update -qq
# The database servers whose packages this run installs (see below).
new_db_services=()
for pkg_svc in postgresql:postgresql mariadb-server:mariadb redis-server:redis-server; do
  dpkg-query -W -f='${Status}' "${pkg_svc%%:*}" 2>/dev/null | grep -q "ok installed" || new_db_services+=("${pkg_svc#*:}")
done
apt_get install -y -qq --no-install-recommends \
  g++ cmake make pkg-config ca-certificates clang-format \
  libphp8.2-embed php8.2-dev libevent-dev libinih-dev doctest-dev \
  php8.2-fpm php8.2-cli php8.2-opcache php8.2-apcu \
  nginx curl python3 procps \
  prometheus wrk \
  dpkg-dev debhelper lintian mandoc groff-base man-db systemd logrotate debootstrap \
  systemd-container clang libclang-rt-14-dev llvm-14 libfaketime >/dev/null # libfaketime steps the wall clock under the timeout tests; clang, its libFuzzer runtime and symbolizer: scripts/fuzz.sh; promtool parses the status page; wrk loads the reload test; the rest builds and checks the .deb
# The PHP extensions a real host has: the suite runs with them loaded in both
# php8.2-fpm and lowphp-fpm (worker sizes, start-up, ASan), and the database
# drivers are what apps use to reach PostgreSQL and MariaDB.
apt_get install -y -qq --no-install-recommends \
  php8.2-mysql php8.2-pgsql php8.2-redis php8.2-yaml php8.2-igbinary php8.2-msgpack \
  php8.2-memcached php8.2-curl php8.2-gd php8.2-intl php8.2-mbstring php8.2-xml \
  php8.2-zip php8.2-bcmath php8.2-sqlite3 >/dev/null
# The database client libraries the backends link, and the real servers the
# tests start on free ports in temp dirs (tests/lib/lowphp_test/servers.py).
apt_get install -y -qq --no-install-recommends \
  libpq-dev libmariadb-dev libhiredis-dev \
  postgresql mariadb-server mariadb-client redis-server >/dev/null
# Their packages enable the services and, on a booted systemd host, start them
# on the default ports; the tests use none of them. Stop and disable the ones
# this run installed (a server that was there before is left as it was).
for svc in "${new_db_services[@]}"; do
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now --quiet "$svc" >/dev/null 2>&1 || true
  else  # a container or chroot: no running systemd, maybe an init script
    $SUDO systemctl disable --quiet "$svc" >/dev/null 2>&1 || true
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
  fi
done
