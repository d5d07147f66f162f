#!/usr/bin/env python3
"""Driver for bench/run.sh: php8.2-fpm vs lowphp-fpm behind nginx, measured with wrk.

Everything it starts is tracked by pid and stopped on exit; the temp dir is removed.
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
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ["fpm", "low"]
NAMES = {"fpm": "php-fpm", "low": "lowphp"}
SCRIPTS = ["hello", "json", "bootstrap", "upload", "slow"]
MARKER = "LOWPHP-BENCH-BOOTSTRAP-MARKER-7f3a"
BOUNDARY = "----lowphpbench7MA4YWxkTrZu0gW"
UPLOAD_SIZE = 65536

procs = []          # [(name, Popen)] still to stop
tmp = None


# ---------------------------------------------------------------- processes

def log(*a):
    print(*a, file=sys.stderr, flush=True)


def descendants(root):
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop(name, p, sig=signal.SIGTERM, timeout=10):
    if p.poll() is not None:
        return
    kids = descendants(p.pid)
    try:
        p.send_signal(sig)
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        log(f"{name} (pid {p.pid}) did not stop, killing")
        p.kill()
        p.wait()
    for k in kids:           # anything the master left behind, by pid
        if alive(k):
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass


def cleanup():
    global tmp
    while procs:
        name, p = procs.pop()
        stop(name, p, signal.SIGQUIT if name.startswith("nginx") else signal.SIGTERM)
    if tmp and os.path.isdir(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
        tmp = None


def on_signal(sig, _frame):
    raise SystemExit(128 + sig)


def start(name, argv, logfile, ready=None, timeout=30):
    out = open(os.path.join(tmp, name + ".out"), "wb")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    procs.append((name, p))
    if ready:
        end = time.time() + timeout
        while time.time() < end:
            if p.poll() is not None:
                break
            try:
                with open(logfile, errors="replace") as f:
                    if ready in f.read():
                        return p
            except OSError:
                pass
            time.sleep(0.05)
        sys.exit(f"{name} did not become ready; log:\n" + tail(logfile) + tail(out.name))
    return p


def tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
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


# ---------------------------------------------------------------- fixtures

def write(path, text, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(text)


def make_site():
    www = os.path.join(tmp, "www")
    write(os.path.join(tmp, "php.ini"), "\n".join([
        "opcache.enable=1",
        "opcache.enable_cli=0",
        "opcache.validate_timestamps=0",
        "opcache.jit_buffer_size=0",
        "memory_limit=128M",
        "upload_max_filesize=8M",
        "post_max_size=16M",
        "display_errors=Off",
        "log_errors=On",
        f"error_log={tmp}/php-errors.log",
        ""]))
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
    write(f"{www}/opcache.php", """<?php
$s = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
echo ($s && $s['opcache_enabled']) ? "opcache on" : "opcache off";
""")
    # framework-shaped: 300 class files, 150 autoloaded per request
    for i in range(300):
        deps = "" if i % 2 else f"    public function dep() {{ return {i + 1}; }}\n"
        write(f"{www}/lib/App/Service{i:03d}.php", f"""<?php
namespace App;
class Service{i:03d}
{{
    private array $opts;
    public function __construct(array $opts = []) {{ $this->opts = $opts + ['name' => 'svc{i}', 'n' => {i}]; }}
    public function name(): string {{ return $this->opts['name']; }}
    public function value(): int {{ return $this->opts['n'] * 3 + strlen($this->opts['name']); }}
{deps}}}
""")
    routes = []
    for i in range(200):
        routes.append(f"    ['GET', '#^/section{i}/(?P<id>\\d+)/item/(?P<slug>[a-z-]+)$#', 'h{i}'],")
    write(f"{www}/bootstrap.php", """<?php
spl_autoload_register(function ($class) {
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
$sum = 0;
for ($i = 0; $i < 300; $i += 2) { $sum += $c->get("svc.$i")->value(); }   // 150 classes loaded
$routes = [
""" + "\n".join(routes) + """
];
$path = '/section199/4711/item/hello-world';
$match = null;
foreach ($routes as [$method, $re, $handler]) {
    if ($method === 'GET' && preg_match($re, $path, $m)) { $match = [$handler, $m['id'], $m['slug']]; break; }
}
$vars = [];
for ($i = 0; $i < 100; $i++) { $vars["v$i"] = "Value <$i> & \\"quoted\\" 'text' #$i"; }
ob_start();
echo "<!doctype html><html><head><title>Bench</title></head><body>\\n";
echo "<h1>", htmlspecialchars($match[0]), " id=", htmlspecialchars($match[1]), "</h1>\\n<ul>\\n";
foreach ($vars as $k => $v) { echo '<li class="', htmlspecialchars($k), '">', htmlspecialchars($v), "</li>\\n"; }
echo "</ul>\\n<p>sum=$sum classes=", count(get_declared_classes()), "</p>\\n";
echo "<footer>""" + MARKER + """</footer></body></html>\\n";
ob_end_flush();
""")
    # multipart upload body, 64 KB file
    rnd = random.Random(42)
    payload = bytes(rnd.getrandbits(8) for _ in range(UPLOAD_SIZE))
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
    return www, body, f"{UPLOAD_SIZE} {hashlib.md5(payload).hexdigest()}"


def pool_conf(name):
    return f"""[global]
pid = {tmp}/{name}.pid
error_log = {tmp}/{name}.log
daemonize = no

[www]
listen = {tmp}/{name}.sock
listen.mode = 0660
pm = static
pm.max_children = 4
pm.max_requests = 0
"""


def nginx_conf(name, port, keepalive, www):
    ups, locs = "", ""
    for b in BACKENDS:
        sock = f"unix:{tmp}/{b}.sock"
        if keepalive:
            ups += f"    upstream {b}_ka {{ server {sock}; keepalive 4; }}\n"
            target, extra = f"{b}_ka", "fastcgi_keep_conn on;"
        else:
            target, extra = sock, ""
        locs += f"""
        location /{b}/ {{
            rewrite ^/(fpm|low)(/.*)$ $2 break;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass {target};
            {extra}
        }}"""
    return f"""user root;
worker_processes 2;
daemon off;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}.error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/{name}-body;
    fastcgi_temp_path {tmp}/{name}-fastcgi;
    proxy_temp_path {tmp}/{name}-proxy;
    uwsgi_temp_path {tmp}/{name}-uwsgi;
    scgi_temp_path {tmp}/{name}-scgi;
    client_max_body_size 16m;
{ups}
    server {{
        listen 127.0.0.1:{port};
        root {www};
        location = /ceiling {{ return 200 "hello"; }}{locs}
    }}
}}
"""


# ---------------------------------------------------------------- measuring

def to_ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    n, u = float(m.group(1)), m.group(2)
    return n * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[u]


def wrk(url, dur, lua=None):
    argv = ["wrk", "-t2", "-c32", f"-d{dur}s", "--latency"]
    if lua:
        argv += ["-s", lua]
    argv.append(url)
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    r = {"rps": 0.0, "p50": float("nan"), "p99": float("nan"), "errors": 0, "raw": out}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        if m:
            r[key] = to_ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        r["errors"] += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["errors"] += sum(int(x) for x in m.groups())
    if not m and "Requests/sec" not in out:
        r["errors"] = -1
    return r


def cpu_ticks(pids):
    t = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
            fields = s[s.rindex(")") + 2:].split()
            t += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return t


def snapshot(pids):
    return {p: cpu_ticks([p]) for p in pids}


def delta(before, after):
    return sum(v - before.get(p, 0) for p, v in after.items())


def mem_of(pid):
    r = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Rss", "Pss"):
                    r[k] = int(v.split()[0])
    except OSError:
        pass
    return r


def title(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


# ---------------------------------------------------------------- checks

def fetch(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except Exception as e:  # noqa
        return 0, repr(e)


def check(port, body, upload_expect, mode):
    fails = []
    for b in BACKENDS:
        base = f"http://127.0.0.1:{port}/{b}/"
        for s in SCRIPTS:
            if s == "upload":
                st, txt = fetch(base + "upload.php", body,
                                {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
                ok = txt.strip() == upload_expect
            else:
                st, txt = fetch(base + s + ".php")
                if s == "hello":
                    ok = txt == "hello"
                elif s == "slow":
                    ok = txt == "slow"
                elif s == "json":
                    try:
                        ok = len(json.loads(txt)) == 100
                    except ValueError:
                        ok = False
                else:
                    ok = MARKER in txt
            ok = ok and st == 200
            log(f"  check {mode:13} {NAMES[b]:8} {s:10} {'ok' if ok else 'FAIL'}")
            if not ok:
                fails.append(f"{mode} {NAMES[b]} {s}: status {st}, body {txt[:200]!r}")
    return fails


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
    errs = sum(r["errors"] for r in runs)
    return med, f"{med:.0f}{spread}", f"{fmt_ms(p50)} / {fmt_ms(p99)}", errs


def main():
    global tmp
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    quick = args.quick
    dur = 2 if quick else int(os.environ.get("DUR", "8"))
    runs = 1 if quick else int(os.environ.get("RUNS", "3"))

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    atexit.register(cleanup)

    tmp = tempfile.mkdtemp(prefix="lowphp-bench-")
    os.chmod(tmp, 0o755)
    www, body, upload_expect = make_site()
    ini = f"{tmp}/php.ini"

    bins = {"fpm": shutil.which("php-fpm8.2") or "/usr/sbin/php-fpm8.2", "low": args.bin}
    masters = {}
    for b in BACKENDS:
        write(f"{tmp}/{b}.conf", pool_conf(b))
        masters[b] = start(b, [bins[b], "-F", "-R", "-y", f"{tmp}/{b}.conf", "-c", ini],
                           f"{tmp}/{b}.log", "ready to handle connections")
    log(f"backends ready in {tmp}")

    results = {}    # (mode, script, backend) -> [runs]
    raw = []
    cpu = {}
    ceiling = None
    fails = []
    opcache = {}
    for mode, keepalive in (("keep-alive", True), ("no keep-alive", False)):
        name = "nginx-ka" if keepalive else "nginx-plain"
        port = free_port()
        write(f"{tmp}/{name}.conf", nginx_conf(name, port, keepalive, www))
        for d in ("body", "fastcgi", "proxy", "uwsgi", "scgi"):
            os.makedirs(f"{tmp}/{name}-{d}", exist_ok=True)
        ng = start(name, ["nginx", "-p", tmp, "-c", f"{tmp}/{name}.conf"], None)
        wait_port(port)
        base = f"http://127.0.0.1:{port}"

        for b in BACKENDS:
            opcache[b] = fetch(f"{base}/{b}/opcache.php")[1]
        fails += check(port, body, upload_expect, mode)
        if fails and quick:
            break

        if ceiling is None:
            ceiling = wrk(f"{base}/ceiling", dur)
            log(f"ceiling: {ceiling['rps']:.0f} req/s")

        for s in SCRIPTS:
            lua = f"{tmp}/upload.lua" if s == "upload" else None
            for i in range(runs):
                for b in BACKENDS:
                    r = wrk(f"{base}/{b}/{s}.php", dur, lua)
                    results.setdefault((mode, s, b), []).append(r)
                    raw.append(f"=== {mode} {s} {NAMES[b]} run {i + 1}\n{r['raw']}")
                    log(f"{mode:13} {s:10} {NAMES[b]:8} run {i + 1}: {r['rps']:9.0f} req/s "
                        f"p50 {fmt_ms(r['p50'])} p99 {fmt_ms(r['p99'])} ms errors {r['errors']}")
                    if r["errors"] < 0:
                        log(r["raw"])

        if keepalive:
            # CPU split during one hello keep-alive run per backend
            for b in BACKENDS:
                ng_pids = [ng.pid] + descendants(ng.pid)
                be_pids = [masters[b].pid] + descendants(masters[b].pid)
                n0, b0 = snapshot(ng_pids), snapshot(be_pids)
                ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.time()
                r = wrk(f"{base}/{b}/hello.php", dur)
                wall = time.time() - t0
                ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                n1 = snapshot([ng.pid] + descendants(ng.pid))
                b1 = snapshot([masters[b].pid] + descendants(masters[b].pid))
                hz = os.sysconf("SC_CLK_TCK")
                cpu[b] = {
                    "nginx": delta(n0, n1) / hz,
                    "backend": delta(b0, b1) / hz,
                    "wrk": (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
                    "wall": wall, "rps": r["rps"], "reqs": r["rps"] * wall,
                }
                log(f"cpu {NAMES[b]}: {cpu[b]}")

        stop(name, ng, signal.SIGQUIT)
        procs.remove((name, ng))

    # memory, after all runs
    mem = []
    for b in BACKENDS:
        groups = {}
        for p in [masters[b].pid] + descendants(masters[b].pid):
            t = title(p)
            if p == masters[b].pid:
                kind = "master"
            elif "zygote" in t:
                kind = "zygote"
            elif "pool" in t:
                kind = "worker"
            else:
                kind = "other: " + t[:40]
            groups.setdefault(kind, []).append(mem_of(p))
        for kind, ms in groups.items():
            mem.append((NAMES[b], kind, ms))

    # ------------------------------------------------------------ report
    def run(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"
    cpu_model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    lines = [
        f"# lowphp-fpm vs php-fpm 8.2{' (quick)' if quick else ''}", "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- nproc: {os.cpu_count()}, CPU: {cpu_model}",
        f"- kernel: {platform.release()}",
        f"- PHP: {run([bins['fpm'], '-v']).splitlines()[0] if run([bins['fpm'], '-v']) else '?'}",
        f"- lowphp-fpm: {args.bin} (git {run(['git', '-C', REPO, 'rev-parse', '--short', 'HEAD'])})",
        f"- opcache: php-fpm {opcache.get('fpm', '?')!r}, lowphp {opcache.get('low', '?')!r}",
        f"- load: wrk -t2 -c32 -d{dur}s, {runs} run(s) per cell, interleaved php-fpm/lowphp; "
        "pools pm=static, max_children=4; nginx worker_processes 2",
        f"- req/s is the median (min–max); p50 / p99 in ms (medians over runs); "
        "errors = non-2xx + socket errors summed over runs (php-fpm / lowphp); wrk's default 2 s "
        "timeout applies and requests still queued when a run ends are not in the latency figures",
        "- raw wrk output: `bench/results/" + ("quick" if quick else "latest") + "-raw.txt`",
    ]
    if ceiling:
        lines.append(f"- nginx ceiling (`return 200`, keep-alive server): {ceiling['rps']:.0f} req/s, "
                     f"p50 {fmt_ms(ceiling['p50'])} / p99 {fmt_ms(ceiling['p99'])} ms")
    for mode in ("keep-alive", "no keep-alive"):
        title_ = {"keep-alive": "Keep-alive (upstream keepalive 4, fastcgi_keep_conn on)",
                  "no keep-alive": "No keep-alive (plain fastcgi_pass unix:)"}[mode]
        lines += ["", f"## {title_}", "",
                  "| script | mode | php-fpm req/s | lowphp req/s | ratio (low/fpm) | php-fpm p50/p99 ms | lowphp p50/p99 ms | errors |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for s in SCRIPTS:
            if (mode, s, "fpm") not in results:
                continue
            fm, fr, fl, fe = summarize(results[(mode, s, "fpm")])
            lm, lr, ll, le = summarize(results[(mode, s, "low")])
            ratio = f"{lm / fm:.2f}" if fm else "-"
            lines.append(f"| {s} | {mode} | {fr} | {lr} | {ratio} | {fl} | {ll} | {fe} / {le} |")
    lines += ["", "## Memory (after all runs)", "",
              "| backend | process | count | RSS avg MB | PSS avg MB | PSS sum MB |",
              "|---|---|---:|---:|---:|---:|"]
    for name, kind, ms in mem:
        rss = [m.get("Rss", 0) for m in ms]
        pss = [m.get("Pss", 0) for m in ms]
        lines.append(f"| {name} | {kind} | {len(ms)} | {statistics.mean(rss) / 1024:.1f} | "
                     f"{statistics.mean(pss) / 1024:.1f} | {sum(pss) / 1024:.1f} |")
    if cpu:
        lines += ["", "## CPU split (one hello.php keep-alive run per backend)", "",
                  "| backend | req/s | nginx CPU s | backend CPU s | wrk CPU s | backend µs/req | total µs/req |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for b in BACKENDS:
            c = cpu[b]
            reqs = max(c["reqs"], 1)
            tot = c["nginx"] + c["backend"] + c["wrk"]
            lines.append(f"| {NAMES[b]} | {c['rps']:.0f} | {c['nginx']:.2f} | {c['backend']:.2f} | "
                         f"{c['wrk']:.2f} | {c['backend'] / reqs * 1e6:.1f} | {tot / reqs * 1e6:.1f} |")
    if fails:
        lines += ["", "## Correctness FAILURES", ""] + [f"- {f}" for f in fails]
    for b in BACKENDS:
        errs = [l for l in tail(f"{tmp}/{b}.log", 200).splitlines()
                if "WARNING" in l or "ERROR" in l]
        if errs:
            lines += ["", f"## {NAMES[b]} log warnings (last {min(len(errs), 10)})", "", "```"] + errs[-10:] + ["```"]
    text = "\n".join(lines) + "\n"
    out = os.path.join(REPO, "bench", "results", "quick.md" if quick else "latest.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    with open(out.replace(".md", "-raw.txt"), "w") as f:
        f.write("\n".join(raw))
    print(text)
    print(f"written to {out}")
    if fails:
        log("correctness failures:\n  " + "\n  ".join(fails))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
