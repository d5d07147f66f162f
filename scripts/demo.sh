#!/usr/bin/env bash
# Installs everything, builds, and starts lowphp-fpm behind nginx on 127.0.0.1
# with the demo site from pools.d/demo. Stop it with: bash scripts/demo.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
demo=/tmp/lowphp-demo
port=${DEMO_PORT:-8080}
stop() {
    [ -f "$demo/nginx.pid" ] && kill -QUIT "$(cat "$demo/nginx.pid")" 2>/dev/null || true
    [ -f "$demo/lowphp-fpm.pid" ] && kill -QUIT "$(cat "$demo/lowphp-fpm.pid")" 2>/dev/null || true
    sleep 1
}
if [ "${1:-}" = "stop" ]; then stop; echo "demo stopped"; exit 0; fi
bash scripts/install-deps.sh
bash scripts/build.sh
stop
mkdir -p "$demo/site"
cp -r pools.d/demo/public/. "$demo/site/"
chmod 755 "$demo" "$demo/site"
sed "s#@DEMO@#$demo#g" pools.d/demo/lowphp-fpm.conf > "$demo/lowphp-fpm.conf"
sed -e "s#@DEMO@#$demo#g" -e "s#@ROOT@#$demo/site#g" -e "s#@PORT@#$port#g" \
    pools.d/demo/nginx.conf > "$demo/nginx.conf"
"$repo/build/lowphp-fpm" -D -y "$demo/lowphp-fpm.conf"
nginx -c "$demo/nginx.conf"
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/index.php" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$port/index.php" >/dev/null
echo "lowphp-fpm demo is running: http://127.0.0.1:$port/index.php"
