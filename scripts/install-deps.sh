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
