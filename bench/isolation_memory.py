#!/usr/bin/env python3
"""The memory cost of isolation: lowphp-fpm (one zygote per pool) against php-fpm8.2
(one master for all pools), with 1, 5 and 20 pools of 4 static workers each.

Each pool serves its own site (its own copy of the app, as on a shared host). Both get the same php.ini (-c, opcache on, JIT off), Debian's conf.d (opcache, APCu
and the rest of Debian's modules) and the same scripts; every pool is warmed with
requests to a small framework-shaped app (autoloaded classes, arrays, a template)
until each of its workers has served some, then PSS (and USS = private pages) is
summed from /proc/<pid>/smaps_rollup over master + zygotes + workers.

Prints a markdown table on stdout; with --breakdown also where one worker's PSS
goes (libphp, other libraries, heap, private anonymous, shared segments).
Run as root (pools run as root, -R). Every process it starts is stopped by pid.

    python3 bench/isolation_memory.py [--pools 1,5,20] [--workers 4] [--breakdown]
"""
import argparse
import datetime
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
from lowphp_test import fcgi  # noqa: E402  (the tests' FastCGI client, stdlib only)
from lowphp_test.util import SessionDirsSnapshot  # noqa: E402
from bench import descendants, mem_of, title  # noqa: E402  (process tree, smaps_rollup, cmdline of bench/bench.py)

PHP_FPM = "/usr/sbin/php-fpm8.2"
PHP_INI = """opcache.enable=1
opcache.enable_cli=0
opcache.memory_consumption=128
opcache.validate_timestamps=0
opcache.jit=off
opcache.jit_buffer_size=0
memory_limit=128M
display_errors=Off
log_errors=On
date.timezone=UTC
"""


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def make_app(www):
    """40 classes behind an autoloader, a little work with arrays, a template."""
    for i in range(40):
        methods = "\n".join(
            f"    public function m{j}(array $a): array {{ return array_map(fn($x) => $x * {j} + {i}, $a); }}"
            for j in range(8))
        write(f"{www}/src/C{i}.php", f"<?php\nnamespace App;\nclass C{i} {{\n"
              f"    public array $data = [];\n{methods}\n}}\n")
    write(f"{www}/app.php", """<?php
spl_autoload_register(function ($c) { require __DIR__ . '/src/' . substr($c, 4) . '.php'; });
$out = [];
for ($i = 0; $i < 40; $i++) {
    $cls = "App\\\\C$i";
    $o = new $cls();
    $out[] = array_sum($o->m3(range(1, 50)));
}
$rows = '';
foreach ($out as $k => $v) $rows .= '<tr><td>' . htmlspecialchars((string)$k) . '</td><td>' . $v . "</td></tr>\\n";
if (isset($_GET['hold'])) usleep(20000);
echo "<html><body><table>$rows</table><p>", getmypid(), "</p></body></html>";
""")


def fpm_conf(tmp, name, pools, workers):
    lines = ["[global]", f"pid = {tmp}/{name}.pid", f"error_log = {tmp}/{name}.log",
             "daemonize = no", ""]
    for i in range(pools):
        lines += [f"[p{i:02d}]", f"listen = {tmp}/{name}-p{i:02d}.sock", "pm = static",
                  f"pm.max_children = {workers}", ""]
    write(f"{tmp}/{name}.conf", "\n".join(lines))
    return f"{tmp}/{name}.conf"


def rollup(pid):
    r = mem_of(pid, ("Pss", "Rss", "Private_Clean", "Private_Dirty"))
    r["Uss"] = r["Private_Clean"] + r["Private_Dirty"]
    return r


def breakdown(pid):
    """kB of PSS by kind of mapping, from /proc/<pid>/smaps."""
    kinds = {}
    name = None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                first = line.split(None, 1)[0]
                if "-" in first and not first.endswith(":"):
                    parts = line.split(None, 5)
                    lo, hi = (int(x, 16) for x in first.split("-"))
                    size_mb = (hi - lo) >> 20
                    path = parts[5].strip() if len(parts) > 5 else ""
                    shared = parts[1][3] == "s"
                    if "libphp" in path or path.endswith("/php-fpm8.2"):
                        name = "PHP code and data (libphp8.2.so / php-fpm8.2)"
                    elif path.endswith("/lowphp-fpm"):
                        name = "lowphp-fpm binary"
                    elif ".so" in path:
                        name = "other libraries"
                    elif path == "[heap]":
                        name = "heap (brk: MINIT tables, Zend MM's small allocations)"
                    elif shared and size_mb >= 64:
                        name = "opcache shared memory"
                    elif shared and size_mb >= 16:
                        name = "APCu shared memory"
                    elif shared:
                        name = "other shared memory (scoreboard, ...)"
                    elif path == "" or path.startswith("[anon"):
                        name = "private anonymous (Zend MM chunks, ...)"
                    else:
                        name = "other"
                elif first == "Pss:":
                    kinds[name] = kinds.get(name, 0) + int(line.split()[1])
    except OSError:
        pass
    return kinds


def start(binary, conf, ini, tmp, name, timeout=60):
    out = open(f"{tmp}/{name}.out", "wb")
    p = subprocess.Popen([binary, "-F", "-R", "-y", conf, "-c", ini], stdin=subprocess.DEVNULL,
                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    end = time.time() + timeout
    logf = f"{tmp}/{name}.log"
    while time.time() < end:
        if p.poll() is not None:
            break
        if os.path.exists(logf) and "ready to handle connections" in open(logf, errors="replace").read():
            return p
        time.sleep(0.05)
    stop(p)
    sys.exit(f"{name} did not start:\n" + (open(logf).read() if os.path.exists(logf) else ""))


def stop(p):
    kids = descendants(p.pid)
    if p.poll() is None:
        p.send_signal(signal.SIGQUIT)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for k in kids:
        try:
            os.kill(k, signal.SIGKILL)
        except OSError:
            pass


def warm(sock, script, workers, rounds=10):
    """Rounds of `workers` concurrent requests (each holds its worker 20 ms), until every
    worker of the pool answered at least `rounds` times."""
    seen = {}
    params = fcgi.php_params(script, document_root=os.path.dirname(script), query="hold=1")
    for _ in range(rounds * 20):
        conns = [fcgi.Connection(sock) for _ in range(workers)]
        try:
            for c in conns:
                c.send_request(params)
            for c in conns:
                r = c.read_response()
                if not r.complete or r.status != 200 or b"<table>" not in r.body:
                    sys.exit(f"bad answer from {sock}: {r!r}")
                pid = r.body.rsplit(b"<p>", 1)[1].split(b"</p>")[0]
                seen[pid] = seen.get(pid, 0) + 1
        finally:
            for c in conns:
                c.close()
        if len(seen) >= workers and min(seen.values()) >= rounds:
            return
    log(f"  note: {sock}: workers answered {sorted(seen.values())} times")


_runs = 0


def measure(binary, name, pools, workers, tmp, www, ini, want_breakdown):
    global _runs
    _runs += 1
    name = f"{name}-{_runs}"  # own log file: "ready" is looked for in it
    conf = fpm_conf(tmp, name, pools, workers)
    p = start(binary, conf, ini, tmp, name)
    try:
        for i in range(pools):
            warm(f"{tmp}/{name}-p{i:02d}.sock", f"{www}/p{i:02d}/app.php", workers)
        time.sleep(1)
        groups = {"master": [rollup(p.pid)], "zygote": [], "worker": []}
        all_pids = [p.pid]
        for pid in descendants(p.pid):
            t = title(pid)
            kind = "zygote" if ": zygote " in t else "worker" if ": pool " in t else None
            if kind is None:
                log(f"  note: unexpected process {pid} {t!r}")
                continue
            groups[kind].append(rollup(pid))
            all_pids.append(pid)
        if len(groups["worker"]) != pools * workers:
            sys.exit(f"{name}: {len(groups['worker'])} workers, expected {pools * workers}")
        bd = None
        if want_breakdown:
            per = [breakdown(pid) for pid in all_pids]
            bd = {k: sum(b.get(k, 0) for b in per) for k in {k for b in per for k in b}}
        return groups, bd
    finally:
        stop(p)


def total(groups, key="Pss"):
    return sum(r[key] for rs in groups.values() for r in rs)


def per_worker(groups, key="Pss"):
    ws = groups["worker"]
    return sum(r[key] for r in ws) / len(ws)


def mb(kb):
    return f"{kb / 1024:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pools", default="1,5,20")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--breakdown", action="store_true", help="per-worker PSS by kind of mapping")
    ap.add_argument("--runs", type=int, default=3, help="runs per cell; the table shows medians")
    ap.add_argument("--ini", action="append", default=[], metavar="KEY=VALUE",
                    help="extra php.ini line for both servers (repeatable)")
    ap.add_argument("--lowphp", default=os.environ.get("LOWPHP_BIN", os.path.join(REPO, "build", "lowphp-fpm")))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (the pools run as root with -R)")
    for b in (args.lowphp, PHP_FPM):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} missing (bash scripts/build.sh; apt-get install php8.2-fpm)")
    # lowphp-fpm makes /var/lib/php/sessions/lowphp/<pool> for each pool: removed at the end
    session_dirs = SessionDirsSnapshot()
    tmp = tempfile.mkdtemp(prefix="lowphp-isomem-")
    os.chmod(tmp, 0o755)
    try:
        www = f"{tmp}/www"
        # one site per pool, as on a shared host: each pool has its own copy of the
        # app (php-fpm would otherwise cache one copy for every pool)
        for i in range(max(int(x) for x in args.pools.split(","))):
            make_app(f"{www}/p{i:02d}")
        ini = f"{tmp}/php.ini"
        write(ini, PHP_INI + "".join(line + "\n" for line in args.ini))
        cells = []
        for n in [int(x) for x in args.pools.split(",")]:
            runs = {"php-fpm": [], "lowphp": []}
            for i in range(args.runs):  # interleaved, so drift on the machine hits both
                for name, binary in (("php-fpm", PHP_FPM), ("lowphp", args.lowphp)):
                    log(f"{name}: {n} pools x {args.workers} workers, run {i + 1}/{args.runs}")
                    groups, bd = measure(binary, name, n, args.workers, tmp, www, ini, args.breakdown)
                    runs[name].append(metrics(groups, bd))
            cells.append((n, {name: median_metrics(rs) for name, rs in runs.items()}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        session_dirs.cleanup()
    report(cells, args)


def metrics(groups, bd):
    m = {"total": total(groups), "master": total({"m": groups["master"]}),
         "zygotes": total({"z": groups["zygote"]}), "workers": total({"w": groups["worker"]}),
         "per_worker": per_worker(groups), "per_worker_uss": per_worker(groups, "Uss")}
    for k, v in (bd or {}).items():
        m["bd:" + k] = v
    return m


def median_metrics(runs):
    keys = {k for r in runs for k in r}
    return {k: statistics.median(r.get(k, 0) for r in runs) for k in keys}


def report(cells, args):
    print(f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
          f"{platform.node()} ({os.cpu_count()} CPUs, {platform.machine()}, "
          f"kernel {platform.release()}), {args.workers} static workers per pool, each pool its "
          f"own site, every worker warmed; MB, median of {args.runs} runs; PSS from smaps_rollup, "
          "USS = private pages." + (f" Extra php.ini: {', '.join(args.ini)}." if args.ini else "") + "\n")
    print("| pools | server | total PSS | master | zygotes | workers | per-worker PSS | per-worker USS "
          "| total lowphp/php-fpm | per-worker lowphp/php-fpm |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, res in cells:
        fpm = res["php-fpm"]
        for name in ("php-fpm", "lowphp"):
            m = res[name]
            ratio_t = ratio_w = ""
            if name == "lowphp":
                ratio_t = f"{m['total'] / fpm['total']:.2f}"
                ratio_w = f"{m['per_worker'] / fpm['per_worker']:.2f}"
            print(f"| {n} | {name} | {mb(m['total'])} | {mb(m['master'])} | {mb(m['zygotes'])} | "
                  f"{mb(m['workers'])} | {mb(m['per_worker'])} | {mb(m['per_worker_uss'])} | "
                  f"{ratio_t} | {ratio_w} |")
    if not args.breakdown:
        return
    for n, res in cells:
        print(f"\nWhere the PSS goes, {n} pool(s): MB summed over master, zygotes and workers\n")
        print("| mapping | php-fpm | lowphp | lowphp - php-fpm, per pool |")
        print("|---|---:|---:|---:|")
        keys = sorted({k for m in res.values() for k in m if k.startswith("bd:")},
                      key=lambda k: -max(m.get(k, 0) for m in res.values()))
        for k in keys:
            f, low = res["php-fpm"].get(k, 0), res["lowphp"].get(k, 0)
            print(f"| {k[3:]} | {mb(f)} | {mb(low)} | {mb((low - f) / n)} |")


if __name__ == "__main__":
    main()
