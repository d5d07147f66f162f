"""lowphp-fpm --migrate: Debian's stock /etc/php/8.2/fpm converts and passes -t;
a realistic php-fpm setup (Debian's stock php-fpm.conf and www.conf plus
several pools: tcp and unix listeners, php_admin_value / php_flag / php_value,
env[], clear_env, an include= inside a pool, $pool, ping/status) converts, the
report says what carries over and what changes, the written configuration
passes -t, and lowphp-fpm running it beside php8.2-fpm (running the original)
gives the same responses for every pool."""
import os
import re
import signal
import socket
import subprocess

from lowphp_test import (TempDir, check, check_eq, check_in, fcgi, free_port, lowphp_bin, phpfpm_bin,
                         run, test, wait_for)

STOCK_DIR = "/etc/php/8.2/fpm"


def migrate(*args):
    return subprocess.run([lowphp_bin(), "--migrate", *args], capture_output=True, text=True, timeout=60)


def port_with_free_successor():
    """A free port P whose P + 1000 is free too: --migrate moves a TCP listener
    there (php-fpm keeps P while both run side by side)."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port + 1000))
            except OSError:
                continue
        return port
    raise AssertionError("no free port P with P + 1000 free")


@test
def stock_debian_config_converts_and_passes_test():
    with TempDir() as td:
        out = td.join("lowphp")
        r = migrate(f"{STOCK_DIR}/php-fpm.conf", "--write", out, "--run-dir", td.join("run"),
                    "--error-log", td.join("lowphp-fpm.log"))
        check_eq(r.returncode, 0, f"--migrate exit status\n{r.stdout}\n{r.stderr}")
        check_in("[pool www] (/etc/php/8.2/fpm/pool.d/www.conf)", r.stdout, "report")
        check_in(f"listen: /run/php/php8.2-fpm.sock -> {td.join('run')}/lowphp-fpm.sock", r.stdout, "report")
        check_in("pid: /run/php/php8.2-fpm.pid -> " + td.join("run/lowphp-fpm.pid"), r.stdout, "report")
        for d in ["user = www-data", "pm = dynamic", "pm.max_children = 5", "listen.owner = www-data"]:
            check_in("    " + d + "\n", r.stdout, "carried over unchanged")
        t = subprocess.run([lowphp_bin(), "-t", "-y", f"{out}/lowphp-fpm.conf"], capture_output=True, text=True)
        check_eq(t.returncode, 0, f"-t on the written configuration: {t.stderr}")
        pool = open(f"{out}/pool.d/www.conf").read()
        # Debian's comments survive
        check_in("; Start a new pool named 'www'.", pool, "comments kept")
        check(not os.path.exists("/etc/lowphp/pool.d/www.conf.before-migrate"), "nothing touched in /etc")


@test
def report_without_write_writes_nothing():
    with TempDir() as td:
        r = migrate(f"{STOCK_DIR}/php-fpm.conf")
        check_eq(r.returncode, 0, f"exit status: {r.stderr}")
        check_in("Nothing written", r.stdout, "report")
        check_eq(os.listdir(td.path), [], "no file written")


@test
def invalid_source_is_refused():
    with TempDir() as td:
        bad = td.join("php-fpm.conf")
        open(bad, "w").write("[global]\n[www]\nlisten = /tmp/x.sock\npm = static\nnot_a_directive = 1\n")
        r = migrate(bad)
        check_eq(r.returncode, 78, f"exit status ({r.stdout}{r.stderr})")
        check_in("unknown entry 'not_a_directive'", r.stderr, "php-fpm's wording")


SCRIPT = r"""<?php
$keys = ['memory_limit', 'max_execution_time', 'display_errors', 'log_errors', 'date.timezone',
         'upload_max_filesize', 'short_open_tag', 'error_reporting'];
$ini = [];
foreach ($keys as $k) { $ini[$k] = ini_get($k); }
ini_set('memory_limit', '1G');  // refused under php_admin_value
echo json_encode([
  'sapi' => PHP_SAPI,
  'user' => posix_getpwuid(posix_geteuid())['name'],
  'ini' => $ini,
  'memory_limit_after_ini_set' => ini_get('memory_limit'),
  'env' => ['SHOP_ENV' => getenv('SHOP_ENV'), 'PATH' => getenv('PATH'), 'API_TOKEN' => getenv('API_TOKEN'),
            'HOME_SEEN' => getenv('HOME') !== false],
  'timezone' => date_default_timezone_get(),
  'server' => ['SCRIPT_NAME' => $_SERVER['SCRIPT_NAME'], 'PATH_INFO' => $_SERVER['PATH_INFO'] ?? null,
               'QUERY_STRING' => $_SERVER['QUERY_STRING']],
  'get' => $_GET,
], JSON_PRETTY_PRINT);
"""


def write_php_fpm_setup(root, ports):
    """Debian's /etc/php/8.2/fpm layout under `root`, paths moved into it."""
    fpm = os.path.join(root, "fpm")
    pool_d = os.path.join(fpm, "pool.d")
    common = os.path.join(fpm, "common")
    run_php = os.path.join(root, "run-php")
    logs = os.path.join(root, "log")
    for d in [pool_d, common, run_php, logs]:
        os.makedirs(d, exist_ok=True)
    main = open(f"{STOCK_DIR}/php-fpm.conf").read()
    main = re.sub(r"(?m)^pid = .*$", f"pid = {run_php}/php8.2-fpm.pid", main)
    main = re.sub(r"(?m)^error_log = .*$", f"error_log = {logs}/php8.2-fpm.log", main)
    main = re.sub(r"(?m)^include=.*$", f"include={pool_d}/*.conf", main)
    open(os.path.join(fpm, "php-fpm.conf"), "w").write(main)
    www = open(f"{STOCK_DIR}/pool.d/www.conf").read()
    www = re.sub(r"(?m)^listen = .*$", f"listen = {run_php}/php8.2-fpm.sock", www)
    open(os.path.join(pool_d, "www.conf"), "w").write(www)
    open(os.path.join(common, "limits.inc"), "w").write(
        "; shared by several pools\npm.max_requests = 500\nphp_admin_value[date.timezone] = Europe/Paris\n"
        "request_terminate_timeout = 60s\n")
    open(os.path.join(pool_d, "shop.conf"), "w").write(f"""; an online shop on TCP
[shop]
user = www-data
group = www-data
listen = 127.0.0.1:{ports['shop']}
listen.allowed_clients = 127.0.0.1
pm = static
pm.max_children = 2
include={common}/*.inc
php_admin_value[memory_limit] = 96M
php_admin_flag[log_errors] = on
php_value[max_execution_time] = 17
php_flag[short_open_tag] = on
env[SHOP_ENV] = production
env[PATH] = /usr/local/bin:/usr/bin:/bin
catch_workers_output = yes
security.limit_extensions = .php
""")
    open(os.path.join(pool_d, "api.conf"), "w").write(f"""[api]
user = www-data
group = www-data
listen = {run_php}/$pool.sock
listen.owner = www-data
listen.group = www-data
listen.mode = 0666
pm = ondemand
pm.max_children = 4
pm.process_idle_timeout = 20s
ping.path = /ping
ping.response = api-pong
pm.status_path = /status
slowlog = {logs}/$pool.slow.log
request_slowlog_timeout = 5s
access.log = {logs}/$pool.access.log
clear_env = no
env[API_TOKEN] = "s3cr3t token"
php_flag[display_errors] = on
php_admin_value[upload_max_filesize] = 5M
php_value[error_reporting] = 22519
""")
    open(os.path.join(pool_d, "legacy.conf"), "w").write(f"""[legacy]
user = www-data
listen = 127.0.0.1:{ports['legacy']}
pm = dynamic
pm.max_children = 3
pm.start_servers = 1
pm.min_spare_servers = 1
pm.max_spare_servers = 2
chdir = /
php_admin_value[memory_limit] = 64M
""")
    return os.path.join(fpm, "php-fpm.conf")


def request(address, docroot, uri, query=""):
    script = uri.split("?")[0]
    params = {"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": docroot + script, "SCRIPT_NAME": script,
              "REQUEST_URI": uri + ("?" + query if query else ""), "QUERY_STRING": query,
              "DOCUMENT_ROOT": docroot, "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1",
              "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "localhost", "SERVER_PORT": "80"}
    with fcgi.Connection(address) as c:
        r = c.request(params)
    check(r.complete, f"no complete response from {address} for {uri}")
    return r


def start(cmd, log):
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (os.path.exists(log) and "ready to handle connections" in open(log).read())
             or proc.poll() is not None, 20, what=f"{cmd[0]} ready")
    check(proc.poll() is None, f"{cmd[0]} exited ({proc.returncode}):\n{open(log).read() if os.path.exists(log) else ''}")
    return proc


def stop(proc):
    if proc and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGQUIT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@test
def realistic_setup_converts_and_serves_like_php_fpm():
    with TempDir() as td:
        os.chmod(td.path, 0o755)
        ports = {"shop": port_with_free_successor(), "legacy": port_with_free_successor()}
        source = write_php_fpm_setup(td.path, ports)
        out = td.join("lowphp")
        run_dir = td.join("run-lowphp")
        os.makedirs(run_dir)
        r = migrate(source, "--write", out, "--run-dir", run_dir, "--error-log", td.join("log/lowphp-fpm.log"))
        check_eq(r.returncode, 0, f"--migrate exit status\n{r.stdout}\n{r.stderr}")
        rep = r.stdout
        for pool in ["www", "shop", "api", "legacy"]:
            check_in(f"[pool {pool}]", rep, "report names every pool")
        # what carries over (as written, includes flattened into the pool)
        for d in ["php_admin_value[memory_limit] = 96M", "env[SHOP_ENV] = production",
                  "php_admin_value[date.timezone] = Europe/Paris", "pm.max_requests = 500",
                  'env[API_TOKEN] = "s3cr3t token"', "ping.path = /ping", "clear_env = no"]:
            check_in("    " + d + "\n", rep, "carried over unchanged")
        # what changes, and why
        shop_to = f"127.0.0.1:{ports['shop'] + 1000}"
        check_in(f"listen: 127.0.0.1:{ports['shop']} -> {shop_to}", rep, "tcp listener moved")
        check_in(f"listen: {td.path}/run-php/php8.2-fpm.sock -> {run_dir}/lowphp-fpm.sock", rep, "www socket")
        check_in(f"listen: {td.path}/run-php/api.sock -> {run_dir}/api.sock", rep, "api socket ($pool)")
        check_in("why: php-fpm binds", rep, "reason given")
        check_eq(sorted(os.listdir(f"{out}/pool.d")), ["api.conf", "legacy.conf", "shop.conf", "www.conf"],
                 "pool files written")
        shop = open(f"{out}/pool.d/shop.conf").read()
        check_in("; lowphp-fpm --migrate: from " + td.path + "/fpm/common/limits.inc", shop, "include inlined")
        check_in("; an online shop on TCP", shop, "comment kept")
        t = subprocess.run([lowphp_bin(), "-t", "-y", f"{out}/lowphp-fpm.conf"], capture_output=True, text=True)
        check_eq(t.returncode, 0, f"-t on the converted setup: {t.stderr}")

        docroot = td.join("www")
        os.makedirs(docroot)
        open(os.path.join(docroot, "probe.php"), "w").write(SCRIPT)
        os.chmod(os.path.join(docroot, "probe.php"), 0o644)
        php_fpm = lowphp = None
        try:
            # side by side: php8.2-fpm on the original setup, lowphp-fpm on the converted one
            php_fpm = start([phpfpm_bin(), "-F", "-y", source], td.join("log/php8.2-fpm.log"))
            lowphp = start([lowphp_bin(), "-F", "-y", f"{out}/lowphp-fpm.conf"], td.join("log/lowphp-fpm.log"))
            pairs = {
                "www": (f"{td.path}/run-php/php8.2-fpm.sock", f"{run_dir}/lowphp-fpm.sock"),
                "shop": (("127.0.0.1", ports["shop"]), ("127.0.0.1", ports["shop"] + 1000)),
                "api": (f"{td.path}/run-php/api.sock", f"{run_dir}/api.sock"),
                "legacy": (("127.0.0.1", ports["legacy"]), ("127.0.0.1", ports["legacy"] + 1000)),
            }
            for pool, (ref_addr, new_addr) in pairs.items():
                for uri, query in [("/probe.php", "a=1&b=two"), ("/probe.php/extra/info", ""),
                                   ("/missing.php", "")]:
                    ref = request(ref_addr, docroot, uri, query)
                    got = request(new_addr, docroot, uri, query)
                    check_eq((got.status, got.body), (ref.status, ref.body), f"pool {pool} {uri}")
                    check_eq(got.header("content-type"), ref.header("content-type"),
                             f"pool {pool} {uri} content-type")
            # ping.path / pm.status_path carry over (checked by -t above); the
            # answers themselves are compared once this branch has main's status/ping.
            body = request(pairs["shop"][1], docroot, "/probe.php").body.decode()
            for needle in ['"memory_limit": "96M"', '"SHOP_ENV": "production"', '"timezone": "Europe\\/Paris"',
                           '"memory_limit_after_ini_set": "96M"', '"user": "www-data"']:
                check_in(needle, body, "shop pool's settings took effect")
            body = request(pairs["api"][1], docroot, "/probe.php").body.decode()
            check_in('"API_TOKEN": "s3cr3t token"', body, "api env[]")
            check_in('"upload_max_filesize": "5M"', body, "api php_admin_value")
        finally:
            stop(lowphp)
            stop(php_fpm)


if __name__ == "__main__":
    run()
