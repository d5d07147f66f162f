#!/usr/bin/env python3
"""Soak test driver for bench/soak.sh (issue "Reliability").

wrk through a private nginx against lowphp-fpm for DURATION seconds over a mixed
script set (hello, json_encode, a small multipart upload, a 50 ms sleep, sessions,
a write to stderr, fastcgi_finish_request), each through a kept-alive FastCGI
upstream and a plain one, with pm.max_requests set and a SIGUSR2 reload every
RELOAD_EVERY seconds. The load runs in segments of RELOAD_EVERY seconds, each with
one reload in its middle; after each segment the load stops for GAP seconds and
master and zygote are sampled (RSS, open fds, zombies) while nothing is in flight,
so the samples compare like with like.

Fails (exit 1, every failed check listed) on: wrk socket errors, any non-2xx status
or unexpected body (wrk's lua response hook), master / zygote RSS outside +-RSS_TOL %
or fd counts different between the sample after the first reload and the last one,
zombies under the master at the end, a master pid that changed or died, a reload that
did not complete, unexpected WARNING/ERROR/ALERT lines in the error log, PHP errors,
nginx errors, lost post-fastcgi_finish_request work, an unclean SIGQUIT shutdown.

Every process it starts is tracked by pid and stopped on exit (SIGINT/SIGTERM/SIGHUP
included); the temp dir is removed (SOAK_KEEP=1 keeps it). Python stdlib only.
"""
import atexit
import collections
import datetime
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from bench import descendants, proc_table, title  # noqa: E402  (process tree and cmdline, bench/bench.py)


def env_int(name, default):
    v = os.environ.get(name, "")
    try:
        return int(v) if v != "" else default
    except ValueError:
        sys.exit(f"soak: {name}={v!r} is not an integer")


DURATION = env_int("DURATION", 1800)        # seconds of load
RELOAD_EVERY = env_int("RELOAD_EVERY", 60)   # seconds between SIGUSR2 (0: none)
THREADS = env_int("THREADS", 2)
CONNS = env_int("CONNS", 8)
PM = os.environ.get("PM", "dynamic")
MAX_CHILDREN = env_int("MAX_CHILDREN", 6)
MAX_REQUESTS = env_int("MAX_REQUESTS", 200)
GAP = env_int("GAP", 3)                      # quiet seconds before each sample
RSS_TOL = float(os.environ.get("RSS_TOL", "5"))  # percent
RELOAD_TIMEOUT = 60
WRK_TIMEOUT = "10s"
POOL = "www"
BOUNDARY = "----lowphpsoak9Fq2XbT"
UPLOAD_SIZE = 4096
SCRIPTS = ["hello", "json", "upload", "sleep", "session", "stderr", "finish"]
PREFIXES = ["ka", "plain"]     # nginx: kept-alive upstream + fastcgi_keep_conn / plain fastcgi_pass
STDERR_LINE = "soak-stderr-line"

# error-log lines at WARNING or above that the soak itself provokes; anything else fails.
EXPECTED = [
    # stderr.php writes this line on purpose; catch_workers_output = yes logs it at WARNING
    ("stderr.php output (catch_workers_output)",
     re.compile(rf'WARNING: \[pool {POOL}\] child \d+ said into stderr: "{STDERR_LINE}"$')),
    # php-fpm's process-manager advisories: the soak keeps the pool saturated on purpose
    ("pm advisory: max_children reached",
     re.compile(rf"WARNING: \[pool {POOL}\] server reached (pm\.)?max_children setting \(\d+\), consider raising it$")),
    ("pm advisory: seems busy",
     re.compile(rf"WARNING: \[pool {POOL}\] seems busy \(you may need to increase pm\.start_servers, "
                r"or pm\.min/max_spare_servers\), spawning \d+ children, there are \d+ idle, and \d+ total children$")),
]
LEVEL_RE = re.compile(r"^\[[^\]]+\] (WARNING|ERROR|ALERT|CRIT\w*|EMERG\w*): ")

tmp = None
procs = []          # [(name, Popen)] to stop on exit, in start order
known = set()       # pids of the master's descendants ever seen (stopped by pid at exit)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def now():
    return datetime.datetime.now().strftime("%H:%M:%S")


# ------------------------------------------------------------------ /proc

def stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return {"state": rest[0], "ppid": int(rest[1]), "session": int(rest[3])}


def table():
    t = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = stat(int(d))
            if st:
                t[int(d)] = st
    return t


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def fds(pid):
    """Targets of the open fds of pid: {fd: target}."""
    out = {}
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                pass
    except OSError:
        return None
    return out


def fd_kind(target):
    m = re.match(r"(socket|pipe):\[", target)
    if m:
        return m.group(1)
    m = re.match(r"anon_inode:\[?([\w-]+)", target)
    if m:
        return "anon:" + m.group(1)
    # opcache's lock file has a random name per zygote (mkstemp in /tmp, then unlinked)
    target = re.sub(r"\.ZendSem\.\w+", ".ZendSem.XXXXXX", target)
    return target.replace(tmp or "\0", "$TMP")


def fd_summary(kinds):
    c = collections.Counter(kinds.values())
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items()))


def unix_sockets():
    """inode -> (state, local path, peer inode, {pids holding it}) from `ss -xanp`."""
    out = {}
    try:
        text = subprocess.run(["ss", "-xanp"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return out
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 8 or not f[5].isdigit():
            continue
        pids = {int(x) for x in re.findall(r"pid=(\d+)", line)}
        out[int(f[5])] = (f[1], f[4], int(f[7]) if f[7].isdigit() else 0, pids)
    return out


def classify(fdmap, workers, nginx_pids, socks, pipe_owners):
    """fd -> kind. What a fd is tied to decides whether it may vary between samples:
    'worker output pipe' (one pair per live worker, catch_workers_output) and 'nginx
    connection' (an idle kept-alive FastCGI connection the master holds for the next
    worker) follow the load; every other kind must stay the same."""
    kinds = {}
    for fd, t in fdmap.items():
        k = fd_kind(t)
        m = re.match(r"(socket|pipe):\[(\d+)\]", t)
        if k == "pipe" and m and pipe_owners.get(int(m.group(2)), set()) & workers:
            k = "worker output pipe"
        elif k == "socket" and m and int(m.group(2)) in socks:
            state, path, peer, _ = socks[int(m.group(2))]
            if state == "LISTEN":
                k = f"listening socket {path.replace(tmp or chr(0), '$TMP')}"
            elif peer == 0:
                k = "socket, peer closed"
            elif peer in socks and socks[peer][3] & nginx_pids:
                k = "nginx connection"
            else:
                k = "socket, internal"
        kinds[fd] = k
    return kinds


VARYING = ("worker output pipe", "nginx connection")


def fixed(kinds):
    return collections.Counter(k for k in kinds.values() if k not in VARYING)


# ------------------------------------------------------------------ processes

def start(name, argv, **kw):
    out = open(os.path.join(tmp, name + ".out"), "wb")
    p = subprocess.Popen(argv, stdout=kw.pop("stdout", out), stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True, **kw)
    out.close()
    procs.append((name, p))
    return p


def stop(name, p, sig, timeout=10):
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"soak: {name} (pid {p.pid}) did not stop after {signal.Signals(sig).name}, killing it")
            p.kill()
            p.wait()
    # whatever it left behind: its session (we started it with setsid) and pids we saw under it
    left = [q for q, st in table().items() if st["state"] != "Z" and st["session"] == p.pid]
    left += [q for q in known if q not in left and (stat(q) or {}).get("state", "Z") != "Z"
             and (stat(q) or {}).get("session") == p.pid]
    for q in left:
        try:
            os.kill(q, signal.SIGKILL)
        except OSError:
            pass
    return left


def cleanup():
    global tmp
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    while procs:
        name, p = procs.pop()
        stop(name, p, signal.SIGQUIT if name in ("nginx", "lowphp") else signal.SIGTERM)
    if tmp and os.path.isdir(tmp):
        if os.environ.get("SOAK_KEEP"):
            log(f"soak: SOAK_KEEP set, temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        tmp = None


def on_signal(sig, _frame):
    raise SystemExit(128 + sig)


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def tail(path, n=30):
    return "".join(read(path).splitlines(True)[-n:])


def write(path, data, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(data)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ------------------------------------------------------------------ fixtures

def make_site():
    www = f"{tmp}/www"
    for d in ("sessions", "uploads"):
        os.makedirs(f"{tmp}/{d}")
    write(f"{tmp}/php.ini", "\n".join([
        "error_reporting=E_ALL", "display_errors=Off", "log_errors=On", "html_errors=Off",
        f"error_log={tmp}/php-errors.log",
        "date.timezone=UTC", "output_buffering=4096", "memory_limit=128M",
        "upload_max_filesize=8M", "post_max_size=16M", f"upload_tmp_dir={tmp}/uploads",
        "opcache.enable=1", "opcache.enable_cli=0", "opcache.validate_timestamps=0",
        "opcache.jit=off", "opcache.jit_buffer_size=0",
        f"session.save_path={tmp}/sessions", "session.gc_probability=1", "session.gc_divisor=100",
        ""]))
    write(f"{www}/hello.php", '<?php echo "ok hello";')
    write(f"{www}/json.php", """<?php
$out = [];
for ($i = 0; $i < 100; $i++) {
    $out[] = ['id' => $i, 'name' => "User $i", 'email' => "user$i@example.com",
              'active' => $i % 3 !== 0, 'score' => $i * 1.5, 'tags' => ['alpha', 'beta', "t$i"],
              'address' => ['street' => "$i Main St", 'city' => 'Springfield', 'zip' => sprintf('%05d', $i * 7)]];
}
$j = json_encode($out);
header('Content-Type: application/json');
echo "ok json ", strlen($j), " ", md5($j), "\\n", $j;
""")
    write(f"{www}/upload.php", """<?php
$f = reset($_FILES);
if (!$f || $f['error'] !== UPLOAD_ERR_OK) { http_response_code(400); echo "no file"; exit; }
$data = file_get_contents($f['tmp_name']);
echo "ok upload ", strlen($data), " ", md5($data), " ", $_POST['field'] ?? '-';
""")
    write(f"{www}/sleep.php", '<?php usleep(50000); echo "ok sleep";')
    write(f"{www}/session.php", """<?php
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
$_SESSION['blob'] = str_repeat('s', 512);
echo "ok session ", $_SESSION['n'];
""")
    write(f"{www}/stderr.php", f"""<?php
file_put_contents('php://stderr', "{STDERR_LINE}\\n");
echo "ok stderr";
""")
    write(f"{www}/finish.php", f"""<?php
echo "ok finish";
fastcgi_finish_request();
usleep(20000);
file_put_contents('{tmp}/finish.count', "x\\n", FILE_APPEND | LOCK_EX);
""")
    payload = random.Random(7).randbytes(UPLOAD_SIZE)
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nsoak\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"blob.bin\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + payload + \
        f"\r\n--{BOUNDARY}--\r\n".encode()
    write(f"{tmp}/upload.body", body, "wb")
    return www, body, f"ok upload {UPLOAD_SIZE} {hashlib.md5(payload).hexdigest()} soak"


def write_lua(valid):
    entries = []
    for s in SCRIPTS:
        for p in PREFIXES:
            entries.append(f'  {{"{"POST" if s == "upload" else "GET"}", "/{p}/{s}.php", '
                           f'{"true" if s == "session" else "false"}}},')
    valid_lua = "\n".join(f'  [{lua_str(v)}] = true,' for v in sorted(valid))
    write(f"{tmp}/soak.lua", f"""-- generated by bench/soak.py: round robin over the scripts, counts statuses and bodies
local entries = {{
{chr(10).join(entries)}
}}
local valid = {{
{valid_lua}
}}
local ctype = "multipart/form-data; boundary={BOUNDARY}"
threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  statuses = {{}}
  names = {{}}
  bad = 0
  badsample = ""
  cookie = nil
  local f = assert(io.open("{tmp}/upload.body", "rb"))
  upload = f:read("*a")
  f:close()
end

function request()
  n = n + 1
  local e = entries[(n - 1) % #entries + 1]
  local h = {{}}
  if e[3] and cookie then h["Cookie"] = cookie end
  if e[1] == "POST" then
    h["Content-Type"] = ctype
    return wrk.format("POST", e[2], h, upload)
  end
  return wrk.format("GET", e[2], h)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local sc = headers["Set-Cookie"] or headers["set-cookie"]
  if sc then cookie = sc:match("^([^;]+)") end
  local first = (body or ""):match("^[^\\n]*") or ""
  local name = first:match("^ok (%a+)")
  if valid[first] or (name == "session" and first:match("^ok session %d+$")) then
    names[name] = (names[name] or 0) + 1
  else
    bad = bad + 1
    if badsample == "" then badsample = status .. " " .. first:sub(1, 200) end
  end
end

function done(summary, latency, requests)
  local st, nm, b, bs = {{}}, {{}}, 0, ""
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do st[k] = (st[k] or 0) + v end
    for k, v in pairs(t:get("names")) do nm[k] = (nm[k] or 0) + v end
    b = b + t:get("bad")
    if bs == "" then bs = t:get("badsample") end
  end
  for k, v in pairs(st) do io.write(string.format("SOAK status %s %d\\n", tostring(k), v)) end
  for k, v in pairs(nm) do io.write(string.format("SOAK name %s %d\\n", k, v)) end
  io.write(string.format("SOAK bad %d\\n", b))
  if bs ~= "" then io.write("SOAK badsample " .. bs .. "\\n") end
  local e = summary.errors
  io.write(string.format("SOAK requests %d\\n", summary.requests))
  io.write(string.format("SOAK errors connect %d read %d write %d status %d timeout %d\\n",
                         e.connect, e.read, e.write, e.status, e.timeout))
  io.write(string.format("SOAK latency_max_us %d\\n", latency.max))
  io.write(string.format("SOAK latency_p99_us %d\\n", latency:percentile(99)))
end
""")


def lua_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def pool_conf():
    pm = [f"pm = {PM}", f"pm.max_children = {MAX_CHILDREN}"]
    if PM == "dynamic":
        start_s = max(1, MAX_CHILDREN // 2)
        pm += [f"pm.start_servers = {start_s}", f"pm.min_spare_servers = {max(1, start_s - 1)}",
               f"pm.max_spare_servers = {max(start_s, MAX_CHILDREN - 2)}"]
    elif PM == "ondemand":
        pm += ["pm.process_idle_timeout = 10s"]
    return "\n".join([
        "[global]", f"pid = {tmp}/lowphp.pid", f"error_log = {tmp}/lowphp.log", "daemonize = no",
        "log_level = notice", "",
        f"[{POOL}]", f"listen = {tmp}/lowphp.sock", "listen.mode = 0660",
        *pm, f"pm.max_requests = {MAX_REQUESTS}",
        "catch_workers_output = yes", ""])


def nginx_conf(port, www):
    locs = ""
    for p in PREFIXES:
        target, extra = ("php_ka", "fastcgi_keep_conn on;") if p == "ka" else (f"unix:{tmp}/lowphp.sock", "")
        locs += f"""
        location /{p}/ {{
            rewrite ^/{p}(/.*)$ $1 break;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass {target};
            {extra}
        }}"""
    return f"""user root;
worker_processes 2;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx.error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format soak '$status $request_uri $upstream_status';
    access_log {tmp}/nginx.access.log soak buffer=64k flush=1s;
    client_body_temp_path {tmp}/ng-body;
    fastcgi_temp_path {tmp}/ng-fastcgi;
    proxy_temp_path {tmp}/ng-proxy;
    uwsgi_temp_path {tmp}/ng-uwsgi;
    scgi_temp_path {tmp}/ng-scgi;
    client_max_body_size 16m;
    client_body_buffer_size 64k;
    fastcgi_read_timeout 30s;
    upstream php_ka {{ server unix:{tmp}/lowphp.sock; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port};
        root {www};{locs}
    }}
}}
"""


# ------------------------------------------------------------------ the run

class Soak:
    def __init__(self, binary):
        self.binary = binary
        self.fails = []
        self.samples = []
        self.segments = []
        self.reloads = []       # seconds each reload took
        self.master = None
        self.nginx = None

    def fail(self, msg):
        self.fails.append(msg)
        log(f"soak: FAIL: {msg}")

    # -- processes
    def log_text(self):
        return read(f"{tmp}/lowphp.log")

    def wait_log(self, needle, mark, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in self.log_text()[mark:]:
                return True
            if self.master.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def master_ok(self, where):
        if self.master.poll() is not None:
            self.fail(f"master (pid {self.master.pid}) exited with code {self.master.returncode} {where}; "
                      f"error log tail:\n{tail(f'{tmp}/lowphp.log', 20)}")
            return False
        pidfile = read(f"{tmp}/lowphp.pid").strip()
        if pidfile and pidfile != str(self.master.pid):
            self.fail(f"pid file says {pidfile}, master started as {self.master.pid} ({where})")
        if "master process" not in title(self.master.pid):
            self.fail(f"pid {self.master.pid} is no longer lowphp-fpm's master ({where}): {title(self.master.pid)!r}")
            return False
        return True

    def family(self):
        t = proc_table()
        d = descendants(self.master.pid, t)
        known.update(d)
        zyg = [p for p in d if title(p).startswith(f"lowphp-fpm: zygote {POOL}")]
        workers = [p for p in d if title(p).startswith(f"lowphp-fpm: pool {POOL}")]
        zombies = [p for p in d if t[p][1] == "Z"]
        other = [p for p in d if p not in zyg and p not in workers and p not in zombies]
        return zyg, workers, zombies, other

    def reading(self):
        zyg, workers, zombies, other = self.family()
        mf = fds(self.master.pid) or {}
        zf = (fds(zyg[0]) or {}) if len(zyg) == 1 else {}
        ws = set(workers)
        pipe_owners = collections.defaultdict(set)
        for w in ws:
            for t in (fds(w) or {}).values():
                m = re.match(r"pipe:\[(\d+)\]", t)
                if m:
                    pipe_owners[int(m.group(1))].add(w)
        nginx_pids = set()
        if self.nginx and self.nginx.poll() is None:
            nginx_pids = {self.nginx.pid} | set(descendants(self.nginx.pid))
        socks = unix_sockets()
        return {"zygotes": zyg, "workers": sorted(workers), "zombies": zombies, "other": other,
                "master_fdmap": mf, "zygote_fdmap": zf,
                "master_kinds": classify(mf, ws, nginx_pids, socks, pipe_owners),
                "zygote_kinds": classify(zf, ws, nginx_pids, socks, pipe_owners)}

    def stable_reading(self, tries=15):
        """Readings 1 s apart until two in a row agree (same processes, same fds), so a
        worker being spawned or retired by the pm, or just exiting, is not sampled."""
        prev = self.reading()
        for _ in range(tries):
            time.sleep(1)
            cur = self.reading()
            if (cur["zygotes"], cur["workers"], cur["zombies"], cur["other"]) == \
                    (prev["zygotes"], prev["workers"], prev["zombies"], prev["other"]) and \
                    cur["master_kinds"] == prev["master_kinds"] and cur["zygote_kinds"] == prev["zygote_kinds"]:
                cur["stable"] = True
                return cur
            prev = cur
        prev["stable"] = False
        return prev

    def sample(self, label, load_s):
        r = self.stable_reading()
        zyg = r["zygotes"]
        s = dict(r, label=label, time=now(), load_s=load_s, reloads=len(self.reloads),
                 master_rss=rss_kb(self.master.pid), master_fds=len(r["master_fdmap"]),
                 zygote_rss=rss_kb(zyg[0]) if len(zyg) == 1 else None,
                 zygote_fds=len(r["zygote_fdmap"]) if len(zyg) == 1 else None)
        for who in ("master", "zygote"):
            s[f"{who}_fixed"] = sum(fixed(s[f"{who}_kinds"]).values())
        s["ngx_err"] = sum(1 for l in read(f"{tmp}/nginx.error.log").splitlines() if l.strip())
        s["master_wpipes"] = sum(1 for k in s["master_kinds"].values() if k == VARYING[0])
        s["master_ngx"] = sum(1 for k in s["master_kinds"].values() if k == VARYING[1])
        self.samples.append(s)
        log(f"soak: {s['time']} sample {label}: master RSS {s['master_rss']} kB fds {s['master_fds']} "
            f"(worker pipes {s['master_wpipes']}, nginx connections {s['master_ngx']}); "
            f"zygote {','.join(map(str, zyg)) or '-'} RSS {s['zygote_rss']} kB fds {s['zygote_fds']}; "
            f"workers {len(s['workers'])}, zombies {len(s['zombies'])}"
            + (f", other {s['other']}" if s['other'] else "") + ("" if s["stable"] else " (not stable)"))
        return s

    def reload(self, seg):
        if not self.master_ok(f"before reload {len(self.reloads) + 1}"):
            return False
        mark = len(self.log_text())
        t0 = time.monotonic()
        os.kill(self.master.pid, signal.SIGUSR2)
        ok = self.wait_log("ready to handle connections", mark, RELOAD_TIMEOUT)
        took = time.monotonic() - t0
        if not ok:
            self.fail(f"reload {len(self.reloads) + 1} (segment {seg}) not complete after {RELOAD_TIMEOUT} s "
                      f"(no 'ready to handle connections'); log since:\n{self.log_text()[mark:][-3000:]}")
            return False
        self.reloads.append(took)
        log(f"soak: {now()} reload {len(self.reloads)} done in {took:.2f} s")
        return self.master_ok(f"after reload {len(self.reloads)}")

    def wrk_segment(self, seg, dur, reload_at, url):
        w = subprocess.Popen(["wrk", f"-t{THREADS}", f"-c{CONNS}", f"-d{dur}s", "--timeout", WRK_TIMEOUT,
                              "-s", f"{tmp}/soak.lua", url],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             text=True, start_new_session=True)
        procs.append(("wrk", w))
        t0 = time.monotonic()
        for off in reload_at:
            delay = t0 + off - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if not self.reload(seg):
                break
        try:
            out = w.communicate(timeout=dur + 60)[0]
        except subprocess.TimeoutExpired:
            w.kill()
            out = w.communicate()[0]
            self.fail(f"wrk of segment {seg} did not finish {dur + 60} s after starting")
        procs.remove(("wrk", w))
        r = {"seg": seg, "dur": dur, "status": collections.Counter(), "names": collections.Counter(),
             "bad": 0, "badsample": "", "requests": 0, "errors": {}, "lat_max_ms": 0.0, "lat_p99_ms": 0.0,
             "raw": out}
        for line in out.splitlines():
            f = line.split()
            if not f or f[0] != "SOAK":
                continue
            if f[1] == "status":
                r["status"][int(f[2])] += int(f[3])
            elif f[1] == "name":
                r["names"][f[2]] += int(f[3])
            elif f[1] == "bad":
                r["bad"] = int(f[2])
            elif f[1] == "badsample":
                r["badsample"] = line.split(" ", 2)[2]
            elif f[1] == "requests":
                r["requests"] = int(f[2])
            elif f[1] == "errors":
                r["errors"] = {f[i]: int(f[i + 1]) for i in range(2, len(f) - 1, 2)}
            elif f[1] == "latency_max_us":
                r["lat_max_ms"] = int(f[2]) / 1000
            elif f[1] == "latency_p99_us":
                r["lat_p99_ms"] = int(f[2]) / 1000
        if "requests" not in out or not r["errors"]:
            self.fail(f"wrk segment {seg}: no summary from the lua script (exit {w.returncode}):\n{out[-2000:]}")
        sockerr = sum(v for k, v in r["errors"].items() if k != "status")
        log(f"soak: {now()} segment {seg}: {r['requests']} requests, socket errors {sockerr}, "
            f"non-2xx {sum(v for k, v in r['status'].items() if not 200 <= k < 300)}, bad bodies {r['bad']}, "
            f"p99 {r['lat_p99_ms']:.1f} ms, max {r['lat_max_ms']:.1f} ms")
        self.segments.append(r)

    def run(self):
        www, body, upload_expect = make_site()
        write(f"{tmp}/lowphp.conf", pool_conf())
        self.master = start("lowphp", [self.binary, "-F", "-R", "-y", f"{tmp}/lowphp.conf", "-p", tmp,
                                       "-c", f"{tmp}/php.ini"], cwd=tmp)
        if not self.wait_log("ready to handle connections", 0, 30):
            sys.exit(f"soak: lowphp-fpm did not start (exit {self.master.poll()}):\n"
                     f"{tail(f'{tmp}/lowphp.log')}{tail(f'{tmp}/lowphp.out')}")
        port = free_port()
        write(f"{tmp}/nginx.conf", nginx_conf(port, www))
        for d in ("body", "fastcgi", "proxy", "uwsgi", "scgi"):
            os.makedirs(f"{tmp}/ng-{d}", exist_ok=True)
        ng = self.nginx = start("nginx", ["nginx", "-p", tmp, "-c", f"{tmp}/nginx.conf", "-e", f"{tmp}/nginx.error.log"])
        base = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > end or ng.poll() is not None:
                    sys.exit(f"soak: nginx did not start:\n{tail(f'{tmp}/nginx.error.log')}{tail(f'{tmp}/nginx.out')}")
                time.sleep(0.05)

        # Every script answers through both locations before the load; their first lines
        # (deterministic except the session counter) are what the lua hook accepts.
        valid = set()
        for s in SCRIPTS:
            for p in PREFIXES:
                req = urllib.request.Request(f"{base}/{p}/{s}.php")
                if s == "upload":
                    req = urllib.request.Request(req.full_url, data=body, method="POST", headers={
                        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        first = r.read().decode(errors="replace").split("\n", 1)[0]
                        code = r.status
                except Exception as e:      # noqa: BLE001 - reported below
                    first, code = repr(e), None
                want_ok = (first == upload_expect if s == "upload" else
                           re.fullmatch(r"ok session \d+", first) if s == "session" else
                           first.startswith(f"ok {s}"))
                if code != 200 or not want_ok:
                    sys.exit(f"soak: /{p}/{s}.php answered {code} {first[:200]!r} before the load\n"
                             f"{tail(f'{tmp}/lowphp.log')}{tail(f'{tmp}/php-errors.log')}")
                if s != "session":
                    valid.add(first)
        write_lua(valid)

        # timeline in load seconds: segments of seg_len; reloads at RELOAD_EVERY/2 + k*RELOAD_EVERY
        seg_len = RELOAD_EVERY if 0 < RELOAD_EVERY <= DURATION / 2 else max(5, DURATION // 4)
        bounds, t = [], 0
        while t < DURATION:
            d = min(seg_len, DURATION - t)
            if d < 5 and bounds:      # a short tail joins the last segment
                bounds[-1] = (bounds[-1][0], bounds[-1][1] + d)
            else:
                bounds.append((t, d))
            t += d
        reload_times = []
        if RELOAD_EVERY > 0:
            t = RELOAD_EVERY / 2
            while t < DURATION:
                reload_times.append(t)
                t += RELOAD_EVERY
        log(f"soak: {now()} {len(bounds)} segments ({seg_len} s), {len(reload_times)} reloads planned, "
            f"temp dir {tmp}, nginx :{port}, master pid {self.master.pid}")

        self.sample("start", 0)
        for i, (s0, d) in enumerate(bounds, 1):
            offs = [min(max(1.0, rt - s0), d - 1.0) for rt in reload_times if s0 <= rt < s0 + d]
            self.wrk_segment(i, d, offs, base + "/")
            if not self.master_ok(f"after segment {i}"):
                break
            time.sleep(GAP)
            self.sample(f"seg {i}", s0 + d)
        return ng

    # -- checks
    def check(self, ng):
        reqs = sum(r["requests"] for r in self.segments)
        status = sum((r["status"] for r in self.segments), collections.Counter())
        names = sum((r["names"] for r in self.segments), collections.Counter())
        errs = collections.Counter()
        for r in self.segments:
            errs.update(r["errors"])
        sockerr = sum(v for k, v in errs.items() if k != "status")
        non2xx = sum(v for k, v in status.items() if not 200 <= k < 300)
        bad = sum(r["bad"] for r in self.segments)
        if sockerr:
            self.fail(f"wrk socket errors: {dict((k, v) for k, v in errs.items() if k != 'status')}")
        if non2xx:
            self.fail(f"non-2xx responses: {dict((k, v) for k, v in status.items() if not 200 <= k < 300)}")
        if bad:
            sample = next((r["badsample"] for r in self.segments if r["badsample"]), "")
            self.fail(f"{bad} responses with an unexpected body, first: {sample!r}")
        if reqs == 0:
            self.fail("no request answered")
        missing = [s for s in SCRIPTS if names[s] == 0]
        if missing and reqs:
            self.fail(f"scripts never answered under load: {missing}")

        # reloads: each one done, master pid the same (checked at every reload), log agrees
        planned = sum(1 for _ in self.reloads)
        text = self.log_text()
        in_progress = text.count("Reloading in progress")
        if in_progress != planned:
            self.fail(f"{planned} reloads completed but the log says 'Reloading in progress' {in_progress} times")

        # memory and fds: the sample after the first reload (or after segment 1 without reloads) vs the last
        seg_samples = [s for s in self.samples if s["label"] != "start"]
        base = next((s for s in seg_samples if s["reloads"] >= 1), None) if RELOAD_EVERY > 0 else \
            (seg_samples[0] if seg_samples else None)
        last = seg_samples[-1] if seg_samples else None
        if base is None or last is None or base is last:
            self.fail("not enough samples after the warm-up to compare (DURATION too short for RELOAD_EVERY?)")
        else:
            self.base, self.last = base, last
            for who in ("master", "zygote"):
                a, b = base[f"{who}_rss"], last[f"{who}_rss"]
                if a is None or b is None:
                    self.fail(f"{who} RSS not measured (zygotes at warm-up {base['zygotes']}, at the end {last['zygotes']})")
                elif abs(b - a) > a * RSS_TOL / 100:
                    self.fail(f"{who} RSS not flat: {a} kB after warm-up ({base['label']}), {b} kB at the end "
                              f"({(b - a) * 100 / a:+.1f} %, tolerance +-{RSS_TOL:g} %)")
                fa, fb = fixed(base[f"{who}_kinds"]), fixed(last[f"{who}_kinds"])
                if fa != fb:
                    diff = {k: fb[k] - fa[k] for k in set(fa) | set(fb) if fb[k] != fa[k]}
                    self.fail(f"{who} open fds not flat: {sum(fa.values())} after warm-up ({base['label']}), "
                              f"{sum(fb.values())} at the end (not counting worker output pipes and kept "
                              f"nginx connections); by kind (end - warm-up): {diff}")
            per = {s["label"]: (s["master_wpipes"], len(s["workers"])) for s in (base, last)}
            if any(wp != 2 * nw for wp, nw in per.values()):
                self.fail(f"master: worker output pipes are not 2 per live worker: {per} (pipes, workers)")
        # zombies at the end: give the master a moment to reap a child that just exited
        zombies = []
        for _ in range(30):
            _, _, zombies, _ = self.family()
            if not zombies:
                break
            time.sleep(0.1)
        if zombies:
            self.fail("zombie processes under the master at the end: " +
                      ", ".join(f"{p} (ppid {(stat(p) or {}).get('ppid')})" for p in zombies))
        if last and len(last["zygotes"]) != 1:
            self.fail(f"expected one zygote at the end, found {last['zygotes']}")
        if last and last["other"]:
            self.fail("unexpected processes under the master at the end: " +
                      ", ".join(f"{p} {title(p)!r}" for p in last["other"]))

        # lost work after fastcgi_finish_request: every answered finish.php appended its line
        ran = len(read(f"{tmp}/finish.count")) // 2
        self.finish_ran = ran
        if ran < names["finish"]:
            self.fail(f"fastcgi_finish_request: {names['finish']} answered, only {ran} ran to the end")

        # logs
        time.sleep(1.2)      # nginx's access log buffer (flush=1s)
        expected = collections.Counter()
        unexpected = []
        for line in text.splitlines():
            if not LEVEL_RE.match(line):
                continue
            msg = line.split("] ", 1)[1]
            for name, rx in EXPECTED:
                if rx.search(msg):
                    expected[name] += 1
                    break
            else:
                unexpected.append(line)
        self.expected_log = expected
        if unexpected:
            kinds = collections.Counter(re.sub(r"\d+", "N", l.split("] ", 1)[1]) for l in unexpected)
            self.fail(f"{len(unexpected)} unexpected WARNING/ERROR lines in the error log; by kind:\n" +
                      "\n".join(f"      {n} x {k[:300]}" for k, n in kinds.most_common(15)) +
                      "\n    first ones:\n" + "\n".join(f"      {l[:300]}" for l in unexpected[:5]))
        if expected[EXPECTED[0][0]] == 0 and names["stderr"]:
            self.fail("stderr.php answered but none of its stderr lines reached the error log")
        php_err = read(f"{tmp}/php-errors.log")
        if php_err.strip():
            self.fail(f"PHP error log not empty ({len(php_err.splitlines())} lines), first:\n"
                      + "".join(php_err.splitlines(True)[:5]))
        ng_err = [l for l in read(f"{tmp}/nginx.error.log").splitlines() if l.strip()]
        if ng_err:
            # "... [error] PID#TID: *CONN what, client: ..., request: "METHOD URI HTTP/1.1", ..."
            what = collections.Counter()
            reqs_by = collections.Counter()
            for l in ng_err:
                m = re.search(r"\*\d+ (.*?), client: .*?request: \"(\S+) (\S+)", l)
                what[m.group(1) if m else re.sub(r"^\S+ \S+ ", "", l)[:200]] += 1
                if m:
                    reqs_by[f"{m.group(2)} {m.group(3)}"] += 1
            self.fail(f"nginx error log: {len(ng_err)} lines (nginx retries a GET on another upstream "
                      f"connection when a kept-alive one fails, a POST it answers 502); by kind:\n" +
                      "\n".join(f"      {n} x {k}" for k, n in what.most_common()) +
                      "\n    requests: " + ", ".join(f"{k} {n}" for k, n in sorted(reqs_by.items())) +
                      "\n    first: " + ng_err[0][:400])
        access = collections.Counter()
        for line in read(f"{tmp}/nginx.access.log").splitlines():
            f = line.split()
            if f:
                access[f[0]] += 1
        self.access = access
        # 499: wrk closed connections with requests in flight when each segment's time was up
        bad_access = {k: v for k, v in access.items() if not k.startswith("2") and k != "499"}
        if bad_access:
            self.fail(f"nginx access log has non-2xx statuses: {bad_access}")
        if access.get("499", 0) > len(self.segments) * CONNS:
            self.fail(f"nginx logged {access['499']} 499s, more than wrk's {CONNS} connections "
                      f"closing at the end of each of {len(self.segments)} segments")

        # kept-alive connections: once nginx has closed its side, no lowphp process may keep one
        procs.remove(("nginx", ng))
        stop("nginx", ng, signal.SIGQUIT)
        held = {}
        for _ in range(50):
            zyg, workers, _, _ = self.family()
            socks = unix_sockets()
            held = {}
            for pid in [self.master.pid] + zyg + workers:
                kinds = classify(fds(pid) or {}, set(), set(), socks, {})
                n = sum(1 for k in kinds.values() if k in ("socket, peer closed", "nginx connection"))
                if n:
                    held[pid] = n
            if not held:
                break
            time.sleep(0.1)
        self.held_after_nginx = held
        if held:
            self.fail("5 s after nginx exited, lowphp processes still hold connections it closed "
                      "(pid: count; master " + str(self.master.pid) + "): " + str(held))

        # clean shutdown: SIGQUIT, exits 0, leaves nothing behind
        procs.remove(("lowphp", self.master))
        t0 = time.monotonic()
        left = stop("lowphp", self.master, signal.SIGQUIT, timeout=15)
        self.stop_s = time.monotonic() - t0
        self.stop_rc = self.master.returncode
        if self.stop_rc != 0:
            self.fail(f"master exited with {self.stop_rc} on SIGQUIT; log tail:\n{tail(f'{tmp}/lowphp.log', 10)}")
        if left:
            self.fail(f"processes left behind after SIGQUIT (killed): {left}")
        self.totals = {"requests": reqs, "sockerr": sockerr, "errs": errs, "non2xx": non2xx, "bad": bad,
                       "status": status, "names": names}

    def seg_cols(self, i, ngx):
        """requests and errors of the segment that ended just before sample i (0: start)."""
        if i == 0 or i > len(self.segments):
            return f" | {'':>8} {'':>7} {'':>8} {ngx:>7}"
        r = self.segments[i - 1]
        non2xx = sum(v for k, v in r["status"].items() if not 200 <= k < 300)
        sock = sum(v for k, v in r["errors"].items() if k != "status")
        return f" | {r['requests']:>8} {non2xx:>7} {sock:>8} {ngx:>7}"

    def summary(self):
        t = getattr(self, "totals", None)
        out = ["", "== soak summary ==",
               f"binary {self.binary} ({sh([self.binary, '-v'])})",
               f"load {DURATION} s in {len(self.segments)} segments, wrk -t{THREADS} -c{CONNS} --timeout {WRK_TIMEOUT}; "
               f"{len(self.reloads)} reloads (SIGUSR2 every {RELOAD_EVERY} s of load, "
               f"took {min(self.reloads, default=0):.2f}-{max(self.reloads, default=0):.2f} s); "
               f"pm = {PM}, max_children {MAX_CHILDREN}, max_requests {MAX_REQUESTS}; "
               f"samples {GAP} s after each segment's load stopped, once two readings 1 s apart agree"]
        if t:
            dur = sum(r["dur"] for r in self.segments) or 1
            out += [f"requests {t['requests']} ({t['requests'] / dur:.0f}/s), 2xx {sum(v for k, v in t['status'].items() if 200 <= k < 300)}, "
                    f"non-2xx {t['non2xx']}, socket errors {t['sockerr']} "
                    f"(connect {t['errs']['connect']}, read {t['errs']['read']}, write {t['errs']['write']}, "
                    f"timeout {t['errs']['timeout']}), unexpected bodies {t['bad']}",
                    "per script: " + ", ".join(f"{s} {t['names'][s]}" for s in SCRIPTS) +
                    f"; finish.php work after fastcgi_finish_request ran {self.finish_ran} times",
                    f"latency p99 per segment (ms): {min(r['lat_p99_ms'] for r in self.segments):.0f}-"
                    f"{max(r['lat_p99_ms'] for r in self.segments):.0f}, max {max(r['lat_max_ms'] for r in self.segments):.0f}",
                    "nginx access log statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(self.access.items())) +
                    (" (499: wrk closing in-flight connections at each segment's end)" if "499" in self.access else ""),
                    "expected error-log WARNINGs: " + (", ".join(f"{n} x {k}" for k, n in self.expected_log.items()) or "none"),
                    f"shutdown: SIGQUIT -> exit {self.stop_rc} in {self.stop_s:.2f} s"]
        out += ["", "RSS in kB; fds: total (fixed = without the varying ones: worker output pipes, "
                "2 per worker, and idle kept-alive nginx connections the master holds for the next worker)", "",
                f"{'sample':8} {'time':8} {'load s':>6} {'reloads':>7} {'master RSS':>10} {'fds':>4} {'fixed':>5} "
                f"{'w.pipes':>7} {'nginx':>5} {'zygote pid':>10} {'zygote RSS':>10} {'fds':>4} {'workers':>7} {'zombies':>7}"
                f" | {'requests':>8} {'non-2xx':>7} {'sock.err':>8} {'ngx.err':>7}"]
        prev_ngx = 0
        for i, s in enumerate(self.samples):
            mark = ""
            if s is getattr(self, "base", None):
                mark = "  <- after warm-up"
            elif s is getattr(self, "last", None):
                mark = "  <- end"
            if not s["stable"]:
                mark += " (processes or fds still changing)"
            out.append(f"{s['label']:8} {s['time']:8} {s['load_s']:>6} {s['reloads']:>7} {s['master_rss'] or '-':>10} "
                       f"{s['master_fds']:>4} {s['master_fixed']:>5} {s['master_wpipes']:>7} {s['master_ngx']:>5} "
                       f"{','.join(map(str, s['zygotes'])) or '-':>10} {s['zygote_rss'] or '-':>10} "
                       f"{s['zygote_fds'] if s['zygote_fds'] is not None else '-':>4} {len(s['workers']):>7} "
                       f"{len(s['zombies']):>7}" + self.seg_cols(i, s["ngx_err"] - prev_ngx) + mark)
            prev_ngx = s["ngx_err"]
        if getattr(self, "base", None):
            for who in ("master", "zygote"):
                out.append(f"{who} fds after warm-up: {fd_summary(self.base[who + '_kinds'])}")
                if fd_summary(self.last[who + '_kinds']) != fd_summary(self.base[who + '_kinds']):
                    out.append(f"{who} fds at the end:     {fd_summary(self.last[who + '_kinds'])}")
        if t is not None:
            out.append("after nginx exited: " + ("no lowphp process holds any of its connections"
                                                 if not self.held_after_nginx else
                                                 f"connections still held: {self.held_after_nginx}"))
        out.append("")
        if self.fails:
            out += [f"SOAK FAILED ({len(self.fails)}):"] + [f"  - {f}" for f in self.fails]
        else:
            out.append("SOAK PASSED: no socket error, no non-2xx, RSS and fds flat, no zombie, "
                       "master pid kept, error log clean")
        return "\n".join(out)


def sh(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        lines = (p.stdout + p.stderr).strip().splitlines()
        return " / ".join(l for l in lines if "lowphp" in l.lower())[:200] or lines[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def main():
    global tmp
    if len(sys.argv) != 2:
        sys.exit("usage: soak.py /path/to/lowphp-fpm  (env: DURATION, RELOAD_EVERY, ...; see bench/soak.sh)")
    if DURATION < 10:
        sys.exit("soak: DURATION must be at least 10 s")
    if PM not in ("static", "dynamic", "ondemand"):
        sys.exit(f"soak: PM={PM!r}: static, dynamic or ondemand")
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    atexit.register(cleanup)
    tmp = tempfile.mkdtemp(prefix="lowphp-soak-")
    os.chmod(tmp, 0o755)
    # the master re-executes its binary at every reload: a copy keeps a rebuild of the
    # original path during the soak from changing what is being tested
    binary = f"{tmp}/bin/lowphp-fpm"
    os.makedirs(os.path.dirname(binary))
    shutil.copy2(sys.argv[1], binary)
    soak = Soak(binary)
    t0 = time.monotonic()
    ng = soak.run()
    if soak.master.poll() is None:     # (a dead master was reported already)
        soak.check(ng)
    text = soak.summary().replace(binary, f"{sys.argv[1]} (copied to the temp dir)")
    print(text + f"\n(wall time {time.monotonic() - t0:.0f} s)", flush=True)
    return 1 if soak.fails else 0


if __name__ == "__main__":
    sys.exit(main())
