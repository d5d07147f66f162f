"""Per-site backends (issue 22): a pool declares pgsql[], mysql[] and redis[]
once; PHP borrows connections through LowPHP\\pgsql()/mysql()/redis(). What a
user must see, against real PostgreSQL 15, MariaDB and Redis servers started
on loopback by this test: values come back typed (the JSON of a row equals
PDO's), parameters are bound (NULL, binary, unicode), errors carry their
SQLSTATE, nothing a request leaves behind (an open transaction, SET, temp
tables, locks, variables, Redis MULTI and SELECT) reaches a later request on
any worker, killed server sessions cost at most one failed call, the
connections.max cap holds under load with no failed request, independent
calls on three backends run concurrently, the status page counts, and a
backend that is down does not stop the site.

Requests go to the pool over FastCGI (params as nginx sends them)."""
import json
import os
import re
import threading
import time

from lowphp_test import (Backend, MariaDB, Postgres, Redis, ScriptedPool, TempDir, check, check_eq, check_in, fcgi,
                         run, test, util, wait_for)

PG = MY = RD = None

# A probe script: runs the PHP in $_GET-selected snippet files.
class Site(ScriptedPool):
    """A lowphp-fpm pool declaring the three servers as backends; scripts
    answer JSON."""

    def __init__(self, children=2, extra=None, servers=True, ini=None):
        pool = {}
        if servers:
            pool["pgsql[main]"] = f'"{PG.dsn}"'
            pool["mysql[shop]"] = f'"{MY.dsn}"'
            pool["redis[cache]"] = f'"{RD.dsn}"'
        pool.update(extra or {})
        super().__init__(pool, children, prefix="lowphp-backends-", ini=ini,
                         script_prefix="header('Content-Type: application/json');\n")


# The same row through the pool and through PDO, in the same worker.
PG_TYPES = r"""
$sql = "SELECT 1::int2 AS i2, 2::int4 AS i4, 9007199254740993::int8 AS i8, true AS t, false AS f,
        'text é'::text AS s, 3.10::numeric AS num, NULL::int AS n, DATE '2024-02-29' AS d,
        '{\"a\": 1}'::jsonb AS j, 42::oid AS o, '00000000-0000-0000-0000-000000000001'::uuid AS u,
        ARRAY[1,2] AS arr, 1.5::float8 AS f8, 0.25::float4 AS f4, '\\x00ff41'::bytea AS by";
$pooled = LowPHP\pgsql('main')->query($sql)[0];
$pdo = new PDO(getenv('PG_PDO_DSN'), 'app', 'apppw');
$row = $pdo->query($sql)->fetch(PDO::FETCH_ASSOC);
$pdoNative = (function () use ($pdo, $sql) {
    $pdo->setAttribute(PDO::ATTR_EMULATE_PREPARES, false);
    $st = $pdo->prepare($sql . ' WHERE ?::int = 1');
    $st->execute([1]);
    return $st->fetch(PDO::FETCH_ASSOC);
})();
$by = $pooled['by'];
unset($pooled['by'], $row['by'], $pdoNative['by']);
$floats = ['f8' => $pooled['f8'], 'f4' => $pooled['f4']];
unset($pooled['f8'], $pooled['f4'], $row['f8'], $row['f4'], $pdoNative['f8'], $pdoNative['f4']);
echo json_encode(['pooled' => $pooled, 'pdo' => $row, 'pdo_native' => $pdoNative, 'floats' => $floats,
                  'bytea_hex' => bin2hex($by), 'types' => array_map('gettype', $pooled)]);
"""


@test
def pgsql_rows_are_typed_as_pdo_types_them():
    with Site(extra={"env[PG_PDO_DSN]": f'"{PG.pdo_dsn}"'}) as s:
        s.script("types.php", PG_TYPES)
        r = s.json("types.php")
        check_eq(json.dumps(r["pooled"]), json.dumps(r["pdo"]), "JSON of the pooled row vs PDO (emulated)")
        check_eq(json.dumps(r["pooled"]), json.dumps(r["pdo_native"]), "JSON of the pooled row vs PDO (native)")
        check_eq(r["pooled"]["i8"], 9007199254740993, "int8")
        check_eq(r["pooled"]["num"], "3.10", "numeric stays a string")
        check_eq(r["types"]["t"], "boolean", "bool")
        check_eq(r["floats"], {"f8": 1.5, "f4": 0.25}, "float columns as floats")
        check_eq(r["bytea_hex"], "00ff41", "bytea as a binary string")


PG_BIND = r"""
$db = LowPHP\pgsql('main');
$bin = "\x00\xff\xfe" . "zero";
$row = $db->query('SELECT $1::int AS i, $2::float8 AS f, $3::bool AS b, $4::text AS n, $5::text AS u,
                   $6::bytea AS bin, pg_typeof($2)::text AS ftype, $7 AS inferred',
                  [-42, 0.1, true, null, "😀 ünï", $bin, 'x'])[0];
$db->execute('CREATE TEMP TABLE b (k text)');
$inj = "x'); DROP TABLE b; --";
$db->execute('INSERT INTO b VALUES ($1)', [$inj]);
$row['stored'] = $db->query('SELECT k FROM b')[0]['k'] === $inj;
$row['bin_ok'] = $row['bin'] === $bin;
unset($row['bin']);
echo json_encode($row);
"""


@test
def pgsql_parameters_are_bound_with_their_php_types():
    with Site() as s:
        s.script("bind.php", PG_BIND)
        r = s.json("bind.php")
        check_eq(r, {"i": -42, "f": 0.1, "b": True, "n": None, "u": "😀 ünï", "ftype": "double precision",
                     "inferred": "x", "stored": True, "bin_ok": True}, "bound values")


ERRORS = r"""
$out = [];
$db = LowPHP\pgsql('main');
foreach (['SELECT * FROM missing_table', 'SELECT 1/0', "SELECT 'x'::int"] as $sql) {
    try { $db->query($sql); $out[] = 'no exception'; }
    catch (LowPHP\BackendException $e) {
        $out[] = [$e->getCode(), $e->getBackend(), $e instanceof RuntimeException, strtok($e->getMessage(), "\n")];
    }
}
$db->execute('CREATE TEMP TABLE u (k int PRIMARY KEY)');
$db->execute('INSERT INTO u VALUES (1)');
try { $db->execute('INSERT INTO u VALUES ($1)', [1]); } catch (LowPHP\BackendException $e) { $out[] = $e->getCode(); }
try { LowPHP\mysql('shop')->query('SELECT * FROM missing_table'); } catch (LowPHP\BackendException $e) { $out[] = $e->getCode(); }
try { $r = LowPHP\redis('cache'); $r->call('SET', 'k', 'v'); $r->call('LPUSH', 'k', 'x'); }
catch (LowPHP\BackendException $e) { $out[] = [$e->getCode(), str_starts_with($e->getMessage(), '[redis cache] WRONGTYPE')]; }
try {
    LowPHP\await(['good' => $db->queryAsync('SELECT 1 AS one'), 'bad' => $db->queryAsync('SELECT * FROM nope'),
                  'worse' => LowPHP\mysql('shop')->queryAsync('SELECT * FROM nope')]);
} catch (LowPHP\BackendException $e) {
    $out[] = ['first' => $e->getCode(), 'failures' => array_map(fn($x) => $x->getCode(), $e->getFailures())];
}
try { LowPHP\pgsql('undeclared'); } catch (LowPHP\BackendException $e) { $out[] = $e->getMessage(); }
echo json_encode($out);
"""


@test
def errors_carry_the_sqlstate_and_the_server_message():
    with Site() as s:
        s.script("errors.php", ERRORS)
        r = s.json("errors.php")
        check_eq(r[0], ["42P01", "main", True, '[pgsql main] ERROR:  relation "missing_table" does not exist'], "42P01")
        check_eq(r[1][0], "22012", "division by zero")
        check_eq(r[2][0], "22P02", "invalid text representation")
        check_eq(r[3], "23505", "unique violation")
        check_eq(r[4], "42S02", "mysql missing table")
        check_eq(r[5], ["WRONGTYPE", True], "redis WRONGTYPE")
        check_eq(r[6], {"first": "42P01", "failures": {"bad": "42P01", "worse": "42S02"}}, "await failures")
        check_in("no pgsql backend 'undeclared' in pool www", r[7], "undeclared name")


LEAVE_DIRTY = r"""
$pg = LowPHP\pgsql('main'); $my = LowPHP\mysql('shop'); $rd = LowPHP\redis('cache');
$seen = [
  'pid' => $pg->query('SELECT pg_backend_pid() AS p')[0]['p'],
  'pg_tx' => $pg->query("SELECT count(*) AS c FROM pg_stat_activity WHERE pid = pg_backend_pid() AND state LIKE '%transaction%'")[0]['c'],
  'pg_guc' => $pg->query("SELECT current_setting('statement_timeout') AS v")[0]['v'],
  'pg_temp' => $pg->query("SELECT count(*) AS c FROM pg_class WHERE relname = 'scratch' AND relpersistence = 't'")[0]['c'],
  'pg_lock' => $pg->query("SELECT count(*) AS c FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")[0]['c'],
  'pg_prepared' => $pg->query("SELECT count(*) AS c FROM pg_prepared_statements WHERE name = 'mine'")[0]['c'],
  'pg_row' => $pg->query("SELECT count(*) AS c FROM kept WHERE v = 'uncommitted'")[0]['c'],
  'my_var' => $my->query('SELECT @leak AS v')[0]['v'],
  'my_tx' => $my->query('SELECT @@in_transaction AS v')[0]['v'],
  'my_mode' => $my->query("SELECT @@session.sql_mode = @@global.sql_mode AS same")[0]['same'],
  'my_temp' => count($my->query("SHOW TABLES LIKE 'scratch'")),
  'my_lock' => $my->query("SELECT IS_USED_LOCK('lowphp_lock') IS NULL AS free")[0]['free'],
  'my_row' => $my->query("SELECT count(*) AS c FROM kept WHERE v = 'uncommitted'")[0]['c'],
  'rd_db' => $rd->call('CLIENT', 'INFO'),
  'rd_key' => $rd->call('GET', 'dirty'),
];
preg_match('/ db=(\d+)/', $seen['rd_db'], $m); $seen['rd_db'] = (int)$m[1];
preg_match('/ multi=(-?\d+)/', $rd->call('CLIENT', 'INFO'), $m); $seen['rd_multi'] = (int)$m[1];
if (isset($_GET['hold'])) usleep(50000);
if (isset($_GET['dirty'])) {
    $pg->begin();
    $pg->execute("INSERT INTO kept VALUES ('uncommitted')");
    $pg->execute("SET statement_timeout = '1234s'");
    $pg->execute('CREATE TEMP TABLE scratch (x int)');
    $pg->query('SELECT pg_advisory_lock(42)');
    $pg->execute("PREPARE mine AS SELECT 1");
    $my->execute('SET @leak = 7');
    $my->execute("SET SESSION sql_mode = 'ANSI'");
    $my->execute('CREATE TEMPORARY TABLE scratch (x int)');
    $my->query("SELECT GET_LOCK('lowphp_lock', 1)");
    $my->begin();
    $my->execute("INSERT INTO kept VALUES ('uncommitted')");
    $rd->call('SELECT', '5');
    $rd->call('MULTI');
    $rd->call('SET', 'dirty', 'yes');
}
echo json_encode($seen);
"""

CLEAN = {"pg_tx": 0, "pg_guc": "0", "pg_temp": 0, "pg_lock": 0, "pg_prepared": 0, "pg_row": 0,
         "my_var": None, "my_tx": 0, "my_mode": 1, "my_temp": 0, "my_lock": 1, "my_row": 0,
         "rd_db": 0, "rd_key": None, "rd_multi": -1}


@test
def nothing_a_request_leaves_open_reaches_a_later_request_on_any_worker():
    PG.sql("CREATE TABLE IF NOT EXISTS kept (v text); GRANT ALL ON kept TO app")
    MY.sql("CREATE TABLE IF NOT EXISTS app.kept (v text) ENGINE=InnoDB")
    with Site(children=2) as s:
        s.script("dirty.php", LEAVE_DIRTY)
        pids = set()
        for i in range(8):
            # two at a time (each holds its worker 50 ms): both workers serve
            found = [None, None]

            def one(k, query="dirty=1&hold=1" if i % 2 == 0 else "hold=1"):
                found[k] = s.json("dirty.php", query)

            pair = [threading.Thread(target=one, args=(k,)) for k in (0, 1)]
            for t in pair:
                t.start()
            for t in pair:
                t.join()
            for r in found:
                check(r is not None, f"round {i}: a request failed")
                pids.add(r.pop("pid"))
                check_eq(r, CLEAN, f"round {i}: what a request found")
        check_eq(len(pids), 2, "both workers' connections were used")
        wait_for(lambda: "left a transaction open; rolled back" in s.log(), 5, what="the rollback warning")
        check(re.search(r"\[pool www\] backend main \(pgsql\): \S+dirty\.php left a transaction open; rolled back",
                        s.log()), "warning names pool, backend and script:\n" + s.log())
        check_in("backend shop (mysql)", s.log(), "mysql rollback warning")
    check_eq(PG.sql("SELECT count(*) FROM kept")[0][0], "0", "the uncommitted pg row never landed")


KILLED = r"""
$out = [];
foreach (['pg' => fn() => LowPHP\pgsql('main')->query('SELECT 1 AS v')[0]['v'],
          'my' => fn() => LowPHP\mysql('shop')->query('SELECT 1 AS v')[0]['v'],
          'rd' => fn() => LowPHP\redis('cache')->call('PING')] as $k => $f) {
    try { $out[$k] = $f(); } catch (LowPHP\BackendException $e) { $out[$k] = 'failed: ' . $e->getCode(); }
}
echo json_encode($out);
"""


@test
def killed_server_sessions_are_replaced_before_they_are_handed_out():
    with Site(children=2) as s:
        s.script("k.php", KILLED)
        for _ in range(4):
            check_eq(s.json("k.php"), {"pg": 1, "my": 1, "rd": "PONG"}, "before the kill")
        killed = (PG.kill_app_sessions(), MY.kill_app_sessions(), RD.kill_app_sessions())
        check(all(k >= 1 for k in killed), f"sessions killed: {killed}")
        failures = 0
        for _ in range(8):
            r = s.json("k.php")
            failures += sum(1 for v in r.values() if str(v).startswith("failed"))
        check_eq(failures, 0, "failed calls after killing every idle session")
        st = s.status()
        check(sum(b["reconnects"] for b in st["backends"]) >= 3, f"reconnects counted: {st['backends']}")


BUSY = r"""
$calls = ['pg' => fn() => LowPHP\pgsql('main')->query('SELECT pg_sleep(2)'),
          'my' => fn() => LowPHP\mysql('shop')->query('SELECT SLEEP(2)'),
          'rd' => fn() => LowPHP\redis('cache')->call('BLPOP', 'never', '2')];
try { $calls[$_GET['b']](); echo json_encode('finished'); }
catch (LowPHP\BackendException $e) { echo json_encode($e->getCode()); }
"""


@test
def a_session_killed_during_a_call_fails_that_call_only():
    with Site(children=1) as s:
        s.script("busy.php", BUSY)
        s.script("k.php", KILLED)
        s.json("k.php")
        for backend, srv, code in (("pg", PG, "57P01"), ("my", MY, "08S01"), ("rd", RD, "ERR")):
            got = []
            t = threading.Thread(target=lambda: got.append(s.json("busy.php", "b=" + backend)))
            t.start()
            wait_for(lambda: srv.app_sessions() >= 1, 5, what=f"{backend} session")
            time.sleep(0.3)
            srv.kill_app_sessions()
            t.join()
            # PostgreSQL says why (57P01: terminated by an administrator); the
            # others just close the socket
            check_eq(got, [code], f"{backend}: the call in flight")
            check_eq(s.json("k.php"), {"pg": 1, "my": 1, "rd": "PONG"}, f"after killing {backend} mid-call")


CAP = r"""
$db = LowPHP\pgsql('main');
$r = $db->query('SELECT pg_backend_pid() AS p, pg_sleep(0.03)')[0];
echo json_encode(['pid' => $r['p']]);
"""


@test
def connections_max_holds_with_more_busy_workers_and_fails_nothing():
    with Site(children=4, extra={"connections.max[main]": "2"}) as s:
        s.script("cap.php", CAP)
        stop = threading.Event()
        seen, errors, results = [], [], []

        def sample():
            while not stop.is_set():
                seen.append(PG.app_sessions())
                time.sleep(0.01)

        def client():
            for _ in range(15):
                try:
                    r = s.get("cap.php")
                    results.append(r.status)
                    if r.status != 200:
                        errors.append((r.status, r.body[:300], r.stderr[:300]))
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))

        sampler = threading.Thread(target=sample)
        sampler.start()
        clients = [threading.Thread(target=client) for _ in range(6)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        stop.set()
        sampler.join()
        check_eq(errors, [], "failed requests")
        check_eq(len(results), 90, "requests answered")
        check(max(seen) <= 2, f"server-side sessions above the cap: max {max(seen)}")
        b = [x for x in s.status()["backends"] if x["name"] == "main"][0]
        check_eq(b["max connections"], 2, "status max connections")
        check(b["waits"] > 0, f"waits counted: {b}")


@test
def an_idle_worker_gives_its_connection_to_a_worker_that_waits():
    # One connection for four workers, one request at a time: whichever
    # worker takes the request, the idle holder hands the connection over at
    # once (closed there, reopened here), never after wait_timeout.
    with Site(children=4, extra={"connections.max[main]": "1", "connections.wait_timeout": "2s"}) as s:
        s.script("pid.php", "echo LowPHP\\pgsql('main')->query('SELECT pg_backend_pid() AS p')[0]['p'];")
        for i in range(12):
            started = time.monotonic()
            r = s.get("pid.php")
            took = time.monotonic() - started
            check_eq(r.status, 200, f"request {i} (stderr {r.stderr[:300]!r})")
            check(took < 1.0, f"request {i} waited {took:.2f} s for the idle worker's connection")
        check(max(PG.app_sessions() for _ in range(3)) <= 1, "more than one session open")


CONCURRENT = r"""
$t = microtime(true);
$r = LowPHP\await([
    'pg' => LowPHP\pgsql('main')->queryAsync('SELECT pg_sleep(0.1), 1 AS v'),
    'my' => LowPHP\mysql('shop')->queryAsync('SELECT SLEEP(0.1) AS s, 2 AS v'),
    'rd' => LowPHP\redis('cache')->callAsync('BLPOP', 'nothing-here', '0.1'),
]);
$concurrent = microtime(true) - $t;
$t = microtime(true);
LowPHP\pgsql('main')->query('SELECT pg_sleep(0.1)');
LowPHP\mysql('shop')->query('SELECT SLEEP(0.1)');
LowPHP\redis('cache')->call('BLPOP', 'nothing-here', '0.1');
$sequential = microtime(true) - $t;
echo json_encode(['concurrent' => $concurrent, 'sequential' => $sequential,
                  'values' => [$r['pg'][0]['v'], $r['my'][0]['v'], $r['rd']]]);
"""


@test
def await_runs_calls_on_three_backends_concurrently():
    # Redis times blocked commands out on its cron (hz 10: up to 100 ms late)
    RD.cmd("CONFIG", "SET", "hz", "100")
    with Site(children=1) as s:
        s.script("c.php", CONCURRENT)
        s.json("c.php")  # connections warm
        r = s.json("c.php")
        check_eq(r["values"], [1, 2, None], "results under their keys")
        check(r["concurrent"] < 0.18, f"three 100 ms calls awaited together took {r['concurrent']:.3f}s")
        check(r["sequential"] > 0.29, f"sequential calls took {r['sequential']:.3f}s")


REDIS_TYPES = r"""
$r = LowPHP\redis('cache');
$r->call('DEL', 'h', 'l', 'b');
$bin = "a\x00b\xff";
echo json_encode([
  'set' => $r->call('SET', 'b', $bin), 'bin' => $r->call('GET', 'b') === $bin,
  'incr' => $r->call('INCRBY', 'n', 5) > 0, 'nil' => $r->call('GET', 'missing'),
  'list' => ($r->call('RPUSH', 'l', 'x', 'y') && true) ? $r->call('LRANGE', 'l', 0, -1) : null,
  'exec' => [$r->call('MULTI'), $r->call('SET', 'h', '1'), $r->call('EXISTS', 'h'), $r->call('EXEC')],
]);
"""


@test
def redis_replies_are_typed_and_binary_safe():
    with Site(children=1) as s:
        s.script("r.php", REDIS_TYPES)
        r = s.json("r.php")
        check_eq(r, {"set": "OK", "bin": True, "incr": True, "nil": None, "list": ["x", "y"],
                     "exec": ["OK", "QUEUED", "QUEUED", ["OK", 1]]}, "replies")


MYSQL_TYPES = r"""
$my = LowPHP\mysql('shop');
$my->execute('DROP TABLE IF EXISTS t');
$my->execute('CREATE TABLE t (i INT, bi BIGINT, ti TINYINT(1), s VARCHAR(20), d DECIMAL(5,2), n INT NULL, dt DATE, fl DOUBLE, b BLOB)');
$my->execute('INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', [1, 9007199254740993, true, 'ünï 😀', '3.10', null, '2024-02-29', 1.5, "\x00\xff"]);
$sql = 'SELECT i, bi, ti, s, d, n, dt, fl FROM t';
$pooled = $my->query($sql)[0];
$bound = $my->query($sql . ' WHERE i = ?', [1])[0];
$pdo = new PDO(getenv('MY_PDO_DSN'), 'app', 'apppw');
$row = $pdo->query($sql)->fetch(PDO::FETCH_ASSOC);
echo json_encode(['pooled' => $pooled, 'bound' => $bound, 'pdo' => $row,
                  'blob' => bin2hex($my->query('SELECT b FROM t')[0]['b'])]);
"""


@test
def mysql_rows_are_typed_as_pdo_types_them():
    with Site(children=1, extra={"env[MY_PDO_DSN]": f'"{MY.pdo_dsn}"'}) as s:
        s.script("m.php", MYSQL_TYPES)
        r = s.json("m.php")
        check_eq(json.dumps(r["pooled"]), json.dumps(r["pdo"]), "JSON of the pooled row vs PDO mysql")
        check_eq(json.dumps(r["bound"]), json.dumps(r["pdo"]), "same row through a bound statement")
        check_eq(r["blob"], "00ff", "blob bytes")


@test
def a_backend_that_is_down_does_not_stop_the_site_and_recovers():
    dead_port = util.free_port()
    with Site(children=1, servers=False,
              extra={"pgsql[gone]": f'"host=127.0.0.1 port={dead_port} dbname=app user=app password=apppw"',
                     "redis[cache]": f'"{RD.dsn}"'}) as s:
        s.script("d.php", r"""
            $out = ['redis' => LowPHP\redis('cache')->call('PING')];
            try { LowPHP\pgsql('gone')->query('SELECT 1'); } catch (LowPHP\BackendException $e) {
                $out['code'] = $e->getCode(); $out['msg'] = $e->getMessage(); }
            echo json_encode($out);""")
        r = s.json("d.php")
        check_eq(r["redis"], "PONG", "the other backend serves")
        check_eq(r["code"], "08001", "connect failure code")
        check_in("[pgsql gone]", r["msg"], "message names the backend")
        check_in("retried at first use", s.log(), "the start-up warning")


STATUS_PROBE = r"""
LowPHP\pgsql('main')->query('SELECT 1'); LowPHP\redis('cache')->call('PING');
echo json_encode(1);
"""


@test
def status_page_shows_each_backend_in_every_format():
    with Site(children=2, extra={"connections.max[cache]": "1"}) as s:
        s.script("p.php", STATUS_PROBE)
        s.json("p.php")
        st = s.status()
        names = [(b["name"], b["type"], b["max connections"]) for b in st["backends"]]
        check_eq(names, [("main", "pgsql", 2), ("shop", "mysql", 2), ("cache", "redis", 1)], "backends")
        main = st["backends"][0]
        check_eq(main["open connections"], 2, "warm connections, one per worker")
        check_eq(main["busy connections"] + main["idle connections"], 2, "busy + idle")
        for fmt, needle in (("xml", "<backend><name>main</name><type>pgsql</type>"),
                            ("openmetrics", 'phpfpm_backend_open_connections{backend="main",type="pgsql"} 2'),
                            ("", "backend main (pgsql) open connections: 2")):
            with fcgi.Connection(s.b.address) as c:
                p = fcgi.php_params(os.path.join(s.root, "status"), document_root=s.root, query=fmt)
                p.update({"SCRIPT_NAME": "/status", "REQUEST_URI": "/status?" + fmt, "DOCUMENT_URI": "/status"})
                check_in(needle, c.request(p).body.decode(), f"status {fmt or 'text'}")


TX = r"""
$pg = LowPHP\pgsql('main');
$pg->execute('CREATE TEMP TABLE acct (n int)');
$v = $pg->transaction(function ($db) { $db->execute('INSERT INTO acct VALUES (1)'); return 'kept'; });
try { $pg->transaction(function ($db) { $db->execute('INSERT INTO acct VALUES (2)'); throw new DomainException('nope'); }); }
catch (DomainException $e) { $caught = $e->getMessage(); }
$pg->transaction(function ($db) {
    $db->execute('INSERT INTO acct VALUES (3)');
    try { $db->transaction(function ($inner) { $inner->execute('INSERT INTO acct VALUES (4)'); throw new LogicException('inner'); }); }
    catch (LogicException $e) {}
});
$pg->begin();
try { $pg->begin(); } catch (LowPHP\BackendException $e) { $twice = $e->getCode(); }
$pg->rollback();
echo json_encode(['value' => $v, 'caught' => $caught, 'twice' => $twice,
                  'rows' => array_column($pg->query('SELECT n FROM acct ORDER BY n'), 'n')]);
"""


@test
def transaction_commits_rolls_back_on_exception_and_nests_with_savepoints():
    with Site(children=1) as s:
        s.script("tx.php", TX)
        check_eq(s.json("tx.php"), {"value": "kept", "caught": "nope", "twice": "25001", "rows": [1, 3]},
                 "transaction results")


WORKER_APP = r"""<?php
// Boots once: the handles live in the "container" across requests.
$services = ['pg' => LowPHP\pgsql('main'), 'rd' => LowPHP\redis('cache')];
$booted = $services['pg']->query('SELECT 41 + 1 AS v')[0]['v'];
$stale = null;
while (lowphp_handle_request(function () use ($services, $booted, &$stale) {
    header('Content-Type: application/json');
    $out = ['booted' => $booted, 'pid' => getmypid()];
    if (isset($_GET['stale'])) {
        try { LowPHP\await([$stale]); $out['stale'] = 'awaited'; }
        catch (LowPHP\BackendException $e) { $out['stale'] = $e->getMessage(); }
    }
    $stale = $services['pg']->queryAsync('SELECT 1');
    $out['app'] = $services['pg']->query("SELECT current_setting('application_name') AS a")[0]['a'];
    if (isset($_GET['dirty'])) {
        $services['pg']->execute("SET application_name = 'dirty'");
        $services['pg']->begin();
    }
    if (isset($_GET['fatal'])) { $services['pg']->query('SELECT pg_sleep(0.01)'); undefined_function(); }
    $out['ping'] = $services['rd']->call('PING');
    echo json_encode($out);
})) {}
"""


@test
def worker_mode_keeps_handles_across_requests_and_resets_the_sessions():
    with Site(children=1) as s:
        util.write_file(s.tmp.join("worker.php"), WORKER_APP)
        s.b.stop()
        s.b = Backend(pool=dict(s.b.pool_settings, **{"worker.script": s.tmp.join("worker.php")}), tmp=s.tmp)
        s.b.start()
        s.script("any.php", "")
        first = s.json("any.php", "dirty=1")
        check_eq((first["booted"], first["ping"]), (42, "PONG"), "boot query and handle use")
        second = s.json("any.php", "stale=1")
        check_eq(second["pid"], first["pid"], "the same warm worker")
        check_eq(second["app"], "lowphp-fpm pool www", "session reset between handled requests")
        check_in("stale LowPHP\\Pending: created by an earlier request", second["stale"], "a stale Pending")
        r = s.get("any.php", "fatal=1")
        check_eq(r.status, 500, "fatal error mid-request")
        third = s.json("any.php")
        check_eq((third["app"], third["ping"]), ("lowphp-fpm pool www", "PONG"), "after the fatal error")
        check_in("left a transaction open; rolled back", s.log(), "worker-mode rollback warning")


RELOAD = r"""
echo json_encode(LowPHP\pgsql('main')->query('SELECT 1 AS v, pg_sleep(0.005)')[0]['v']);
"""


@test
def a_reload_under_load_fails_no_request_and_keeps_the_cap():
    import signal as _signal
    with Site(children=2, extra={"connections.max[main]": "2"}) as s:
        s.script("r.php", RELOAD)
        stop = threading.Event()
        errors, answered, seen = [], [0], []

        def client():
            while not stop.is_set():
                try:
                    r = s.get("r.php")
                    if r.status != 200 or r.body != b"1":
                        errors.append((r.status, r.body[:200], r.stderr[:300]))
                    answered[0] += 1
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))

        def sample():
            while not stop.is_set():
                seen.append(PG.app_sessions())
                time.sleep(0.01)

        threads = [threading.Thread(target=client) for _ in range(3)] + [threading.Thread(target=sample)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        for _ in range(2):
            s.b.send_signal(_signal.SIGUSR2)
            time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join()
        check_eq(errors, [], "failed requests across two reloads")
        check(answered[0] > 50, f"requests answered: {answered[0]}")
        check(max(seen) <= 2, f"sessions during reloads above connections.max: max {max(seen)}")


@test
def the_example_pool_passes_the_configuration_test_and_masks_passwords():
    from lowphp_test import lowphp_bin, run_cli
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with TempDir(prefix="lowphp-backends-conf-") as tmp:
        conf = tmp.join("main.conf")
        util.write_file(conf, f"[global]\nerror_log = {tmp.join('e.log')}\n"
                              f"include = {repo}/pools.d/backends/site.conf\n")
        env_before = dict(os.environ)
        os.environ.update(SITE_PG_PASSWORD="pg-secret", SITE_SHOP_PASSWORD="shop-secret")
        try:
            rc, out, err = run_cli(lowphp_bin(), ["-tt", "-y", conf])
        finally:
            os.environ.clear()
            os.environ.update(env_before)
        check_eq(rc, 0, f"-tt of pools.d/backends/site.conf ({err})")
        check_in("pgsql[main] = host=127.0.0.1 port=5432 dbname=site user=site", err, "-tt shows the DSN")
        check_in("connections.max[main] = 4", err, "-tt shows the cap")
        check_in("connections.max[cache] = 8", err, "default cap: pm.max_children")
        bad = tmp.join("bad.conf")
        util.write_file(bad, f"[global]\nerror_log = {tmp.join('e.log')}\n[www]\nlisten = {tmp.join('s')}\n"
                             "pm = static\npm.max_children = 1\n"
                             "redis[r] = \"host=127.0.0.1 password=hunter2 hots=x\"\n")
        rc, out, err = run_cli(lowphp_bin(), ["-t", "-y", bad])
        check(rc != 0, "a wrong key fails -t")
        check_in(f"[{bad}:7] unable to parse value for entry 'redis[r]': unknown key 'hots'", out + err, "the error")


def setup():
    global PG, MY, RD
    PG, MY, RD = Postgres(), MariaDB(), Redis()
    for srv in (PG, MY, RD):
        srv.start()


def teardown(_ctx=None):
    for srv in (PG, MY, RD):
        if srv:
            srv.stop()


if __name__ == "__main__":
    run(setup, teardown)
