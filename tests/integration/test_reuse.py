"""connections.reuse (issue 23): an unchanged app that opens `new PDO`,
`new mysqli` or `pg_connect` at the top of every request gets a warm
connection the worker kept, and a clean one. Against real PostgreSQL 15 and
MariaDB servers started on loopback by this test: nothing a request leaves
(an open transaction, SET, a temp table, a user variable, an advisory or named
lock, a changed PDO attribute) reaches a later request on any worker; the
server-side connect count over 1,000 requests is one per worker with reuse on
and one per request with it off (as php-fpm); a server restart under wrk
costs at most one failed request per worker once the server is back; two
connections to one database and explicit close() still work; the status
page counts.

Requests go to the pool over FastCGI (params as nginx sends them), the load
test through nginx with wrk."""
import json
import os
import re
import subprocess
import threading
import time

from lowphp_test import (MariaDB, Postgres, ScriptedPool, Stack, TempDir, check, check_eq, check_in, http,
                         run, test, util)

PG = MY = None
WORKERS = 4


def env_pool():
    """Pool directives giving the scripts where the servers are."""
    return {
        "env[PGDSN]": f'"{PG.pdo_dsn}"',
        "env[PGCONN]": f'"{PG.dsn}"',
        "env[MYDSN]": f'"{MY.pdo_dsn}"',
        "env[MYPORT]": str(MY.port),
    }


class Site(ScriptedPool):
    """A lowphp-fpm pool (connections.reuse on unless told) told where the
    servers are."""

    def __init__(self, reuse=True, children=WORKERS, extra=None):
        pool = {"connections.reuse": "on"} if reuse else {}
        pool.update(env_pool())
        pool.update(extra or {})
        super().__init__(pool, children, prefix="lowphp-reuse-")


def concurrently(fn, n):
    """fn(i) in n threads at once; their results in order (an exception is
    re-raised)."""
    out = [None] * n

    def one(i):
        try:
            out[i] = fn(i)
        except BaseException as e:  # noqa: BLE001
            out[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in out:
        if isinstance(r, BaseException):
            raise r
    return out


# --- what each driver's script sees, and what a dirty request leaves -------
# Every script first reports the session it was handed, then (?dirty=1)
# leaves everything behind and holds its worker for 300 ms, so four dirty
# requests at once land on the four workers.

PG_SEEN = r"""
function pg_state(callable $one): array {
    return [
        'in_transaction' => $one('SELECT txid_current_if_assigned() IS NOT NULL') === 't',
        'marks' => (int)$one('SELECT count(*) FROM marks'),
        'statement_timeout' => $one('SHOW statement_timeout'),
        'temp_table' => $one("SELECT to_regclass('leak') IS NOT NULL") === 't',
        'advisory_locks' => (int)$one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"),
        'charset' => $one('SHOW client_encoding'),
    ];
}
$PG_DIRTY = ["SET statement_timeout = '123s'", "SET client_encoding = 'LATIN1'", 'CREATE TEMP TABLE leak(x int)',
             'SELECT pg_try_advisory_lock(4242)', 'BEGIN', "INSERT INTO marks VALUES ('dirty')"];
"""

MY_SEEN = r"""
function my_state(callable $one): array {
    try { $one('SELECT 1 FROM leak'); $temp = true; } catch (Throwable $e) { $temp = false; }
    return [
        'in_transaction' => (int)$one('SELECT @@in_transaction') === 1,
        'marks' => (int)$one('SELECT count(*) FROM marks'),
        'wait_timeout' => (int)$one('SELECT @@session.wait_timeout'),
        'user_variable' => $one('SELECT @leak'),
        'temp_table' => $temp,
        'named_lock' => $one("SELECT IS_USED_LOCK('leak')") !== null,
        'charset' => $one('SELECT @@character_set_client'),
    ];
}
$MY_DIRTY = ['SET SESSION wait_timeout = 12345', 'SET NAMES latin1', 'SET @leak = 1', 'CREATE TEMPORARY TABLE leak(x int)',
             "SELECT GET_LOCK('leak', 0)", 'START TRANSACTION', "INSERT INTO marks VALUES ('dirty')"];
"""

PDO_ATTRS = r"""
function pdo_attrs(PDO $db): array {
    return ['errmode' => $db->getAttribute(PDO::ATTR_ERRMODE),
            'fetch' => $db->getAttribute(PDO::ATTR_DEFAULT_FETCH_MODE),
            'case' => $db->getAttribute(PDO::ATTR_CASE),
            'pdo_in_transaction' => $db->inTransaction()];
}
function pdo_dirty(PDO $db, array $sqls): void {
    foreach ($sqls as $sql) {
        if ($sql === 'BEGIN' || $sql === 'START TRANSACTION') $db->beginTransaction(); else $db->query($sql);
    }
    $db->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_SILENT);
    $db->setAttribute(PDO::ATTR_DEFAULT_FETCH_MODE, PDO::FETCH_NUM);
    $db->setAttribute(PDO::ATTR_CASE, PDO::CASE_UPPER);
}
"""

DRIVERS = {
    "pdo_pgsql": PG_SEEN + PDO_ATTRS + r"""
$db = new PDO(getenv('PGDSN'), 'app', 'apppw');
$seen = pg_state(fn($sql) => $db->query($sql)->fetchColumn()) + pdo_attrs($db);
$seen['session'] = $db->query('SELECT pg_backend_pid()')->fetchColumn();
if (isset($_GET['dirty'])) { pdo_dirty($db, $PG_DIRTY); usleep(300000); }
""",
    "pg_connect": PG_SEEN + r"""
$db = pg_connect(getenv('PGCONN'));
$one = fn($sql) => pg_fetch_row(pg_query($db, $sql))[0];
$seen = pg_state($one);
$seen['session'] = $one('SELECT pg_backend_pid()');
if (isset($_GET['dirty'])) { foreach ($PG_DIRTY as $sql) pg_query($db, $sql); usleep(300000); }
""",
    "pdo_mysql": MY_SEEN + PDO_ATTRS + r"""
$db = new PDO(getenv('MYDSN'), 'app', 'apppw');
$seen = my_state(function ($sql) use ($db) {
    $st = $db->query($sql);
    if ($st === false) throw new RuntimeException('query failed');
    return $st->fetchColumn();
}) + pdo_attrs($db);
$seen['session'] = $db->query('SELECT CONNECTION_ID()')->fetchColumn();
if (isset($_GET['dirty'])) { pdo_dirty($db, $MY_DIRTY); usleep(300000); }
""",
    "mysqli": MY_SEEN + r"""
$db = new mysqli('127.0.0.1', 'app', 'apppw', 'app', (int)getenv('MYPORT'));
$one = fn($sql) => $db->query($sql)->fetch_row()[0];
$seen = my_state($one);
$seen['session'] = $one('SELECT CONNECTION_ID()');
if (isset($_GET['dirty'])) {
    foreach ($MY_DIRTY as $sql) { if ($sql === 'START TRANSACTION') $db->begin_transaction(); else $db->query($sql); }
    usleep(300000);
}
""",
}

# ?hold=1 keeps the worker a while, so concurrent requests spread over all.
SCRIPT_TAIL = r"""
if (isset($_GET['hold'])) usleep(150000);
$seen['worker'] = getmypid();
echo json_encode($seen);
"""

CLEAN_PG = {"in_transaction": False, "marks": 0, "statement_timeout": "0", "temp_table": False,
            "advisory_locks": 0}
CLEAN_MY = {"in_transaction": False, "marks": 0, "user_variable": None, "temp_table": False,
            "named_lock": False}
CLEAN_PDO = {"errmode": 2, "fetch": 4, "case": 0, "pdo_in_transaction": False}  # PHP 8 defaults


def locks_held():
    """Advisory locks on PostgreSQL plus named locks on MariaDB, server-wide."""
    pg = int(PG.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")[0][0])
    my = MY.sql("SELECT IS_USED_LOCK('leak')")[0][0]
    return pg + (0 if my == "NULL" else 1)


def clean_for(driver):
    want = dict(CLEAN_PG if driver in ("pdo_pgsql", "pg_connect") else CLEAN_MY)
    if driver.startswith("pdo_"):
        want.update(CLEAN_PDO)
    return want


@test
def nothing_a_request_leaves_reaches_a_later_request_on_any_worker():
    with Site() as s:
        for driver, code in DRIVERS.items():
            s.script(f"{driver}.php", code + SCRIPT_TAIL)
        for driver in DRIVERS:
            name = f"{driver}.php"
            first = s.json(name)
            want = clean_for(driver)
            check_eq({k: first[k] for k in want}, want, f"{driver}: a fresh session")
            # the character set a fresh session has (the driver's, else the server's)
            check(first["charset"].lower() != "latin1", f"{driver}: a fresh charset: {first}")
            want["charset"] = first["charset"]
            if "wait_timeout" in first:
                check(first["wait_timeout"] != 12345, f"{driver}: fresh wait_timeout")
            dirty = concurrently(lambda i: s.json(name, "dirty=1"), WORKERS)
            check_eq(len({d["worker"] for d in dirty}), WORKERS, f"{driver}: the dirty requests' workers")
            # the resets run after each response: the locks go without a next request
            util.wait_for(lambda: locks_held() == 0 or None, 5, what=f"{driver}: the dirty sessions' locks to go")
            # every worker, twice: each request holds its worker a while
            later = []
            for _ in range(2):
                later += concurrently(lambda i: s.json(name, "hold=1"), WORKERS)
            seen_workers = {d["worker"] for d in later}
            check(len(seen_workers) >= WORKERS - 1,
                  f"{driver}: later requests reached {len(seen_workers)} workers")
            for d in later:
                check_eq({k: d[k] for k in want}, want, f"{driver}: what a later request saw")
                if "wait_timeout" in d:
                    check(d["wait_timeout"] != 12345, f"{driver}: SET wait_timeout leaked")
            # kept: the later requests ran on the sessions the dirty ones had
            check(set(d["session"] for d in later) <= set(d["session"] for d in dirty) | {first["session"]},
                  f"{driver}: new sessions instead of kept ones: {later} vs {dirty}")
        log = s.log()
        for label in ("PDO pgsql", "pgsql", "PDO mysql", "mysqli"):
            check(re.search(rf"\[pool www\] {label} connection: {re.escape(s.root)}/\S+\.php left a "
                            r"transaction open; rolled back", log), f"the rollback warning for {label}:\n{log[-3000:]}")
        st = s.status()
        check(st["connection rollbacks"] >= 4 * WORKERS, f"rollbacks counted: {st}")
        check(st["connection resets"] > 0 and st["connection reuses"] > 0, f"status counters: {st}")
        check_eq(st["kept connections"], 4 * WORKERS, "kept connections (four drivers, four workers)")


CONNECT_PAGES = {
    "pg.php": r"""
$db = new PDO(getenv('PGDSN'), 'app', 'apppw');
echo $db->query('SELECT 40 + 2')->fetchColumn();
""",
    "my.php": r"""
$db = new mysqli('127.0.0.1', 'app', 'apppw', 'app', (int)getenv('MYPORT'));
echo $db->query('SELECT 40 + 2')->fetch_row()[0];
""",
}


def thousand_requests(s, name, clients=WORKERS, total=1000):
    per = total // clients

    def client(_):
        bad = []
        for _ in range(per):
            r = s.get(name)
            if r.status != 200 or r.body != b"42":
                bad.append((r.status, r.body[:100], r.stderr[:300]))
        return bad

    bad = sum(concurrently(client, clients), [])
    check_eq(bad[:3], [], f"{name}: failed requests ({len(bad)})")


@test
def a_thousand_requests_connect_once_per_worker_with_reuse_and_every_time_without():
    for reuse in (True, False):
        with Site(reuse=reuse) as s:
            for name, code in CONNECT_PAGES.items():
                s.script(name, code)
            pg0 = PG.stat_sessions()
            pg_connects0 = PG.connects()
            thousand_requests(s, "pg.php")
            pg_new = PG.connects() - pg_connects0
            # MariaDB's Connections status counts every connect (not
            # COM_CHANGE_USER, which USER_STATISTICS counts too); the
            # harness's own query is one
            my0 = MY.global_connections()
            thousand_requests(s, "my.php")
            my_new = MY.global_connections() - my0 - 1
            if reuse:
                check(1 <= pg_new <= WORKERS, f"PostgreSQL connects with reuse: {pg_new}")
                check(1 <= my_new <= WORKERS, f"MariaDB connects with reuse: {my_new}")
                st = s.status()
                check(st["connection reuses"] >= 2000 - 2 * WORKERS, f"reuses counted: {st}")
            else:
                check_eq(pg_new, 1000, "PostgreSQL connects without reuse (one per request, as php-fpm)")
                check_eq(my_new, 1000, "MariaDB connects without reuse")
                check("kept connections" not in s.status(), "a pool without reuse shows no reuse fields")
            # pg_stat_database.sessions agrees with the log count
            util.wait_for(lambda: PG.stat_sessions() - pg0 >= pg_new or None, 5,
                          what="pg_stat_database.sessions to count the sessions")


FAILS_PAGE = r"""
try {
    if ($_GET['db'] === 'pg') {
        $db = new PDO(getenv('PGDSN'), 'app', 'apppw', [PDO::ATTR_TIMEOUT => 2]);
        echo $db->query('SELECT 40 + 2')->fetchColumn();
    } else {
        $db = new mysqli('127.0.0.1', 'app', 'apppw', 'app', (int)getenv('MYPORT'));
        echo $db->query('SELECT 40 + 2')->fetch_row()[0];
    }
} catch (Throwable $e) {
    http_response_code(500);
    file_put_contents(getenv('FAILS'), sprintf("%.6f %d %s\n", microtime(true), getmypid(),
                      str_replace("\n", ' ', $e->getMessage())), FILE_APPEND | LOCK_EX);
}
"""


def restart_under_wrk(server, db):
    fails = util.TempDir(prefix="lowphp-reuse-fails-")
    fails_file = fails.join("fails.log")
    util.write_file(fails_file, "", 0o666)
    os.chmod(fails.path, 0o777)
    pool = {"pm": "static", "pm.max_children": str(WORKERS), "connections.reuse": "on",
            "env[FAILS]": fails_file}
    pool.update(env_pool())
    st = Stack(pool=pool)
    try:
        util.write_file(os.path.join(st.root, "page.php"), "<?php\n" + FAILS_PAGE)
        w = subprocess.Popen(["wrk", "-t2", "-c8", "-d8s", "--timeout", "10s",
                              f"http://127.0.0.1:{st.port}/page.php?db={db}"], stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        server.restart(down=0.5)
        back = time.time()
        out = w.communicate(timeout=60)[0]
        total = int(re.search(r"(\d+) requests in", out).group(1))
        non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", out) or [0, 0])[1])
        failures = [line.split(" ", 2) for line in util.read_text(fails_file).splitlines()]
        after = [f for f in failures if float(f[0]) > back]
        by_worker = {}
        for f in after:
            by_worker[f[1]] = by_worker.get(f[1], 0) + 1
        check(total > 200, f"{db}: requests under wrk: {total}")
        check_eq(non2xx, len(failures), f"{db}: failed responses and failures the page logged")
        check(all(n <= 1 for n in by_worker.values()),
              f"{db}: more than one failure per worker once the server was back: {after[:8]}")
        # and the app is served again afterwards
        r = http.get(st.port, f"/page.php?db={db}")
        check_eq((r.status, r.body), (200, b"42"), f"{db}: after the restart")
        return len(failures), len(after)
    finally:
        st.close(check=False)
        fails.cleanup()


@test
def a_server_restart_under_wrk_fails_at_most_one_request_per_worker_once_it_is_back():
    restart_under_wrk(PG, "pg")
    restart_under_wrk(MY, "my")


TWO_CONNECTIONS = r"""
$a = new PDO(getenv('PGDSN'), 'app', 'apppw');
$b = new PDO(getenv('PGDSN'), 'app', 'apppw');
$pa = $a->query('SELECT pg_backend_pid()')->fetchColumn();
$pb = $b->query('SELECT pg_backend_pid()')->fetchColumn();
$a->beginTransaction();
$a->exec("INSERT INTO marks VALUES ('two')");
$seenByB = (int)$b->query("SELECT count(*) FROM marks WHERE v = 'two'")->fetchColumn();
$a->rollBack();
$a = null;                               // PDO's close
$c = new PDO(getenv('PGDSN'), 'app', 'apppw');
$m1 = new mysqli('127.0.0.1', 'app', 'apppw', 'app', (int)getenv('MYPORT'));
$m2 = new mysqli('127.0.0.1', 'app', 'apppw', 'app', (int)getenv('MYPORT'));
$i1 = $m1->query('SELECT CONNECTION_ID()')->fetch_row()[0];
$i2 = $m2->query('SELECT CONNECTION_ID()')->fetch_row()[0];
$m1->close();
$m3 = mysqli_connect('127.0.0.1', 'app', 'apppw', 'app', (int)getenv('MYPORT'));
$g = pg_connect(getenv('PGCONN'));
pg_close($g);
$g2 = pg_connect(getenv('PGCONN'));
echo json_encode(['two_pg_sessions' => $pa !== $pb, 'b_saw_a_uncommitted' => $seenByB,
                  'c' => (int)$c->query('SELECT 7')->fetchColumn(),
                  'two_my_sessions' => $i1 !== $i2, 'm3' => (int)$m3->query('SELECT 8')->fetch_row()[0],
                  'pg_after_close' => (int)pg_fetch_row(pg_query($g2, 'SELECT 9'))[0]]);
"""


@test
def two_connections_to_one_database_and_explicit_close_still_work():
    with Site(children=1) as s:
        s.script("two.php", TWO_CONNECTIONS)
        for i in range(5):
            got = s.json("two.php")
            check_eq(got, {"two_pg_sessions": True, "b_saw_a_uncommitted": 0, "c": 7, "two_my_sessions": True,
                           "m3": 8, "pg_after_close": 9}, f"request {i}")
        check_eq(int(PG.sql("SELECT count(*) FROM marks WHERE v = 'two'")[0][0]), 0, "rolled back row")
        # one worker keeps at most one connection per key and driver
        check(s.status()["kept connections"] <= 3, f"kept: {s.status()}")


@test
def an_idle_worker_closes_its_connections_after_idle_timeout():
    with Site(children=1, extra={"connections.idle_timeout": "1s"}) as s:
        s.script("pg.php", CONNECT_PAGES["pg.php"])
        check_eq(s.get("pg.php").body, b"42", "first request")
        check_eq(PG.app_sessions(), 1, "the kept session")
        util.wait_for(lambda: PG.app_sessions() == 0 or None, 5, what="the idle session to close")
        check_eq(s.status()["kept connections"], 0, "kept connections after idle_timeout")
        check_eq(s.get("pg.php").body, b"42", "served again after the close")


# Worker mode: the app opens its three connections once, at boot, and keeps
# them in the handler's closure; ?driver= picks which one a call reports on
# (and, with dirty=1, leaves dirty).
WORKER_APP = "<?php\n" + PG_SEEN + MY_SEEN + PDO_ATTRS + r"""
$pg = new PDO(getenv('PGDSN'), 'app', 'apppw');
$pdo_my = new PDO(getenv('MYDSN'), 'app', 'apppw');
$my = new mysqli('127.0.0.1', 'app', 'apppw', 'app', (int)getenv('MYPORT'));
$pg->setAttribute(PDO::ATTR_DEFAULT_FETCH_MODE, PDO::FETCH_ASSOC); // the app's own choice, kept
$calls = 0;
$handler = function () use ($pg, $pdo_my, $my, &$calls, $PG_DIRTY, $MY_DIRTY) {
    $calls++;
    $dirty = isset($_GET['dirty']);
    switch ($_GET['driver']) {
    case 'pdo_pgsql':
        $seen = pg_state(fn($sql) => $pg->query($sql)->fetchColumn()) + pdo_attrs($pg);
        $seen['session'] = $pg->query('SELECT pg_backend_pid()')->fetchColumn();
        if ($dirty) pdo_dirty($pg, $PG_DIRTY);
        break;
    case 'pdo_mysql':
        $seen = my_state(fn($sql) => $pdo_my->query($sql)->fetchColumn()) + pdo_attrs($pdo_my);
        $seen['session'] = $pdo_my->query('SELECT CONNECTION_ID()')->fetchColumn();
        if ($dirty) pdo_dirty($pdo_my, $MY_DIRTY);
        break;
    default:
        $one = fn($sql) => $my->query($sql)->fetch_row()[0];
        $seen = my_state($one);
        $seen['session'] = $one('SELECT CONNECTION_ID()');
        if ($dirty) {
            foreach ($MY_DIRTY as $sql) { if ($sql === 'START TRANSACTION') $my->begin_transaction(); else $my->query($sql); }
        }
    }
    $seen['calls'] = $calls;
    echo json_encode($seen);
};
while (lowphp_handle_request($handler)) {}
"""


@test
def in_worker_mode_connections_the_app_keeps_are_reset_between_calls():
    tmp = TempDir(prefix="lowphp-reuse-wm-")
    try:
        script = tmp.join("worker.php")
        util.write_file(script, WORKER_APP)
        with Site(children=1, extra={"worker.script": script}) as s:
            for driver in ("pdo_pgsql", "pdo_mysql", "mysqli"):
                want = clean_for(driver)
                if driver == "pdo_pgsql":
                    want["fetch"] = 2  # PDO::FETCH_ASSOC, set by the app at boot
                before = s.json("any.php", f"driver={driver}&dirty=1")
                check_eq({k: before[k] for k in want}, want, f"{driver}: clean at first")
                after = s.json("any.php", f"driver={driver}")
                check_eq({k: after[k] for k in want}, want, f"{driver}: the next call's view")
                if "wait_timeout" in after:
                    check(after["wait_timeout"] != 12345, f"{driver}: SET wait_timeout leaked")
                check_eq(after["session"], before["session"], f"{driver}: the same kept session")
                check_eq(after["calls"], before["calls"] + 1, f"{driver}: the same warm worker")
            util.wait_for(lambda: locks_held() == 0 or None, 5, what="the locks of the dirty calls to go")
            check(s.status()["connection rollbacks"] >= 3, f"rollbacks counted: {s.status()}")
    finally:
        tmp.cleanup()


CAPPED_PAGES = {
    "pg.php": r"""
$db = new PDO(getenv('PGDSN'), 'app', 'apppw');
echo $db->query('SELECT 40 + 2 FROM pg_sleep(0.02)')->fetchColumn();
""",
    "pgc.php": r"""
$db = pg_connect(getenv('PGCONN'));
echo pg_fetch_row(pg_query($db, 'SELECT 40 + 2 FROM pg_sleep(0.02)'))[0];
""",
    "my.php": r"""
$db = new mysqli('127.0.0.1', 'app', 'apppw', 'app', (int)getenv('MYPORT'));
echo $db->query('SELECT 40 + 2 FROM (SELECT SLEEP(0.02)) AS s')->fetch_row()[0];
""",
}


@test
def a_declared_backends_connections_max_caps_kept_connections_with_no_failed_request():
    """pgsql[main] and mysql[shop] name the servers the pages connect to with
    connections.max = 2 each: four busy workers keep at most two sessions
    per server (their LowPHP\\ API connections count too), and every request
    is served."""
    extra = {"pgsql[main]": f'"{PG.dsn}"', "mysql[shop]": f'"{MY.dsn}"',
             "connections.max[main]": "2", "connections.max[shop]": "2"}
    with Site(extra=extra) as s:
        for name, code in CAPPED_PAGES.items():
            s.script(name, code)
        # pgc.php after pg.php: a worker's kept PDO connection is given up for
        # its pg_connect, or to a waiter (under ASan, this once caught a read of
        # the freed ext/pgsql resource).
        for name, srv in (("pg.php", PG), ("pgc.php", PG), ("my.php", MY)):
            peak = [0]
            done = threading.Event()

            def sample():
                while not done.is_set():
                    peak[0] = max(peak[0], srv.app_sessions())
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                thousand_requests(s, name, clients=2 * WORKERS, total=200)
            finally:
                done.set()
                sampler.join()
            check(1 <= peak[0] <= 2, f"{name}: at most connections.max sessions at once, saw {peak[0]}")
        st = s.status()
        check(st["connection reuses"] > 0, f"kept connections were reused: {st}")
        waits = {b["name"]: b["waits"] for b in st["backends"]}
        check(waits["main"] > 0 and waits["shop"] > 0, f"workers waited for tokens: {st['backends']}")


@test
def reuse_is_off_by_default_and_dumped_by_tt():
    with Site(reuse=False, children=1) as s:
        s.script("pg.php", CONNECT_PAGES["pg.php"])
        check_eq(s.get("pg.php").body, b"42", "served")
        util.wait_for(lambda: PG.app_sessions() == 0 or None, 5, what="the request's session to close")
    tmp = TempDir(prefix="lowphp-reuse-conf-")
    try:
        conf = tmp.join("p.conf")
        util.write_file(conf, "[global]\nerror_log = /dev/null\n[www]\nlisten = 127.0.0.1:9999\n"
                              "user = nobody\npm = static\npm.max_children = 1\nconnections.reuse = on\n"
                              "connections.idle_timeout = 30s\n")
        out = subprocess.run([os.environ["LOWPHP_BIN"], "-tt", "-y", conf], capture_output=True, text=True)
        check_eq(out.returncode, 0, f"-tt: {out.stderr}")
        check_in("connections.reuse = yes", out.stdout + out.stderr, "-tt shows reuse")
        check_in("connections.idle_timeout = 30s", out.stdout + out.stderr, "-tt shows idle_timeout")
        util.write_file(conf, "[global]\nerror_log = /dev/null\n[www]\nlisten = 127.0.0.1:9999\n"
                              "user = nobody\npm = static\npm.max_children = 1\nconnections.reuse = sometimes\n")
        out = subprocess.run([os.environ["LOWPHP_BIN"], "-t", "-y", conf], capture_output=True, text=True)
        check(out.returncode != 0, "a bad value fails -t")
        check_in(f"[{conf}:8] unable to parse value for entry 'connections.reuse'", out.stdout + out.stderr,
                 "the error")
        # the shipped example pool passes -tt
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        util.write_file(conf, f"[global]\nerror_log = /dev/null\ninclude = {repo}/pools.d/reuse/site.conf\n")
        out = subprocess.run([os.environ["LOWPHP_BIN"], "-tt", "-y", conf], capture_output=True, text=True,
                             env=dict(os.environ, SITE_SHOP_PASSWORD="x"))
        check_eq(out.returncode, 0, f"-tt of pools.d/reuse/site.conf: {out.stderr}")
        check_in("connections.reuse = yes", out.stderr, "the example turns reuse on")
        check_in("connections.max[shop] = 4", out.stderr, "the example's cap")
    finally:
        tmp.cleanup()


def setup():
    global PG, MY
    PG, MY = Postgres(), MariaDB()
    for srv in (PG, MY):
        srv.start()
    PG.sql("CREATE TABLE marks(v text)", db="app")
    PG.sql("ALTER TABLE marks OWNER TO app", db="app")
    MY.sql("CREATE TABLE app.marks(v varchar(20)) ENGINE=InnoDB")


def teardown(_ctx=None):
    for srv in (PG, MY):
        if srv:
            srv.stop()


if __name__ == "__main__":
    run(setup, teardown)
