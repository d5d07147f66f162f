#!/usr/bin/env python3
"""Driver for bench/run.sh: php8.2-fpm vs lowphp-fpm behind one nginx, measured with wrk.

Both backends get the same php.ini (-c), the same pool settings and the same scripts;
one nginx fronts both (/fpm/ and /low/), once with FastCGI keep-alive and once without.
Every process it starts is tracked by pid and stopped on exit (also on Ctrl-C and
errors); the temp dir is removed. Python stdlib only.
"""
import argparse
import atexit
import datetime
import hashlib
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ["fpm", "low"]
# The worker-mode pool's own lowphp-fpm master: "wm" serves the bootstrap-worker cell,
# "wmm" (started fresh) the WORKER_MEMORY measurement. Neither is in BACKENDS: each
# serves the lowphp side of its cell only.
NAMES = {"fpm": "php-fpm", "low": "lowphp", "wm": "lowphp worker mode",
         "wmm": "lowphp worker mode (memory run)"}
# SCRIPTS="hello bootstrap" / MODES="keep-alive": a subset, for looking into one cell
SCRIPTS = os.environ.get("SCRIPTS", "hello json bootstrap bootstrap-worker upload slow").split()
MODES = [(m, m == "keep-alive") for m in ("keep-alive", "no keep-alive")
         if m in os.environ.get("MODES", "keep-alive,no keep-alive").split(",")]
MODE_TITLES = {"keep-alive": "Keep-alive (upstream keepalive 4, fastcgi_keep_conn on)",
               "no keep-alive": "No keep-alive (plain fastcgi_pass unix:)"}
MARKER = "LOWPHP-BENCH-BOOTSTRAP-MARKER-7f3a"
# The worker-mode cell: php-fpm runs the classic bootstrap.php, lowphp-fpm a pool whose
# `worker.script` is WORKER_SCRIPT (bootstrap.php's boot once per worker, its request
# part per request), same workers, same nginx, same load.
WORKER_CELL = "bootstrap-worker"
WORKER_SCRIPT = "bootstrap-worker.php"
# WORKER_MEMORY=100000: after the cells, send that many requests to a fresh worker-mode
# pool (after WORKER_MEMORY_WARMUP) and report each worker's RSS at start and end, and
# after each of WORKER_MEMORY_STEPS equal steps.
WORKER_MEMORY = int(os.environ.get("WORKER_MEMORY") or 0)
WORKER_MEMORY_WARMUP = int(os.environ.get("WORKER_MEMORY_WARMUP") or 1000)
WORKER_MEMORY_STEPS = max(1, int(os.environ.get("WORKER_MEMORY_STEPS") or 10))
BOUNDARY = "----lowphpbench7MA4YWxkTrZu0gW"
UPLOAD_SIZE = 65536
WORKERS = 4
CONNS = 32          # wrk -c
# wrk's default 2 s timeout would turn php-fpm's keep-alive tail (connections waiting
# ~1 s+ in the backlog) into "timeout" errors and hide it from p99; 10 s keeps it visible.
WRK_TIMEOUT = "10s"
QUIET_WAIT = int(os.environ.get("QUIET_WAIT", "30"))   # s per run; see wait_quiet()
HZ = os.sysconf("SC_CLK_TCK")

procs = []          # [(name, Popen)] still to stop, in start order
tmp = None


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

def proc_table():
    """pid -> (ppid, state) for every process, read once from /proc."""
    t = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rindex(")") + 2:].split()
        t[int(d)] = (int(rest[1]), rest[0])
    return t


def descendants(root, table=None):
    table = table or proc_table()
    kids = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def group(p):
    """A started process and everything under it (nginx workers, pool workers, zygotes)."""
    return [p.pid] + descendants(p.pid)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        return s[s.rindex(")") + 2] != "Z"
    except OSError:
        return False


def stop(name, p, sig=signal.SIGTERM, timeout=10):
    """Stop one started process by pid, then anything it left behind, also by pid."""
    kids = descendants(p.pid)
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"{name} (pid {p.pid}) did not stop, killing")
            p.kill()
            p.wait()
    for k in kids:
        if alive(k):
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass


def cleanup():
    global tmp
    # A second Ctrl-C must not interrupt the cleanup half-way and leave processes behind.
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    while procs:
        name, p = procs.pop()
        stop(name, p, signal.SIGQUIT if name.startswith("nginx") else signal.SIGTERM)
    if tmp and os.path.isdir(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
        tmp = None


def on_signal(sig, _frame):
    raise SystemExit(128 + sig)


def start(name, argv, logfile=None, ready=None, timeout=30, fatal=True):
    """Start argv in its own session (a terminal's Ctrl-C reaches only us; we stop it
    in order), optionally waiting until `ready` shows up in logfile. Not ready in time:
    exits, or with fatal=False stops it and returns (None, why)."""
    out = open(os.path.join(tmp, name + ".out"), "wb")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    procs.append((name, p))
    if ready:
        end = time.time() + timeout
        while time.time() < end and p.poll() is None:
            try:
                with open(logfile, errors="replace") as f:
                    if ready in f.read():
                        return p if fatal else (p, "")
            except OSError:
                pass
            time.sleep(0.05)
        why = (f"{name} did not become ready (exit code {p.poll()}); log:\n"
               + tail(logfile) + tail(out.name))
        if fatal:
            sys.exit(why)
        stop(name, p)
        procs.remove((name, p))
        return None, why
    return p if fatal else (p, "")


def tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except (OSError, TypeError):
        return ""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listening on {port}")


def title(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def workers(master):
    """Pool worker pids under a master: 'php-fpm: pool www' / 'lowphp-fpm: pool www'."""
    return sorted(p for p in descendants(master.pid) if ": pool " in title(p))


# ---------------------------------------------------------------- fixtures

def write(path, data, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(data)


def write_php_ini():
    # ONE php.ini for both backends, passed with -c: same opcache, no JIT, same limits.
    write(f"{tmp}/php.ini", "\n".join([
        "opcache.enable=1",
        "opcache.enable_cli=0",
        "opcache.validate_timestamps=0",
        "opcache.memory_consumption=128",
        "opcache.max_accelerated_files=10000",
        "opcache.jit=off",
        "opcache.jit_buffer_size=0",
        "memory_limit=128M",
        "upload_max_filesize=8M",
        "post_max_size=16M",
        "realpath_cache_size=4096K",
        "display_errors=Off",
        "log_errors=On",
        f"error_log={tmp}/php-errors.log",
        ""]))


def write_bootstrap(www):
    """Framework-shaped request: autoload 150 of 300 class files, a closure container,
    200 regex routes, ~100 escaped template variables, ~5 KB of HTML."""
    for i in range(300):
        extra = "" if i % 2 else f"    public function dep(): int {{ return {i + 1}; }}\n"
        write(f"{www}/lib/App/Service{i:03d}.php", f"""<?php
namespace App;
class Service{i:03d}
{{
    private array $opts;
    public function __construct(array $opts = []) {{ $this->opts = $opts + ['name' => 'svc{i}', 'n' => {i}]; }}
    public function name(): string {{ return $this->opts['name']; }}
    public function value(): int {{ return $this->opts['n'] * 3 + strlen($this->opts['name']); }}
{extra}}}
""")
    routes = "\n".join(
        f"    ['GET', '#^/section{i}/(?P<id>\\d+)/item/(?P<slug>[a-z-]+)$#', 'h{i}'],"
        for i in range(200))
    # The app in parts, so the classic script and its worker form run the very same code.
    boot = """spl_autoload_register(function ($class) {
    $file = __DIR__ . '/lib/' . str_replace('\\\\', '/', $class) . '.php';
    if (is_file($file)) { require $file; }
});
final class Container {
    private array $factories = [];
    private array $instances = [];
    public function set(string $id, Closure $f): void { $this->factories[$id] = $f; }
    public function get(string $id) {
        return $this->instances[$id] ??= ($this->factories[$id])($this);
    }
}
$c = new Container();
for ($i = 0; $i < 300; $i++) {
    $cls = sprintf('App\\\\Service%03d', $i);
    $c->set("svc.$i", fn (Container $c) => new $cls(['name' => "service-$i", 'n' => $i]));
}
"""
    services = """$sum = 0;
for ($i = 0; $i < 300; $i += 2) { $sum += $c->get("svc.$i")->value(); }   // 150 classes loaded
"""
    route_table = """$routes = [
""" + routes + """
];
"""
    request = """$path = '/section199/4711/item/hello-world';   // the last route: every regex runs
$match = null;
foreach ($routes as [$method, $re, $handler]) {
    if ($method === 'GET' && preg_match($re, $path, $m)) { $match = [$handler, $m['id'], $m['slug']]; break; }
}
$vars = [];
for ($i = 0; $i < 100; $i++) { $vars["v$i"] = "Item <$i> & \\"q\\" #$i"; }
ob_start();
echo "<!doctype html><html><head><title>Bench</title></head><body>\\n";
echo "<h1>", htmlspecialchars($match[0]), " id=", htmlspecialchars($match[1]), "</h1>\\n<ul>\\n";
foreach ($vars as $k => $v) { echo '<li class="', htmlspecialchars($k), '">', htmlspecialchars($v), "</li>\\n"; }
echo "</ul>\\n<p>sum=$sum classes=", count(get_declared_classes()), "</p>\\n";
echo "<footer>""" + MARKER + """</footer></body></html>\\n";
ob_end_flush();
"""
    write(f"{www}/bootstrap.php", "<?php\n" + boot + services + route_table + request)

    def indent(code):
        return "".join("    " + l if l.strip() else l for l in code.splitlines(True))
    # Worker mode (lowphp-fpm `worker.script`): the boot once per worker, the rest per
    # request; the same body as bootstrap.php (the services are the container's shared
    # instances, built at boot: a request only uses them).
    write(f"{www}/{WORKER_SCRIPT}", "<?php\n"
          "// Worker-mode form of bootstrap.php: boots once per worker, then serves every\n"
          "// request of the pool with $handler (fresh superglobals and output each time).\n"
          + boot
          + 'for ($i = 0; $i < 300; $i += 2) { $c->get("svc.$i"); }   // 150 classes loaded, services built\n'
          + route_table
          + "$handler = static function () use ($c, $routes): void {\n"
          + indent(services.replace("   // 150 classes loaded", "") + request)
          + "};\n"
          + "while (lowphp_handle_request($handler)) {\n}\n")


def write_upload():
    """A 64 KB multipart body (fixed seed), the wrk lua script that posts it, and the
    answer upload.php must give: "<size> <md5>"."""
    payload = random.Random(42).randbytes(UPLOAD_SIZE)
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"blob.bin\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + payload + \
        f"\r\n--{BOUNDARY}--\r\n".encode()
    write(f"{tmp}/upload.body", body, "wb")
    write(f"{tmp}/upload.lua", f"""
local f = assert(io.open("{tmp}/upload.body", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "multipart/form-data; boundary={BOUNDARY}"
""")
    return body, f"{UPLOAD_SIZE} {hashlib.md5(payload).hexdigest()}"


def make_site():
    www = os.path.join(tmp, "www")
    write_php_ini()
    write(f"{www}/hello.php", '<?php echo "hello";')
    write(f"{www}/slow.php", '<?php usleep(20000); echo "slow";')
    write(f"{www}/upload.php", """<?php
$f = reset($_FILES);
if (!$f || $f['error'] !== UPLOAD_ERR_OK) { http_response_code(400); echo "no file"; exit; }
$data = file_get_contents($f['tmp_name']);
echo strlen($data), " ", md5($data);
""")
    write(f"{www}/json.php", """<?php
$out = [];
for ($i = 0; $i < 100; $i++) {
    $out[] = [
        'id' => $i,
        'name' => "User $i",
        'email' => "user$i@example.com",
        'active' => $i % 3 !== 0,
        'score' => $i * 1.5,
        'tags' => ['alpha', 'beta', "t$i"],
        'address' => ['street' => "$i Main St", 'city' => 'Springfield', 'zip' => sprintf('%05d', $i * 7)],
    ];
}
header('Content-Type: application/json');
echo json_encode($out);
""")
    # Not benchmarked: tells the report whether opcache really runs in each backend.
    write(f"{www}/opcache.php", """<?php
$s = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
echo ($s && $s['opcache_enabled']) ? "opcache on" : "opcache off";
""")
    write_bootstrap(www)
    body, upload_expect = write_upload()
    return www, body, upload_expect


def pool_conf(name, worker_script=None, worker=False):
    # Same pool for both: static, 4 workers, the invoking user (root, hence -R).
    # worker: the worker-mode pool "worker", never recycled (no max requests, no
    # pm.max_memory), with a status page for its per-worker request counts;
    # worker_script: its worker.script (None: classic, for the harness check).
    conf = f"""[global]
pid = {tmp}/{name}.pid
error_log = {tmp}/{name}.log
daemonize = no

[{"worker" if worker else "www"}]
listen = {tmp}/{name}.sock
listen.mode = 0660
pm = static
pm.max_children = {WORKERS}
pm.max_requests = 0
"""
    if worker:
        conf += f"pm.status_path = /{name}-status\n"
    if worker_script:
        conf += f"worker.script = {worker_script}\nworker.max_requests = 0\n"
    return conf


def cell_target(script, b):
    """(backend that serves it, file in the URL) for one side of a cell: the
    bootstrap-worker cell is php-fpm's classic bootstrap.php against lowphp's
    worker-mode pool (which runs its handler whatever SCRIPT_FILENAME says; nginx
    sends the same bootstrap.php path to both)."""
    if script == WORKER_CELL:
        return ("wm" if b == "low" else b), "bootstrap.php"
    return b, f"{script}.php"


def upstream_log(name, backend):
    return f"{tmp}/{name}-{backend}-upstream.log"


def nginx_conf(name, port, keepalive, www, backends):
    ups, locs = "", ""
    for b in backends:
        sock = f"unix:{tmp}/{b}.sock"
        if keepalive:
            ups += f"    upstream {b}_ka {{ server {sock}; keepalive 4; }}\n"
            target, extra = f"{b}_ka", "fastcgi_keep_conn on;"
        else:
            target, extra = sock, ""
        if b in ("wm", "wmm"):      # the worker pool's status page (pm.status_path)
            locs += f"""
        location = /{b}-status {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass {target};
            {extra}
        }}"""
        locs += f"""
        location /{b}/ {{
            rewrite ^/{b}(/.*)$ $1 break;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass {target};
            {extra}
            access_log {upstream_log(name, b)} upstream_wait buffer=64k flush=100ms;
        }}"""
    return f"""user root;
worker_processes 2;
daemon off;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}.error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    # the backend's share of the latency (see upstream_wait)
    log_format upstream_wait '$status $upstream_header_time';
    client_body_temp_path {tmp}/{name}-body;
    fastcgi_temp_path {tmp}/{name}-fastcgi;
    proxy_temp_path {tmp}/{name}-proxy;
    uwsgi_temp_path {tmp}/{name}-uwsgi;
    scgi_temp_path {tmp}/{name}-scgi;
    client_max_body_size 16m;
    client_body_buffer_size 256k;   # the 64 KB upload stays in memory: no temp-file I/O
{ups}
    server {{
        listen 127.0.0.1:{port};
        root {www};
        location = /ceiling {{ return 200 "hello"; }}{locs}
    }}
}}
"""


def start_nginx(name, keepalive, www, backends):
    """One nginx in front of `backends`; returns (process, port)."""
    port = free_port()
    write(f"{tmp}/{name}.conf", nginx_conf(name, port, keepalive, www, backends))
    for d in ("body", "fastcgi", "proxy", "uwsgi", "scgi"):
        os.makedirs(f"{tmp}/{name}-{d}", exist_ok=True)
    ng = start(name, ["nginx", "-p", tmp, "-c", f"{tmp}/{name}.conf"])
    wait_port(port)
    return ng, port


# ---------------------------------------------------------------- measuring

def to_ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[m.group(2)]


def parse_wrk(out):
    r = {"rps": 0.0, "p50": float("nan"), "p99": float("nan"), "errors": 0, "raw": out}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        r["errors"] = -1            # wrk itself failed: shown as "?" in the table
        return r
    r["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s+{pct}(?:\.0+)?%\s+(\S+)", out, re.M)
        if m:
            r[key] = to_ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        r["errors"] += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["errors"] += sum(int(x) for x in m.groups())
    return r


def upstream_wait(path, offset):
    """p99 and max in ms of nginx's $upstream_header_time over the answered (200)
    requests logged after `offset`: from nginx starting on the request (connect
    and backlog included) to the backend's response header, the part of the
    latency the backend owns, 1 ms resolution. Raw percentiles: wrk's own are
    corrected for coordinated omission (each slow response also counts for the
    requests its connection could not send meanwhile), these are not, so a
    starved connection shows in the max. Returns (p99, max, requests, new offset)."""
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    times = []
    for line in data.decode(errors="replace").splitlines():
        status, _, t = line.partition(" ")
        last = t.split(",")[-1].strip()     # several values if nginx tried again
        if status == "200" and last not in ("", "-"):
            times.append(float(last) * 1000)
    if not times:
        return float("nan"), float("nan"), 0, offset + len(data)
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return p99, times[-1], len(times), offset + len(data)


def cpu_ticks(pids):
    """utime+stime of each pid, in clock ticks."""
    t = {}
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
            fields = s[s.rindex(")") + 2:].split()
            t[p] = int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return t


def cpu_delta(before, after):
    # A process that appeared during the run (respawned worker) counts from zero.
    return sum(v - before.get(p, 0) for p, v in after.items()) / HZ


def busy_ticks():
    """Machine-wide non-idle CPU ticks, to see what else (other builds, tests) ran meanwhile."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]          # minus idle and iowait


def wait_quiet(max_wait, threshold=25.0):
    """Between runs nothing of ours is busy, so machine-wide busy CPU is someone else's
    (a build, a test suite). Wait up to max_wait s for it to drop below threshold % of all
    cores, so a run is not measured on a half-taken machine. Returns the seconds waited."""
    if max_wait <= 0:
        return 0.0
    t0 = time.time()
    while True:
        b0 = busy_ticks()
        time.sleep(1)
        pct = (busy_ticks() - b0) / HZ / os.cpu_count() * 100
        if pct < threshold or time.time() - t0 >= max_wait:
            return max(0.0, time.time() - t0 - 1)


def wrk(url, dur, lua=None, nginx=None, backend=None):
    """One wrk run; with nginx/backend given, also the CPU each group spent during it."""
    argv = ["wrk", "-t2", f"-c{CONNS}", f"-d{dur}s", "--timeout", WRK_TIMEOUT, "--latency"]
    if lua:
        argv += ["-s", lua]
    argv.append(url)
    groups = {"nginx": nginx, "backend": backend}
    before = {k: cpu_ticks(group(p)) for k, p in groups.items() if p}
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = busy_ticks()
    t0 = time.time()
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    wall = time.time() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = (busy_ticks() - busy0) / HZ
    r = parse_wrk(out)
    r["cpu"] = {k: cpu_delta(before[k], cpu_ticks(group(p))) for k, p in groups.items() if p}
    # wrk is our child: its CPU shows in RUSAGE_CHILDREN once it is reaped.
    r["cpu"]["wrk"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    if nginx and backend:
        r["cpu"]["other"] = max(0.0, busy - sum(r["cpu"].values()))
    r["wall"] = wall
    return r


def proc_fields(path, keys):
    """kB of the "Key: N kB" fields `keys` of a /proc file (0 for a process gone meanwhile)."""
    r = dict.fromkeys(keys, 0)
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in r:
                    r[k] = int(v.split()[0])
    except OSError:
        pass
    return r


def mem_of(pid, keys=("Rss", "Pss")):
    """kB of the smaps_rollup fields `keys`."""
    return proc_fields(f"/proc/{pid}/smaps_rollup", keys)


def memory(master):
    """{kind: [smaps]} for master, zygote(s) and workers of one backend."""
    groups = {}
    for p in group(master):
        t = title(p)
        kind = ("master" if p == master.pid else "zygote" if ": zygote " in t
                else "worker" if ": pool " in t else "other (" + t[:30] + ")")
        groups.setdefault(kind, []).append(mem_of(p))
    return groups


# ---------------------------------------------------------------- worker-mode memory

def proc_status(pid, keys=("VmRSS", "RssAnon")):
    """kB of /proc/PID/status fields."""
    return proc_fields(f"/proc/{pid}/status", keys)


def wrk_count(url, n):
    """wrk until ~n responses, not for a duration: each thread stops after its share
    (the connections' in-flight requests more or less) and says so in a file; once
    all have, wrk gets SIGINT, which ends its run early and prints the usual report
    (thread:stop() alone leaves wrk sleeping until -d)."""
    threads = 2
    lua, mark = f"{tmp}/count.lua", f"{tmp}/count.done"
    if os.path.exists(mark):
        os.unlink(mark)
    write(lua, f"""
local limit, n = {-(-n // threads)}, 0
function response(status, headers, body)
    n = n + 1
    if n == limit then
        local f = io.open("{mark}", "a")
        f:write("done\\n")
        f:close()
        wrk.thread:stop()
    end
end
""")
    # -d only bounds a stalled backend (no answers, no stop)
    argv = ["wrk", f"-t{threads}", f"-c{min(CONNS, max(threads, n))}", f"-d{max(60, n // 10)}s",
            "--timeout", WRK_TIMEOUT, "--latency", "-s", lua, url]
    t0 = time.time()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while p.poll() is None:
        try:
            with open(mark) as f:
                if f.read().count("done") >= threads:
                    p.send_signal(signal.SIGINT)
                    break
        except OSError:
            pass
        time.sleep(0.05)
    out = p.communicate()[0]
    r = parse_wrk(out)
    m = re.search(r"(\d+) requests in", out)
    r["requests"] = int(m.group(1)) if m else 0
    r["wall"] = time.time() - t0
    return r


def status_requests(base, b):
    """pid -> requests served, from the pool's status page (json, full); {} if the
    page does not answer (the RSS report then shows no counts)."""
    st, txt = fetch(f"{base}/{b}-status?json&full")
    try:
        return {int(p["pid"]): int(p["requests"]) for p in json.loads(txt)["processes"]}
    except (ValueError, KeyError, TypeError):
        return {}


def worker_memory(master, www, raw, fails, ngerr, keepalive):
    """WORKER_MEMORY: a fresh worker-mode pool ("wmm", its own master, 4 workers,
    never recycled) behind nginx (keep-alive: see main()): WORKER_MEMORY_WARMUP requests, then
    RSS of each worker (VmRSS and RssAnon, /proc/PID/status; workers found by their
    title "lowphp-fpm: pool worker"), then WORKER_MEMORY requests in
    WORKER_MEMORY_STEPS steps with RSS after each. The answer must still be the
    classic bootstrap.php's body at the end (nothing leaked into it)."""
    res = {"n": WORKER_MEMORY, "warmup": WORKER_MEMORY_WARMUP, "samples": [], "runs": [],
           "requests0": {}, "requests1": {}, "keepalive": keepalive}
    name = "nginx-mem"
    ng, port = start_nginx(name, keepalive, www, ["low", "wmm"])
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/wmm/bootstrap.php"
    where = f"{NAMES['wmm']} {WORKER_SCRIPT}"
    try:
        st, classic = fetch(f"{base}/low/bootstrap.php")
        classic = classic if st == 200 else None
        bad = worker_body_fails(f"{where} before the memory run", *fetch(url), classic)
        if bad:
            fails.extend(bad)
            return None
        log(f"worker memory: warm-up {WORKER_MEMORY_WARMUP} requests")
        warm = wrk_count(url, WORKER_MEMORY_WARMUP)
        raw.append(f"=== worker memory warm-up\n{warm['raw']}")
        pids = workers(master)
        res["pids"] = pids
        res["requests0"] = status_requests(base, "wmm")
        res["samples"].append((0, {p: proc_status(p) for p in pids}))
        done = 0
        for k in range(1, WORKER_MEMORY_STEPS + 1):
            chunk = WORKER_MEMORY * k // WORKER_MEMORY_STEPS - WORKER_MEMORY * (k - 1) // WORKER_MEMORY_STEPS
            if master.poll() is not None:
                fails.append(f"{NAMES['wmm']} master exited (code {master.returncode}) "
                             f"after {done} of {WORKER_MEMORY} requests")
                break
            r = wrk_count(url, chunk)
            done += r["requests"]
            res["runs"].append(r)
            raw.append(f"=== worker memory step {k}\n{r['raw']}")
            res["samples"].append((done, {p: proc_status(p) for p in workers(master)}))
            rss = [v["VmRSS"] / 1024 for v in res["samples"][-1][1].values()]
            log(f"worker memory: {done} requests, {r['rps']:.0f} req/s, errors {r['errors']}, "
                f"VmRSS MB " + " ".join(f"{v:.1f}" for v in rss))
        res["requests1"] = status_requests(base, "wmm")
        res["done"] = done
        if done < 0.95 * WORKER_MEMORY:
            fails.append(f"{NAMES['wmm']}: only {done} of the {WORKER_MEMORY} requests answered "
                         "(each step is bounded in time)")
        res["end_pids"] = workers(master)
        if res["end_pids"] != pids:
            why = [l for l in tail(f"{tmp}/wmm.log", 200).splitlines() if "exited" in l]
            fails.append(f"{NAMES['wmm']}: workers changed during the memory run (respawned?): "
                         f"{pids} -> {res['end_pids']}" + "".join(f"\n    {l}" for l in why[-5:]))
        errs = sum(r["errors"] for r in res["runs"] if r["errors"] > 0)
        if errs or any(r["errors"] < 0 for r in res["runs"]):
            fails.append(f"{NAMES['wmm']}: {errs} errors during the memory run"
                         + (" (a wrk run failed)" if any(r["errors"] < 0 for r in res["runs"]) else ""))
        fails.extend(worker_body_fails(f"{where} after {done} requests", *fetch(url), classic))
        return res
    finally:
        stop(name, ng, signal.SIGQUIT)
        procs.remove((name, ng))
        for b, lines in nginx_errors(name, ["wmm"]).items():
            ngerr.setdefault(b, []).extend(f"[memory run] {l}" for l in lines)
        if ("wmm", master) in procs:
            stop("wmm", master)
            procs.remove(("wmm", master))


# ---------------------------------------------------------------- checks

def fetch(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except Exception as e:  # noqa: BLE001 - any failure is a failed check
        return 0, repr(e)


def body_ok(script, txt, upload_expect):
    if script == "json":
        try:
            return len(json.loads(txt)) == 100
        except ValueError:
            return False
    if script in ("bootstrap", WORKER_CELL):
        return MARKER in txt
    return txt.strip() == {"hello": "hello", "slow": "slow", "upload": upload_expect}[script]


def first_diff(a, b):
    i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
    return f"differs at byte {i} of {len(a)} / {len(b)}: {a[max(0, i - 20):i + 40]!r} vs {b[max(0, i - 20):i + 40]!r}"


def worker_body_fails(where, st, txt, classic):
    """The worker-mode answer must be the classic bootstrap.php's body, byte for byte
    (`classic`: lowphp's own classic answer: same interpreter, same php.ini)."""
    if st != 200:
        return [f"{where}: status {st}, body {txt[:200]!r}"]
    if classic is None or MARKER not in classic:
        return [f"{where}: no correct classic bootstrap.php answer to compare with ({classic!r:.200})"]
    if txt != classic:
        return [f"{where}: not the classic bootstrap.php body: {first_diff(txt, classic)}"]
    return []


def check(base, body, upload_expect, mode, up):
    """Correctness only: status 200 and the expected body from every backend x script
    (`up`: the backends that are running). The worker cell's lowphp side must answer
    exactly what lowphp's classic bootstrap.php answers (a request without a body
    never reaches that side otherwise)."""
    fails = []
    classic = None
    if WORKER_CELL in SCRIPTS:
        st, txt = fetch(f"{base}/low/bootstrap.php")
        classic = txt if st == 200 else None
        st, fpm_txt = fetch(f"{base}/fpm/bootstrap.php")
        if classic is not None and st == 200 and fpm_txt != classic:
            log(f"  note: php-fpm's and lowphp's classic bootstrap.php differ ({first_diff(classic, fpm_txt)})")
    for b in BACKENDS:
        for s in SCRIPTS:
            loc, path = cell_target(s, b)
            if loc not in up:
                continue
            if s == WORKER_CELL and loc != b:
                st, txt = fetch(f"{base}/{loc}/{path}")
                f = worker_body_fails(f"{mode} {NAMES[loc]} {path} (worker.script {WORKER_SCRIPT})",
                                      st, txt, classic)
                log(f"  check {mode:13} {NAMES[loc]:8} {s:10} {'FAIL' if f else 'ok'}")
                fails += f
                continue
            if s == "upload":
                st, txt = fetch(f"{base}/{b}/upload.php", body,
                                {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
            else:
                st, txt = fetch(f"{base}/{b}/{path}")
            ok = st == 200 and body_ok(s, txt, upload_expect)
            log(f"  check {mode:13} {NAMES[b]:8} {s:10} {'ok' if ok else 'FAIL'}")
            if not ok:
                fails.append(f"{mode} {NAMES[b]} {path}: status {st}, body {txt[:200]!r}")
    return fails


def nginx_errors(name, backends):
    """nginx error-log lines of level error and worse per backend (upstream resets,
    502s...), by request path."""
    per = {b: [] for b in backends}
    for line in tail(f"{tmp}/{name}.error.log", 100000).splitlines():
        if not re.search(r"\[(error|crit|alert|emerg)\]", line):
            continue
        for b in backends:
            if f"/{b}/" in line or f"/{b}-status" in line or f"/{b}.sock" in line:
                per[b].append(line)
                break
    return per


# ---------------------------------------------------------------- report

def fmt_ms(v):
    if v != v:
        return "-"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def summarize(runs):
    rps = [r["rps"] for r in runs]
    med = statistics.median(rps)
    spread = f" ({min(rps):.0f}–{max(rps):.0f})" if len(rps) > 1 else ""
    p50 = statistics.median(r["p50"] for r in runs)
    p99 = statistics.median(r["p99"] for r in runs)
    errs = "?" if any(r["errors"] < 0 for r in runs) else str(sum(r["errors"] for r in runs))
    # Closed loop: 32 connections always busy means a mean latency of 32 / req/s (Little's
    # law). A p50 far below that means some connections got (almost) no answers during
    # the run, and wrk only records answered requests: flag it.
    starved = " †" if med and p50 < 0.5 * (CONNS / med * 1000) else ""
    return med, f"{med:.0f}{spread}", f"{fmt_ms(p50)} / {fmt_ms(p99)}{starved}", errs


def backend_wait(runs):
    """'p99 / max' of the backend's share of the latency, medians over runs."""
    runs = [r for r in runs if r.get("up_n")]
    if not runs:
        return "-"
    return " / ".join(fmt_ms(statistics.median(r[k] for r in runs)) for k in ("up_p99", "up_max"))


def paired_spread(fpm_runs, low_runs):
    """min–max of low/fpm over the interleaved pairs of runs (run i of each). A
    slow spell of the machine that lasts a pair moves both of its runs, so when
    even this spread stays on one side of 1.0 the difference is the backends'."""
    pairs = [l["rps"] / f["rps"] for f, l in zip(fpm_runs, low_runs) if f["rps"] > 0]
    if len(pairs) < 2:
        return "-"
    return f"{min(pairs):.2f}–{max(pairs):.2f}"


def other_pct(runs):
    """Median share of the machine's CPU that went to processes not in the benchmark."""
    v = [r["cpu"]["other"] / (r["wall"] * os.cpu_count()) * 100 for r in runs if "other" in r["cpu"]]
    return statistics.median(v) if v else float("nan")


def idle_pct(runs):
    """Median share of the machine's CPU nobody used during the run: a backend that
    leaves cores idle while 32 connections wait is starving them, not saturated."""
    v = [100 - sum(r["cpu"].values()) / (r["wall"] * os.cpu_count()) * 100
         for r in runs if "other" in r["cpu"]]
    return max(0.0, statistics.median(v)) if v else float("nan")


def us_per_req(runs, key):
    """Median over runs of CPU µs per request spent by one process group."""
    v = [r["cpu"][key] / max(r["rps"] * r["wall"], 1) * 1e6 for r in runs if key in r["cpu"]]
    return statistics.median(v) if v else float("nan")


def odd_runs(results):
    """Runs that answered nothing (a stall: wrk counts no timeout for a request still
    unanswered when the run ends) or far less than the other runs of their cell."""
    out = []
    for (mode, s, b), runs in results.items():
        med = statistics.median(r["rps"] for r in runs)
        for i, r in enumerate(runs):
            where = f"{mode} {s} {NAMES[b]} run {i + 1}"
            if r["errors"] >= 0 and r["rps"] == 0:
                out.append(f"{where}: no request answered during the whole run (stalled), "
                           f"backend CPU {r['cpu'].get('backend', 0):.2f} s")
            elif r["rps"] < 0.5 * med:
                out.append(f"{where}: {r['rps']:.0f} req/s, under half the cell's median {med:.0f}")
    return out


def sh(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def header(args, bins, dur, runs, quick, opcache, ceiling, waited):
    cpu_model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    git = sh(["git", "-C", REPO, "log", "-1", "--format=%h %s"])
    changed = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src", "include"],
                             capture_output=True, text=True).stdout.strip()
    dirty = " + uncommitted changes in src/" if changed else ""
    lines = [
        f"# lowphp-fpm vs php-fpm 8.2{' (quick)' if quick else ''}", "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- nproc: {os.cpu_count()}, CPU: {cpu_model}, kernel: {platform.release()}, "
        f"load average at the end: {open('/proc/loadavg').read().split()[0]}",
        f"- php-fpm: {sh([bins['fpm'], '-v'])}",
        f"- lowphp-fpm: `{args.bin}`: {sh([bins['low'], '-v'])}; git {git}{dirty}",
        f"- {sh(['nginx', '-v'])}; {sh(['wrk', '-v'])}",
        f"- opcache: php-fpm {opcache.get('fpm', '?')!r}, lowphp {opcache.get('low', '?')!r} "
        "(one php.ini for both, passed with -c; JIT off)",
        f"- load: `wrk -t2 -c{CONNS} -d{dur}s --timeout {WRK_TIMEOUT} --latency`, {runs} run(s) per cell, "
        f"interleaved php-fpm/lowphp, alternating which goes first; pools pm=static, {WORKERS} workers; nginx worker_processes 2; "
        "wrk, nginx and both backends share the same cores",
        "- req/s: median (min–max) over runs; ratio: of the medians; run by run: min–max of "
        "lowphp/php-fpm over each interleaved pair of runs; p50 / p99 in ms: medians over runs; "
        "errors: non-2xx/3xx + socket errors (connect/read/write/timeout), summed over runs",
        f"- † after p50 / p99: p50 is under half the mean latency the closed loop implies "
        f"({CONNS} connections ÷ req/s): some connections were starved (waited in the backlog, "
        "e.g. behind php-fpm workers pinned to other kept-alive nginx connections) and wrk "
        "records only answered requests, so the percentiles flatter that backend",
        "- p50 / p99 are wrk's, which corrects them for coordinated omission (a response that took "
        "L also counts for the requests its connection could not send meanwhile, one per mean "
        "interval between requests: a single 30 ms stall at a 3 ms mean weighs ~10 samples)",
        "- backend p99 / max: nginx's `$upstream_header_time` of the answered requests (medians "
        "over runs), from nginx starting on a request (connect and backlog included) to the "
        "backend's response header, 1 ms resolution, not corrected: the part of the latency the "
        "backend owns; a connection starved in the backlog shows in the max",
        f"- before each run, waited for other load on the machine to drop below 25% "
        f"(at most {0 if quick else QUIET_WAIT} s per run): {waited:.0f} s in all; "
        "what remained shows as \"other %\" in the CPU table",
        "- raw wrk output: `bench/results/" + ("quick" if quick else "latest") + "-raw.txt`",
    ]
    if ceiling:
        lines.append(f"- nginx ceiling (`return 200 \"hello\"`): {ceiling['rps']:.0f} req/s, "
                     f"p50 {fmt_ms(ceiling['p50'])} / p99 {fmt_ms(ceiling['p99'])} ms")
    return lines


def worker_cell_note(mode, results, worker_real):
    """Under the table: what the bootstrap-worker row compares, and issue 21's target
    (worker mode >= 5x php-fpm's classic req/s at equal workers, p99 no worse)."""
    f, l = results[(mode, WORKER_CELL, "fpm")], results[(mode, WORKER_CELL, "low")]
    fm, lm = statistics.median(r["rps"] for r in f), statistics.median(r["rps"] for r in l)
    fp, lp = statistics.median(r["p99"] for r in f), statistics.median(r["p99"] for r in l)
    ratio = lm / fm if fm else float("nan")
    met = ratio >= 5 and lp <= fp
    note = (f"{WORKER_CELL}: php-fpm runs the classic bootstrap.php, lowphp a worker-mode pool "
            f"(`worker.script` = {WORKER_SCRIPT}: bootstrap.php's boot once per worker, its request part "
            f"per request, the same body), {WORKERS} workers each, same nginx and load. Issue 21's target "
            f"(req/s ≥ 5× php-fpm's, p99 no worse): ratio {ratio:.2f}, p99 {fmt_ms(lp)} vs {fmt_ms(fp)} ms: "
            f"**{'met' if met else 'not met'}**")
    if not worker_real:
        note += (" — LOWPHP_BIN is not lowphp-fpm: its side ran the classic bootstrap.php "
                 "(a harness check, not a worker-mode measurement)")
    return note


def worker_memory_report(w, worker_real):
    mb = lambda kb: f"{kb / 1024:.1f}"                     # noqa: E731
    dmb = lambda kb: f"{kb / 1024:+.2f}"                   # noqa: E731
    runs = w["runs"]
    wall = sum(r["wall"] for r in runs)
    errs = "?" if any(r["errors"] < 0 for r in runs) else sum(r["errors"] for r in runs)
    lines = ["", f"## Worker mode: memory per worker over {w.get('done', 0)} requests (WORKER_MEMORY={w['n']})", "",
             f"A fresh worker-mode pool (its own master; `worker.script` = {WORKER_SCRIPT}, pm=static, "
             f"{WORKERS} workers, worker.max_requests = 0, no pm.max_memory) behind nginx "
             f"{'with keep-alive (upstream keepalive 4, fastcgi_keep_conn on)' if w['keepalive'] else 'without keep-alive'}; "
             f"`wrk -t2 -c{CONNS}`: {w['warmup']} requests of warm-up, then start = RSS of each worker, then "
             f"{w['n']} requests in {WORKER_MEMORY_STEPS} steps with RSS after each; end = after the last. "
             f"VmRSS and RssAnon (the heap: anonymous pages, where a leak shows; VmRSS also counts the opcache "
             f"SHM and library pages a worker touches) from /proc/PID/status. Requests per worker: the pool's "
             f"status page, over the measured part. Load: {w.get('done', 0) / wall if wall else 0:.0f} req/s, "
             f"errors {errs}. Mid = RSS after half of the steps: mid → end is growth after warm-up effects.",
             ""]
    if not worker_real:
        lines += ["LOWPHP_BIN is not lowphp-fpm: the pool ran the classic bootstrap.php "
                  "(a harness check, not a worker-mode measurement).", ""]
    lines += ["| worker pid | requests | VmRSS start MB | VmRSS end MB | Δ start→end | Δ mid→end "
              "| RssAnon start MB | RssAnon end MB | Δ start→end | VmRSS after each step (MB) |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    samples = w["samples"]
    if not samples:
        return lines + ["", "(no measurement)"]
    start = samples[0][1]
    mid = samples[len(samples) // 2][1]
    end = samples[-1][1]
    tot = {"d": 0, "dm": 0, "da": 0, "n": 0}
    for pid in sorted(set(start) | set(end)):
        if pid in w["requests1"] and pid in w["requests0"]:
            served = str(w["requests1"][pid] - w["requests0"][pid])
        else:
            served = "-"
        if pid not in start or pid not in end:
            lines.append(f"| {pid} | {served} | {mb(start[pid]['VmRSS']) if pid in start else '-'} | "
                         f"{mb(end[pid]['VmRSS']) if pid in end else '-'} | - | - | - | - | - | "
                         f"{'started' if pid not in start else 'gone'} during the run |")
            continue
        s0, s1, sm = start[pid], end[pid], mid.get(pid, end[pid])
        d, dm, da = s1["VmRSS"] - s0["VmRSS"], s1["VmRSS"] - sm["VmRSS"], s1["RssAnon"] - s0["RssAnon"]
        tot["d"] += d
        tot["dm"] += dm
        tot["da"] += da
        tot["n"] += 1
        trend = " ".join(mb(sm_[1][pid]["VmRSS"]) if pid in sm_[1] else "-" for sm_ in samples)
        lines.append(f"| {pid} | {served} | {mb(s0['VmRSS'])} | {mb(s1['VmRSS'])} | {dmb(d)} | {dmb(dm)} | "
                     f"{mb(s0['RssAnon'])} | {mb(s1['RssAnon'])} | {dmb(da)} | {trend} |")
    if tot["n"]:
        n = tot["n"]
        lines.append(f"| **mean** | | | | **{dmb(tot['d'] / n)}** | **{dmb(tot['dm'] / n)}** | | | "
                     f"**{dmb(tot['da'] / n)}** | |")
    return lines


def report(args, bins, dur, runs, quick, opcache, ceiling, waited, results, mem, ngerr, fails, dead,
           worker_real=True, wmem=None):
    lines = header(args, bins, dur, runs, quick, opcache, ceiling, waited)
    for mode, _ in MODES:
        rows = [s for s in SCRIPTS if (mode, s, "fpm") in results and (mode, s, "low") in results]
        if not rows:
            continue
        lines += ["", f"## {MODE_TITLES[mode]}", "",
                  "| script | php-fpm req/s | lowphp req/s | ratio low/fpm | run by run "
                  "| php-fpm p50 / p99 ms | lowphp p50 / p99 ms | php-fpm backend p99 / max ms "
                  "| lowphp backend p99 / max ms | errors fpm / low |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for s in rows:
            fm, fr, fl, fe = summarize(results[(mode, s, "fpm")])
            lm, lr, ll, le = summarize(results[(mode, s, "low")])
            ratio = f"{lm / fm:.2f}" if fm else "-"
            pairs = paired_spread(results[(mode, s, "fpm")], results[(mode, s, "low")])
            up = " | ".join(backend_wait(results[(mode, s, b)]) for b in BACKENDS)
            lines.append(f"| {s} | {fr} | {lr} | **{ratio}** | {pairs} | {fl} | {ll} | {up} | {fe} / {le} |")
        if WORKER_CELL in rows:
            lines += ["", worker_cell_note(mode, results, worker_real)]

    odd = odd_runs(results)
    if odd:
        lines += ["", "## Odd runs", ""] + [f"- {o}" for o in odd]

    if results:     # (SCRIPTS= with WORKER_MEMORY: no cells, only the memory run)
        lines += ["", "## CPU per request (µs, median over runs; /proc utime+stime of each process group)", "",
                  "Backend = master + zygote + workers; nginx = master + workers; wrk = the load "
                  "generator; other = busy CPU of everything else on the machine meanwhile, in % of all "
                  "cores (kernel threads, other builds or tests: if it is large, the run was disturbed); "
                  "idle = CPU nobody used during the run, in % of all cores.", "",
                  "| mode | script | php-fpm backend | lowphp backend | ratio low/fpm "
                  "| nginx (fpm / low) | wrk (fpm / low) | other % (fpm / low) | idle % (fpm / low) |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for mode, _ in MODES:
            for s in SCRIPTS:
                if (mode, s, "fpm") not in results or (mode, s, "low") not in results:
                    continue
                f, lw = results[(mode, s, "fpm")], results[(mode, s, "low")]
                fb, lb = us_per_req(f, "backend"), us_per_req(lw, "backend")
                # A cell with no answered request (php-fpm's pinned workers can stall every
                # kept connection for a whole short run) has no CPU per request.
                ratio = f"{lb / fb:.2f}" if fb > 0 and lb == lb else "-"
                lines.append(f"| {mode} | {s} | {fb:.0f} | {lb:.0f} | {ratio} | "
                             f"{us_per_req(f, 'nginx'):.0f} / {us_per_req(lw, 'nginx'):.0f} | "
                             f"{us_per_req(f, 'wrk'):.0f} / {us_per_req(lw, 'wrk'):.0f} | "
                             f"{other_pct(f):.0f} / {other_pct(lw):.0f} | "
                             f"{idle_pct(f):.0f} / {idle_pct(lw):.0f} |")

        lines += ["", "## Memory after all runs (smaps_rollup, MB)", "",
                  "| backend | process | count | RSS each (avg) | PSS each (avg) | PSS sum |",
                  "|---|---|---:|---:|---:|---:|"]
        totals = {}
        for b in mem:
            for kind, ms in mem[b].items():
                rss = [m["Rss"] for m in ms]
                pss = [m["Pss"] for m in ms]
                totals[b] = totals.get(b, 0) + sum(pss)
                lines.append(f"| {NAMES[b]} | {kind} | {len(ms)} | {statistics.mean(rss) / 1024:.1f} | "
                             f"{statistics.mean(pss) / 1024:.1f} | {sum(pss) / 1024:.1f} |")
            if b in totals:
                lines.append(f"| {NAMES[b]} | **total** (all processes) | | | | **{totals[b] / 1024:.1f}** |")
        if totals.get("fpm"):
            lines.append(f"\nPSS total ratio low/fpm: **{totals.get('low', 0) / totals['fpm']:.2f}**")

    if wmem:
        lines += worker_memory_report(wmem, worker_real)

    for b in NAMES:
        if ngerr.get(b):
            lines += ["", f"## nginx error log lines for {NAMES[b]} ({len(ngerr[b])}, last 5)", "", "```"] \
                + [l[:300] for l in ngerr[b][-5:]] + ["```"]
    for b in NAMES:
        if not os.path.exists(f"{tmp}/{b}.log"):
            continue
        errs = [l for l in tail(f"{tmp}/{b}.log", 500).splitlines()
                if "WARNING" in l or "ERROR" in l or "ALERT" in l]
        if errs or b in dead:
            lines += ["", f"## {NAMES[b]} error_log (warnings/errors, last 10)", "", "```"] \
                + (errs[-10:] if b not in dead else tail(f"{tmp}/{b}.log", 20).splitlines()) + ["```"]
    if fails:
        lines += ["", "## FAILURES", ""] + [f"- {f}" for f in fails]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main

def main():
    global tmp
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="lowphp-fpm binary")
    ap.add_argument("--quick", action="store_true", help="1 short run per cell + correctness asserts")
    args = ap.parse_args()
    quick = args.quick
    dur = int(os.environ.get("DUR", "2" if quick else "10"))
    runs = int(os.environ.get("RUNS", "1" if quick else "3"))

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    atexit.register(cleanup)

    tmp = tempfile.mkdtemp(prefix="lowphp-bench-")
    os.chmod(tmp, 0o755)     # workers and nginx read the scripts and sockets in here
    www, body, upload_expect = make_site()

    bins = {"fpm": shutil.which("php-fpm8.2") or "/usr/sbin/php-fpm8.2", "low": args.bin}
    bins["wm"] = bins["wmm"] = args.bin
    # LOWPHP_BIN=/usr/sbin/php-fpm8.2 (the harness check): no worker mode there, so the
    # worker pools run classic bootstrap.php, and the report says so.
    worker_real = "lowphp-fpm" in subprocess.run([args.bin, "-v"], capture_output=True,
                                                 text=True).stdout
    worker_kw = {"worker_script": f"{www}/{WORKER_SCRIPT}" if worker_real else None, "worker": True}
    masters, fails = {}, []

    def start_backend(b, fatal=True):
        write(f"{tmp}/{b}.conf", pool_conf(b, **(worker_kw if b in ("wm", "wmm") else {})))
        argv = [bins[b], "-F", "-R", "-y", f"{tmp}/{b}.conf", "-p", tmp, "-c", f"{tmp}/php.ini"]
        if fatal:
            masters[b] = start(b, argv, f"{tmp}/{b}.log", "ready to handle connections")
            return True
        p, why = start(b, argv, f"{tmp}/{b}.log", "ready to handle connections", fatal=False)
        if p is None:
            fails.append(f"{NAMES[b]} (worker.script {WORKER_SCRIPT}) did not start: {why}")
            log(f"!! {fails[-1]}")
            return False
        masters[b] = p
        return True

    for b in BACKENDS:
        start_backend(b)
    if WORKER_CELL in SCRIPTS:
        # Its own master, so its CPU, memory and workers are its own; a failure to
        # start (no worker mode yet) is a FAILURE, and the other cells still run.
        start_backend("wm", fatal=False)
    log(f"backends ready in {tmp}")
    up = list(masters)          # backends nginx routes to

    results, raw, dead, ngerr, opcache = {}, [], {}, {b: [] for b in up}, {}
    ceiling = None
    waited = 0.0
    first_workers = {b: workers(masters[b]) for b in up}

    def still_alive(b, where):
        """A backend whose master died is reported once and left out of later cells."""
        if b in dead:
            return False
        if masters[b].poll() is not None:
            dead[b] = where
            fails.append(f"{NAMES[b]} master exited (code {masters[b].returncode}) before {where}")
            log(f"!! {fails[-1]}\n{tail(f'{tmp}/{b}.log', 10)}")
            return False
        return True

    for mode, keepalive in (MODES if SCRIPTS else []):
        name = "nginx-ka" if keepalive else "nginx-plain"
        ng, port = start_nginx(name, keepalive, www, up)
        log_at = {b: 0 for b in up}     # where each backend's next run starts in its log
        base = f"http://127.0.0.1:{port}"

        for b in BACKENDS:
            opcache.setdefault(b, fetch(f"{base}/{b}/opcache.php")[1][:40])
        fails += check(base, body, upload_expect, mode, up)
        if fails and quick:
            break

        if ceiling is None:
            ceiling = wrk(f"{base}/ceiling", dur)
            log(f"ceiling: {ceiling['rps']:.0f} req/s")

        for s in SCRIPTS:
            lua = f"{tmp}/upload.lua" if s == "upload" else None
            for i in range(runs):
                # Interleaved, so drift hits both sides alike; who goes first
                # alternates, so whatever a run leaves behind (or a quiet start
                # gives) does not always favour the same side.
                for b in (BACKENDS if i % 2 == 0 else BACKENDS[::-1]):
                    # loc: the backend that serves this side (the worker cell's
                    # lowphp side is the worker-mode pool "wm")
                    loc, path = cell_target(s, b)
                    if loc not in masters or not still_alive(loc, f"{mode} {s} run {i + 1}"):
                        continue
                    waited += wait_quiet(0 if quick else QUIET_WAIT)
                    r = wrk(f"{base}/{loc}/{path}", dur, lua, ng, masters[loc])
                    time.sleep(0.3)        # nginx writes its buffered log lines (flush=100ms)
                    r["up_p99"], r["up_max"], r["up_n"], log_at[loc] = upstream_wait(
                        upstream_log(name, loc), log_at[loc])
                    r["pool"] = loc        # in the .json: "wm" = the worker-mode pool
                    results.setdefault((mode, s, b), []).append(r)
                    raw.append(f"=== {mode} {s} {NAMES[loc]} run {i + 1}\n{r['raw']}")
                    log(f"{mode:13} {s:10} {NAMES[b]:8} run {i + 1}: {r['rps']:9.0f} req/s "
                        f"p50 {fmt_ms(r['p50'])} p99 {fmt_ms(r['p99'])} ms "
                        f"backend p99 {fmt_ms(r['up_p99'])} max {fmt_ms(r['up_max'])} ms errors {r['errors']} "
                        f"cpu " + " ".join(f"{k} {v:.2f}s" for k, v in r["cpu"].items()))
                    if r["errors"] < 0:
                        log(r["raw"])

        stop(name, ng, signal.SIGQUIT)
        procs.remove((name, ng))
        for b, lines in nginx_errors(name, up).items():
            ngerr[b] += [f"[{mode}] {l}" for l in lines]

    mem = {}
    for b in up:
        if still_alive(b, "the memory measurement"):
            mem[b] = memory(masters[b])
            now = workers(masters[b])
            if now != first_workers[b]:
                # the master's own words on why (its log goes with the temp dir)
                why = [l for l in tail(f"{tmp}/{b}.log", 200).splitlines() if "exited" in l]
                fails.append(f"{NAMES[b]} workers changed during the run (respawned?): "
                             f"{first_workers[b]} -> {now}" + "".join(f"\n    {l}" for l in why[-5:]))

    wmem = None
    if WORKER_MEMORY > 0 and start_backend("wmm", fatal=False):
        # Keep-alive as in the keep-alive cells; not for php-fpm (the harness check):
        # when one wrk thread has its share and stops, nginx's idle kept connections pin
        # every php-fpm worker and the other thread's requests wait for fastcgi_read_timeout.
        wmem = worker_memory(masters["wmm"], www, raw, fails, ngerr, keepalive=worker_real)
    text = report(args, bins, dur, runs, quick, opcache, ceiling, waited, results, mem, ngerr, fails, dead,
                  worker_real, wmem)
    # BENCH_OUT: where the report goes (the test suite's smoke run keeps bench/results/ untouched)
    out = os.environ.get("BENCH_OUT") or os.path.join(REPO, "bench", "results", "quick.md" if quick else "latest.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    with open(out.replace(".md", "-raw.txt"), "w") as f:
        f.write("\n".join(raw))
    with open(out.replace(".md", ".json"), "w") as f:     # every run, for later analysis
        json.dump([{"mode": m, "script": sc, "backend": b,
                    **{k: v for k, v in r.items() if k != "raw"}}
                   for (m, sc, b), rs in results.items() for r in rs], f, indent=1)
    print(text)
    print(f"written to {out}")
    if fails:
        log("FAILURES:\n  " + "\n  ".join(fails))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
