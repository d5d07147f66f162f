#!/usr/bin/env bash
# Builds the Debian binary package lowphp-fpm_<version>_amd64.deb with
# dpkg-buildpackage + debhelper from a copy of this source tree, then runs
# lintian on it. Usage: bash packaging/build-deb.sh [OUTPUT_DIR]   (default build-deb/)
# Needs the packages from scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=${1:-$repo/build-deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d /tmp/lowphp-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
src="$work/lowphp-fpm"
mkdir "$src"
# The tracked files (and new, not ignored ones): never build dirs or old .debs.
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$repo" ls-files -z --cached --others --exclude-standard |
        (cd "$repo" && xargs -0 cp --parents -t "$src" 2>/dev/null || true)
else
    tar -C "$repo" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$src" -xf -
fi
# The copy has no .git: the commit it comes from goes with it, for -v
# (cmake/build_info.cmake reads it).
if commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null); then
    [ -z "$(git -C "$repo" status --porcelain --untracked-files=no)" ] || commit="$commit with uncommitted changes"
    echo "$commit" >"$src/.lowphp-commit"
fi
rm -rf "$src/debian"
cp -r "$repo/packaging/debian" "$src/debian"
(cd "$src" && DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
    dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1) || {
    tail -60 "$work/build.log" >&2
    echo "dpkg-buildpackage failed" >&2
    exit 1
}
rm -f "$out"/lowphp-fpm_*.deb
mv "$work"/lowphp-fpm_*_amd64.deb "$out/"
deb=$(ls "$out"/lowphp-fpm_*_amd64.deb)
if [ "${LOWPHP_NO_LINTIAN:-}" != 1 ]; then
    lintian --fail-on warning "$deb"
fi
echo "$deb"
