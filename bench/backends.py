#!/usr/bin/env python3
"""Per-site backends, side by side: php8.2-fpm (PDO / phpredis) vs lowphp-fpm
(LowPHP\\pgsql() / mysql() / redis()), behind one nginx, loaded with wrk.

Cells (each php-fpm variant against the same lowphp page):
  pg-select  one indexed PostgreSQL SELECT, the row as JSON;
             php-fpm (a) new PDO per request, (b) PDO persistent, and (b) + lowphp's
             session reset after the response (a diagnostic); lowphp ->query()
  aggregate  three 20 ms calls (PostgreSQL, MariaDB, Redis); php-fpm one after the
             other over persistent connections, lowphp ->queryAsync()/callAsync() + await()

Real PostgreSQL 15, MariaDB and Redis servers run on loopback in temp dirs
(tests/lib/lowphp_test/servers.py), once for the whole run. Every process started
here is stopped by pid on exit, Ctrl-C, SIGTERM or error, and the temp dirs go.
Run through bench/backends.sh (installs what is missing): 3 interleaved runs x 10 s
per variant -> bench/results/backends.md; --quick: 1 x 2 s -> backends-quick.md, exits
non-zero when the two sides answer differently. Python stdlib only.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
# bench.py's process, wrk-parsing and CPU helpers; they keep their temp dir in the
# module global bench.tmp, which main() sets.
import bench as B  # noqa: E402
from lowphp_test.servers import MariaDB, Postgres, Redis  # noqa: E402

WORKERS = B.WORKERS          # 4 per backend, pm = static (bench.py's pool)
THREADS, CONNS = 2, 16       # wrk -t2 -c16
WRK_TIMEOUT = "10s"          # a slow variant's tail stays in p99 instead of becoming errors
ROWS = 10000                 # items(id, name, price, qty)
# Redis notices a blocked command's timeout only when its event loop wakes up, at
# the latest on its cron (1000/hz ms): BLPOP 0.02 takes ~100 ms at the default hz 10
# and 20-30 ms at hz 100 on an idle server; at hz 500 (the maximum) 20-23 ms.
REDIS_HZ = 500
HZ = os.sysconf("SC_CLK_TCK")
QUIET_WAIT = int(os.environ.get("QUIET_WAIT", "30"))
NAMES = {"fpm": "php-fpm", "low": "lowphp"}

# cell -> [(variant, backend, script)]; the lowphp variant is always the last one.
CELLS = {
    "pg-select": [("php-fpm (a) PDO, connect per request", "fpm", "pg_connect.php"),
                  ("php-fpm (b) PDO persistent", "fpm", "pg_persistent.php"),
                  # Not in the issue: (b) sending lowphp's session reset after its
                  # response, to tell what lowphp's reset costs from what its client does.
                  ("php-fpm (b) + lowphp's reset, diagnostic", "fpm", "pg_persistent_reset.php"),
                  ("lowphp ->query()", "low", "pg_low.php")],
    "aggregate": [("php-fpm sequential, persistent", "fpm", "agg_fpm.php"),
                  ("lowphp async + await()", "low", "agg_low.php")],
    # connections.reuse (issue 23): the unchanged connect-per-request pages, served by
    # lowphp's pool with connections.reuse = on.
    "pdo-reuse": [("php-fpm (a) PDO, connect per request", "fpm", "pg_connect.php"),
                  ("php-fpm (b) PDO persistent (unsafe)", "fpm", "pg_persistent.php"),
                  ("lowphp connections.reuse, page (a) unchanged", "low", "pg_connect.php")],
    "mysqli-reuse": [("php-fpm mysqli, connect per request", "fpm", "my_connect.php"),
                     ("lowphp connections.reuse, same page", "low", "my_connect.php")],
}
# The targets: lowphp req/s >= N x the php-fpm variant's (by index in CELLS).
TARGETS = {("pg-select", 0): 3.0, ("pg-select", 1): 1.2, ("aggregate", 0): 2.5,
           ("pdo-reuse", 0): 50.0, ("pdo-reuse", 1): 1.0, ("mysqli-reuse", 0): 1.3}
# What both sides must answer alike before anything is timed.
ROW_QUERIES = ["id=1", "id=17", "id=4711", f"id={ROWS}", "id=0"]
CHECK_QUERIES = {"pg-select": ROW_QUERIES, "aggregate": [""], "pdo-reuse": ROW_QUERIES,
                 "mysqli-reuse": ROW_QUERIES}
# What lowphp sends to PostgreSQL after each request (src/backends/pgsql.cpp), for the
# diagnostic variant.
PG_RESET = ("CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; "
            "SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES; DEALLOCATE ALL")
AGG_EXPECT = {"pg": [{"slept": 1}], "my": [{"slept": 0}], "redis": None}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- servers and fixtures

def start_servers(servers):
    """PostgreSQL with the items table, MariaDB (nothing to load), Redis at REDIS_HZ.
    Fills `servers` as they start, so the caller stops whichever did on any failure."""
    for key, cls in (("pg", Postgres), ("my", MariaDB), ("redis", Redis)):
        servers[key] = cls()
        servers[key].start()
        log(f"{servers[key].name} ready on port {servers[key].port}")
    pg = servers["pg"]
    pg.sql("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL, "
           "qty int NOT NULL) ")
    pg.sql(f"INSERT INTO items SELECT i, 'item ' || i, round((i * 7 % 10000) / 100.0 + 0.5, 2), i * 13 % 101 "
           f"FROM generate_series(1, {ROWS}) AS i")
    pg.sql("ALTER TABLE items OWNER TO app")
    pg.sql("VACUUM ANALYZE items")           # (not in a transaction: a statement of its own)
    servers["my"].sql("CREATE TABLE app.items (id int PRIMARY KEY, name varchar(40) NOT NULL, "
                      "price decimal(10,2) NOT NULL, qty int NOT NULL) ENGINE=InnoDB")
    servers["my"].sql(f"SET SESSION max_recursive_iterations = {ROWS + 1}; INSERT INTO app.items WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
                      f"FROM seq WHERE i < {ROWS}) SELECT i, CONCAT('item ', i), "
                      f"ROUND((i * 7 % 10000) / 100.0 + 0.5, 2), i * 13 % 101 FROM seq")
    servers["redis"].cmd("CONFIG", "SET", "hz", str(REDIS_HZ))


def stop_servers(servers):
    for s in reversed(list(servers.values())):
        s.stop()             # safe on a server that never started


def php_literal(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def write_scripts(www, servers):
    """The five pages. Connection details are literals in the php-fpm pages (as an
    app's config would be); the lowphp pages name the pool's backends."""
    pg, my, rd = servers["pg"], servers["my"], servers["redis"]
    pg_dsn, my_dsn = php_literal(pg.pdo_dsn), php_literal(my.pdo_dsn + ";charset=utf8mb4")
    # PGSQL_ATTR_DISABLE_PREPARES: PQexecParams, the query and its parameters in one
    # round trip, as lowphp sends them. PDO's default (a named server-side prepare per
    # statement, then DEALLOCATE) costs two more round trips: php-fpm's best case here.
    pdo_pg = "PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::PGSQL_ATTR_DISABLE_PREPARES => true"
    select = "SELECT id, name, price, qty FROM items WHERE id = "
    row_page = """$id = (int)($_GET['id'] ?? 1);
{fetch}
header('Content-Type: application/json');
echo json_encode($rows[0] ?? null);
"""
    pdo_fetch = (f"$db = new PDO({pg_dsn}, 'app', 'apppw', [{pdo_pg}%s]);\n"
                 f"$st = $db->prepare('{select}?');\n$st->execute([$id]);\n"
                 "$rows = $st->fetchAll(PDO::FETCH_ASSOC);")
    B.write(f"{www}/pg_connect.php", "<?php\n" + row_page.format(fetch=pdo_fetch % ""))
    B.write(f"{www}/pg_persistent.php", "<?php\n" + row_page.format(
        fetch=pdo_fetch % ", PDO::ATTR_PERSISTENT => true"))
    # lowphp's PostgreSQL reset (src/backends/pgsql.cpp), sent after the response
    B.write(f"{www}/pg_persistent_reset.php", "<?php\n" + row_page.format(
        fetch=pdo_fetch % ", PDO::ATTR_PERSISTENT => true") + f"fastcgi_finish_request();\n$db->exec('{PG_RESET}');\n")
    # mysqli as most apps use it: a connect, a prepared statement (ints come back as int).
    B.write(f"{www}/my_connect.php", "<?php\n" + row_page.format(fetch=(
        f"$db = new mysqli('127.0.0.1', 'app', 'apppw', 'app', {my.port});\n"
        f"$st = $db->prepare('{select}?');\n$st->bind_param('i', $id);\n$st->execute();\n"
        "$rows = $st->get_result()->fetch_all(MYSQLI_ASSOC);")))
    B.write(f"{www}/pg_low.php", "<?php\n" + row_page.format(
        fetch=f"$rows = LowPHP\\pgsql('main')->query('{select}$1', [$id]);"))

    # The same three 20 ms calls on both sides. BLPOP on a key that stays empty waits
    # its 0.02 s timeout without keeping Redis busy (a Lua busy-wait would hold the
    # single-threaded server, so the workers' calls would queue behind each other).
    pg_sleep, my_sleep = "SELECT 1 AS slept FROM pg_sleep(0.02)", "SELECT SLEEP(0.02) AS slept"
    B.write(f"{www}/agg_fpm.php", f"""<?php
// One after the other, over persistent connections (a connect per request would dominate).
$pg = new PDO({pg_dsn}, 'app', 'apppw', [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_PERSISTENT => true]);
$my = new PDO({my_dsn}, 'app', 'apppw', [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_PERSISTENT => true]);
$rd = new Redis();
$rd->pconnect('127.0.0.1', {rd.port});
$out = [
    'pg' => $pg->query('{pg_sleep}')->fetchAll(PDO::FETCH_ASSOC),
    'my' => $my->query('{my_sleep}')->fetchAll(PDO::FETCH_ASSOC),
    'redis' => $rd->rawCommand('BLPOP', 'bench:empty', '0.02'),
];
$out['redis'] = $out['redis'] ?: null;   // a nil reply: phpredis gives [], LowPHP null
header('Content-Type: application/json');
echo json_encode($out);
""")
    B.write(f"{www}/agg_low.php", f"""<?php
$out = LowPHP\\await([
    'pg' => LowPHP\\pgsql('main')->queryAsync('{pg_sleep}'),
    'my' => LowPHP\\mysql('shop')->queryAsync('{my_sleep}'),
    'redis' => LowPHP\\redis('cache')->callAsync('BLPOP', 'bench:empty', '0.02'),
]);
$out['redis'] = $out['redis'] ?: null;   // a nil reply: phpredis gives [], LowPHP null
header('Content-Type: application/json');
echo json_encode($out);
""")
    # wrk: a different id per request, from a counter (two threads, two sequences).
    B.write(f"{B.tmp}/ids.lua", f"""
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
local n = 0
function request()
    n = n + 1
    local id = (n * 7919 + tid * 5003) % {ROWS} + 1
    return wrk.format(nil, wrk.path .. "?id=" .. id)
end
""")


def pool_conf(b, servers):
    """bench.py's pool (static, 4 workers, root with -R) plus a status page; lowphp's
    also declares the three backends."""
    conf = B.pool_conf(b) + f"pm.status_path = /{b}-status\n"
    if b == "low":
        conf += "connections.reuse = on\n"
        conf += (f'pgsql[main] = "{servers["pg"].dsn}"\n'
                 f'mysql[shop] = "{servers["my"].dsn}"\n'
                 f'redis[cache] = "{servers["redis"].dsn}"\n')
    return conf


def start_backend(b, binary, servers):
    B.write(f"{B.tmp}/{b}.conf", pool_conf(b, servers))
    argv = [binary, "-F", "-R", "-y", f"{B.tmp}/{b}.conf", "-p", B.tmp, "-c", f"{B.tmp}/php.ini"]
    return B.start(b, argv, f"{B.tmp}/{b}.log", "ready to handle connections")


def nginx_conf(port, www):
    """/fpm/ and /low/ to each backend's socket. Plain fastcgi_pass (a connection per
    request, nginx's default): with `fastcgi_keep_conn` php-fpm pins a worker to each
    kept connection (see bench/README.md), which would measure that, not the databases."""
    locs = ""
    for b in NAMES:
        locs += f"""
        location /{b}/ {{
            rewrite ^/{b}(/.*)$ $1 break;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:{B.tmp}/{b}.sock;
        }}
        location = /{b}-status {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:{B.tmp}/{b}.sock;
        }}"""
    temp = "".join(f"    {k}_temp_path {B.tmp}/nginx-{k};\n" for k in ("client_body", "fastcgi", "proxy", "uwsgi", "scgi"))
    return f"""user root;
worker_processes 2;
daemon off;
pid {B.tmp}/nginx.pid;
error_log {B.tmp}/nginx.error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
{temp}    server {{
        listen 127.0.0.1:{port};
        root {www};{locs}
    }}
}}
"""


def start_nginx(www):
    port = B.free_port()
    B.write(f"{B.tmp}/nginx.conf", nginx_conf(port, www))
    for k in ("client_body", "fastcgi", "proxy", "uwsgi", "scgi"):
        os.makedirs(f"{B.tmp}/nginx-{k}", exist_ok=True)
    ng = B.start("nginx", ["nginx", "-p", B.tmp, "-c", f"{B.tmp}/nginx.conf"])
    B.wait_port(port)
    return ng, f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------- checks

def check_bodies(base, cell):
    """Every variant of the cell must answer 200 and the same body for the same request
    (and the body must be the right one). Returns the failures, [] if all agree."""
    fails = []
    for q in CHECK_QUERIES[cell]:
        before, bodies = len(fails), {}
        for variant, b, script in CELLS[cell]:
            st, txt = B.fetch(f"{base}/{b}/{script}" + (f"?{q}" if q else ""))
            if st != 200:
                fails.append(f"{cell} {variant} ?{q}: status {st}, body {txt[:300]!r}")
            bodies[variant] = txt
        ref_variant, ref = next(iter(bodies.items()))
        for variant, txt in bodies.items():
            if txt != ref:
                fails.append(f"{cell} ?{q}: {variant} answers {txt[:200]!r}, {ref_variant} {ref[:200]!r}")
        fails += body_sane(cell, q, ref)
        log(f"  check {cell} ?{q}: {'ok' if len(fails) == before else 'FAIL'} {ref[:100]}")
    return fails


def body_sane(cell, q, txt):
    """The shared answer is also the expected one (so agreeing on an error page fails)."""
    try:
        v = json.loads(txt)
    except ValueError:
        return [f"{cell} ?{q}: not JSON: {txt[:200]!r}"]
    if cell == "aggregate":
        return [] if v == AGG_EXPECT else [f"aggregate: {v!r}, expected {AGG_EXPECT!r}"]
    want = int(q.split("=")[1])
    if want < 1 or want > ROWS:
        return [] if v is None else [f"{cell} ?{q}: {v!r}, expected null"]
    ok = (isinstance(v, dict) and v.get("id") == want and isinstance(v.get("qty"), int)
          and isinstance(v.get("price"), str) and v.get("name") == f"item {want}")
    return [] if ok else [f"{cell} ?{q}: {v!r}: not the row (id int, price a string, qty int)"]


# ---------------------------------------------------------------- measuring

def group_ticks(root):
    """CPU ticks of a process and everything under it, children already reaped
    included (cutime/cstime): PostgreSQL forks a backend per connection, which for
    php-fpm (a) is gone at the end of each request."""
    total = 0
    for p in [root] + B.descendants(root):
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        total += sum(int(x) for x in fields[11:15])      # utime stime cutime cstime
    return total


def connects(servers):
    """Connections the app user has opened on each server so far."""
    return {k: s.connects() for k, s in servers.items()}


def sessions(servers):
    """The app user's sessions open on each server now."""
    return {k: s.app_sessions() for k, s in servers.items()}


def run_wrk(argv):
    """wrk's output; a signal meanwhile (SystemExit) stops wrk too, by pid, so no load
    outlives the run."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        return p.communicate()[0]
    except BaseException:
        p.kill()
        p.wait()
        raise


def wrk(url, dur, lua, groups):
    """One wrk run; the CPU each group (pid) spent meanwhile, wrk's own and the rest of
    the machine's ("other": whoever else shares the cores)."""
    argv = ["wrk", f"-t{THREADS}", f"-c{CONNS}", f"-d{dur}s", "--timeout", WRK_TIMEOUT, "--latency"]
    argv += (["-s", lua] if lua else []) + [url]
    before = {k: group_ticks(pid) for k, pid in groups.items()}
    ru0, busy0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), B.busy_ticks(), time.time()
    out = run_wrk(argv)
    wall, busy = time.time() - t0, (B.busy_ticks() - busy0) / HZ
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = B.parse_wrk(out)
    r["cpu"] = {k: (group_ticks(pid) - before[k]) / HZ for k, pid in groups.items()}
    r["cpu"]["wrk"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    r["cpu"]["other"] = max(0.0, busy - sum(r["cpu"].values()))
    r["wall"] = wall
    return r


def run_cell(cell, base, runs, dur, quick, groups, servers, raw):
    """Warm every variant up (persistent connections, opcache), then `runs` rounds of
    one wrk run per variant, interleaved: the order rotates round by round so that
    neither drift nor going first favours one variant."""
    variants = CELLS[cell]
    lua = f"{B.tmp}/ids.lua" if cell == "pg-select" else None
    results = {v[0]: [] for v in variants}
    for variant, b, script in variants:
        wrk(f"{base}/{b}/{script}", 1, lua, {})
    for i in range(runs):
        for variant, b, script in variants[i % len(variants):] + variants[:i % len(variants)]:
            waited = B.wait_quiet(0 if quick else QUIET_WAIT)
            c0 = connects(servers)
            r = wrk(f"{base}/{b}/{script}", dur, lua, {"backend": groups[b], **groups["shared"]})
            r["connects"] = {k: v - c0[k] for k, v in connects(servers).items()}
            r["sessions"] = sessions(servers)
            r["waited"] = waited
            results[variant].append(r)
            raw.append(f"=== {cell} {variant} run {i + 1}\n{r['raw']}")
            log(f"{cell:9} {variant:38} run {i + 1}: {r['rps']:7.0f} req/s p50 {B.fmt_ms(r['p50'])} "
                f"p99 {B.fmt_ms(r['p99'])} ms errors {r['errors']} new connections "
                + " ".join(f"{k} {v}" for k, v in r["connects"].items()))
    return results


def status_backends(base):
    """lowphp's status page, its per-backend counters (json)."""
    st, txt = B.fetch(f"{base}/low-status?json")
    try:
        return json.loads(txt).get("backends", [])
    except ValueError:
        return []


# ---------------------------------------------------------------- report

def med(runs, f):
    return statistics.median(f(r) for r in runs)


def per_req_us(runs, key):
    return med(runs, lambda r: r["cpu"].get(key, 0) / max(r["rps"] * r["wall"], 1) * 1e6)


def pct_of_machine(runs, f):
    return med(runs, lambda r: f(r) / (r["wall"] * os.cpu_count()) * 100)


def rps_cell(runs):
    rps = [r["rps"] for r in runs]
    spread = f" ({min(rps):.0f}–{max(rps):.0f})" if len(rps) > 1 else ""
    return f"{statistics.median(rps):.0f}{spread}"


def lat_cell(runs):
    return f"{B.fmt_ms(med(runs, lambda r: r['p50']))} / {B.fmt_ms(med(runs, lambda r: r['p99']))}"


def errs(runs):
    return "?" if any(r["errors"] < 0 for r in runs) else str(sum(r["errors"] for r in runs))


def ratio_rows(results):
    """One row per php-fpm variant: lowphp against it, and the issue's target."""
    rows = []
    for cell, res in results.items():
        low_variant = CELLS[cell][-1][0]
        low = res[low_variant]
        for k, (variant, _, _) in enumerate(CELLS[cell][:-1]):
            fpm = res[variant]
            fm, lm = med(fpm, lambda r: r["rps"]), med(low, lambda r: r["rps"])
            ratio = lm / fm if fm else float("nan")
            pairs = [l["rps"] / f["rps"] for f, l in zip(fpm, low) if f["rps"]]
            by_run = f"{min(pairs):.2f}–{max(pairs):.2f}" if len(pairs) > 1 else "-"
            target = TARGETS.get((cell, k))
            verdict = f"≥ {target:g}×: **{'met' if ratio >= target else 'not met'}**" if target else "(no target)"
            rows.append(f"| {cell} | {variant} | {rps_cell(fpm)} | {rps_cell(low)} | **{ratio:.2f}** | {by_run} "
                        f"| {verdict} | {lat_cell(fpm)} | {lat_cell(low)} | {errs(fpm)} / {errs(low)} |")
    return rows


def cpu_rows(results):
    rows = []
    for cell, res in results.items():
        for variant, b, _ in CELLS[cell]:
            runs = res[variant]
            us = " | ".join(f"{per_req_us(runs, k):.0f}" for k in ("backend", "nginx", "wrk", "pg", "my", "redis"))
            other = pct_of_machine(runs, lambda r: r["cpu"]["other"])
            idle = max(0.0, pct_of_machine(runs, lambda r: r["wall"] * os.cpu_count() - sum(r["cpu"].values())))
            rows.append(f"| {cell} | {variant} | {med(runs, lambda r: r['rps']):.0f} | {us} | {other:.0f} | {idle:.0f} |")
    return rows


def session_rows(results):
    rows = []
    for cell, res in results.items():
        for variant, b, _ in CELLS[cell]:
            runs = res[variant]
            new = " / ".join(str(int(med(runs, lambda r: r["connects"][k]))) for k in ("pg", "my", "redis"))
            per = med(runs, lambda r: sum(r["connects"].values()) / max(r["rps"] * r["wall"], 1))
            open_ = " / ".join(str(runs[-1]["sessions"][k]) for k in ("pg", "my", "redis"))
            rows.append(f"| {cell} | {variant} | {new} | {per:.3f} | {open_} |")
    return rows


def sh(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def header(bins, servers, dur, runs, quick, waited):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    git = sh(["git", "-C", REPO, "log", "-1", "--format=%h %s"])
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src", "include"],
                           capture_output=True, text=True).stdout.strip()
    return [
        f"# Per-site backends: lowphp-fpm vs php-fpm 8.2{' (quick)' if quick else ''}", "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"git {git}{' + uncommitted changes in src/' if dirty else ''}",
        f"- machine: {os.cpu_count()} shared cores ({cpu}), kernel {platform.release()}; wrk, nginx, both FPMs "
        "and the three database servers all run on them, so every CPU spent anywhere slows everything; "
        f"load average at the end {open('/proc/loadavg').read().split()[0]}",
        f"- php-fpm: {sh([bins['fpm'], '-v'])}; lowphp-fpm: `{bins['low']}`: {sh([bins['low'], '-v'])}",
        f"- servers on 127.0.0.1 (tests/lib/lowphp_test/servers.py): {sh([Postgres.requires[1][0], '-V'])}; "
        f"{sh([MariaDB.requires[0][0], '--version'])}; {sh(['redis-server', '--version'])}",
        f"- {sh(['nginx', '-v'])}; {sh(['wrk', '-v'])}",
        f"- load: `wrk -t{THREADS} -c{CONNS} -d{dur}s --timeout {WRK_TIMEOUT} --latency`, HTTP keep-alive to nginx; "
        f"nginx `fastcgi_pass unix:` (no FastCGI keep-alive) to each FPM; pools pm = static, {WORKERS} workers each, "
        "one php.ini for both (-c; opcache on, JIT off); "
        f"{runs} run(s) per variant, interleaved (the order rotates run by run), after 1 s of warm-up each",
        "- req/s: median (min–max) over runs; ratio: lowphp / php-fpm of the medians; run by run: min–max of the "
        "ratio over each round of interleaved runs; p50 / p99: wrk's, medians over runs; errors: non-2xx + socket "
        "errors, summed over runs",
        f"- before each run, waited up to {0 if quick else QUIET_WAIT} s for other load to drop below 25% of the "
        f"machine: {waited:.0f} s in all (what remained: \"other %\" below)",
        "- before timing, every variant of a cell answered the same JSON body for the same requests (checked "
        "again after the runs)",
        f"- raw wrk output: `bench/results/{'backends-quick' if quick else 'backends'}-raw.txt`",
    ]


def method_notes(servers):
    return [
        "", "## What runs", "",
        f"- **pg-select**: `SELECT id, name, price, qty FROM items WHERE id = $1`, items(id int primary key, "
        f"name text, price numeric(10,2), qty int) with {ROWS} rows, the id from the query string (wrk makes a "
        "different one per request from a counter); the page prints `json_encode` of the row "
        "(`{\"id\":4711,\"name\":\"item 4711\",\"price\":\"...\",\"qty\":...}`: id and qty ints, price a string "
        "on both sides). php-fpm: PDO pgsql with `PDO::PGSQL_ATTR_DISABLE_PREPARES` (PQexecParams: query and "
        "parameters in one round trip, as lowphp sends them; PDO's default named prepare costs two more round "
        "trips), (a) `new PDO` per request (TCP connect + SCRAM authentication + a PostgreSQL backend forked "
        "per request), (b) `PDO::ATTR_PERSISTENT => true`. lowphp: `LowPHP\\pgsql('main')->query(...)` on the "
        "worker's kept connection. The diagnostic variant (not one of the issue's) is (b) sending, after its "
        "response (`fastcgi_finish_request()`), the reset lowphp sends after each request (below), "
        f"`$db->exec('{PG_RESET}')`: what is left between it and lowphp is the clients, not the reset.",
        "- **aggregate**: `SELECT 1 AS slept FROM pg_sleep(0.02)`, `SELECT SLEEP(0.02) AS slept` and Redis "
        "`BLPOP bench:empty 0.02` (a key that stays empty: the call waits its 20 ms timeout without keeping the "
        "single-threaded Redis busy, as a Lua busy-wait would; Redis runs at `hz "
        f"{REDIS_HZ}` so the timeout fires after ~20-23 ms instead of up to 100 ms). php-fpm: one after the other, "
        "all three over **persistent** connections (PDO pgsql and PDO mysql with `ATTR_PERSISTENT`, phpredis "
        "`pconnect`), so that connects do not dominate; lowphp: `queryAsync()` / `callAsync()` and one "
        "`LowPHP\\await()`. Both print `{\"pg\":[{\"slept\":1}],\"my\":[{\"slept\":0}],\"redis\":null}` "
        "(the nil reply of BLPOP's timeout is `[]` from phpredis and null from LowPHP; both pages print "
        "`$reply ?: null`).",
        "- lowphp also resets every session after each request (PostgreSQL `RESET ALL; DISCARD ...` in one "
        "round trip, MariaDB `COM_RESET_CONNECTION`, Redis `RESET`), pipelined before the next use; php-fpm's "
        "persistent connections get no reset. That server work is in its numbers.",
    ]


def report(bins, servers, dur, runs, quick, waited, results, status, fails):
    lines = header(bins, servers, dur, runs, quick, waited) + method_notes(servers)
    lines += ["", "## Results", "",
              "| cell | php-fpm variant | php-fpm req/s | lowphp req/s | ratio low/fpm | run by run | target "
              "| php-fpm p50 / p99 ms | lowphp p50 / p99 ms | errors fpm / low |",
              "|---|---|---:|---:|---:|---:|---|---:|---:|---:|"] + ratio_rows(results)
    lines += ["", "## CPU per request (µs, median over runs)", "",
              "/proc utime+stime (+ reaped children) of each process group during the run: backend = the FPM's "
              "master + workers; pg / my / redis = the database servers (PostgreSQL with its backends); "
              "other % = busy CPU of everything else on the machine (other work sharing the cores), idle % = "
              "CPU nobody used, both in % of all cores.", "",
              "| cell | variant | req/s | backend | nginx | wrk | pg | my | redis | other % | idle % |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"] + cpu_rows(results)
    lines += ["", "## Server-side sessions (the app user's)", "",
              "New connections: opened on each server during one run (median over runs), from PostgreSQL's "
              "`log_connections`, MariaDB's USER_STATISTICS and Redis's `total_connections_received`. Open: "
              "sessions open on each server after the variant's last run (pg_stat_activity, PROCESSLIST, CLIENT "
              "LIST); php-fpm's persistent connections of the other variants stay open too.", "",
              "| cell | variant | new connections pg / my / redis | per request | open after pg / my / redis |",
              "|---|---|---:|---:|---:|"] + session_rows(results)
    if status:
        lines += ["", "lowphp status page at the end (`?json`, `backends`):", "",
                  "| backend | type | max | open | busy | idle | waits | wait time µs | errors | reconnects |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for s in status:
            lines.append("| " + " | ".join(str(s.get(k, "-")) for k in (
                "name", "type", "max connections", "open connections", "busy connections", "idle connections",
                "waits", "wait time", "errors", "reconnects")) + " |")
    if fails:
        lines += ["", "## FAILURES", ""] + [f"- {f}" for f in fails]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main

def backend_log_errors():
    out = []
    for b in NAMES:
        for line in B.tail(f"{B.tmp}/{b}.log", 500).splitlines():
            if "WARNING" in line or "ERROR" in line or "ALERT" in line:
                out.append(f"{NAMES[b]} log: {line}")
    return out[-10:]


def measure(args, bins, servers, quick, dur, runs):
    """Backends, nginx, checks, the cells. Returns (report text, raw lines, failures)."""
    www = os.path.join(B.tmp, "www")
    B.write_php_ini()
    write_scripts(www, servers)
    masters = {b: start_backend(b, bins[b], servers) for b in NAMES}
    ng, base = start_nginx(www)
    log(f"backends and nginx ready in {B.tmp}")
    groups = {b: p.pid for b, p in masters.items()}
    groups["shared"] = {"nginx": ng.pid, **{k: s.pid for k, s in servers.items()}}

    fails, results, raw, t0 = [], {}, [], time.time()
    for cell in CELLS:
        fails += check_bodies(base, cell)
    if fails:
        return None, raw, fails + backend_log_errors()
    for cell in CELLS:
        results[cell] = run_cell(cell, base, runs, dur, quick, groups, servers, raw)
        fails += check_bodies(base, cell)          # still the same answers after the load
    status = status_backends(base)
    for b, p in masters.items():
        if p.poll() is not None:
            fails.append(f"{NAMES[b]} master exited (code {p.returncode})")
    fails += backend_log_errors()
    waited = sum(r["waited"] for res in results.values() for rs in res.values() for r in rs)
    log(f"measured in {time.time() - t0:.0f} s")
    return report(bins, servers, dur, runs, quick, waited, results, status, fails), raw, fails


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "lowphp-fpm"), help="lowphp-fpm binary")
    ap.add_argument("--quick", action="store_true",
                    help="1 run x 2 s per variant (CI smoke); exits non-zero if the bodies differ")
    ap.add_argument("--cells", help="comma-separated cells to run (default: all); with BENCH_OUT, "
                    "to re-measure some rows without overwriting the full report")
    args = ap.parse_args()
    quick = args.quick
    if args.cells:
        for cell in set(CELLS) - set(args.cells.split(",")):
            del CELLS[cell]
    dur = int(os.environ.get("DUR", "2" if quick else "10"))
    runs = int(os.environ.get("RUNS", "1" if quick else "3"))
    bins = {"fpm": shutil.which("php-fpm8.2") or "/usr/sbin/php-fpm8.2", "low": args.bin}
    out = os.environ.get("BENCH_OUT") or os.path.join(
        REPO, "bench", "results", "backends-quick.md" if quick else "backends.md")

    # A signal becomes SystemExit, so the finally below stops everything (by pid).
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, B.on_signal)
    B.tmp = tempfile.mkdtemp(prefix="lowphp-bench-backends-")
    os.chmod(B.tmp, 0o755)
    servers = {}
    try:
        start_servers(servers)
        text, raw, fails = measure(args, bins, servers, quick, dur, runs)
    finally:
        B.cleanup()              # nginx and both FPMs (they hold the sessions), the temp dir
        stop_servers(servers)    # then the database servers and their temp dirs
    if text is None:
        log("FAILURES (nothing timed: the answers differ):\n  " + "\n  ".join(fails))
        return 1
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    with open(out.replace(".md", "-raw.txt"), "w") as f:
        f.write("\n".join(raw))
    print(text)
    print(f"written to {out}")
    if fails:
        log("FAILURES:\n  " + "\n  ".join(fails))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
