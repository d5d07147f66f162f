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
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  g++ cmake make pkg-config ca-certificates clang-format \
  libphp8.2-embed php8.2-dev libevent-dev libinih-dev doctest-dev \
  php8.2-fpm php8.2-cli php8.2-opcache php8.2-apcu \
  nginx curl python3 procps \
  prometheus wrk \
  dpkg-dev debhelper lintian mandoc groff-base man-db systemd logrotate debootstrap \
  systemd-container >/dev/null # promtool parses the status page; wrk loads the reload test; the rest builds and checks the .deb
