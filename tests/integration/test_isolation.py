"""Per-site isolation, tested as an attacker on a shared host would test it.

Two real users (lowphp_iso_a, lowphp_iso_b, created here and deleted at the
end) run two pools, iso_a and iso_b, each with its own php.ini and conf.d: A
loads opcache, APCu, posix and calendar, B loads opcache, APCu and posix, with
different opcache sizes. Both sockets belong to www-data (nginx's user).

A stores a secret in APCu, a session and its scripts in opcache (one of them a
0600 file B cannot read) and preloads a function (opcache.preload). Then a
script of B tries to get at them: A's scripts in opcache_get_status(true),
including A's cached script, calling A's preloaded function, apcu_fetch and
APCUIterator, A's session file and session id, A's socket (from PHP, as B's
user), and ini_get of A's php_admin_value. Every attempt must fail on
lowphp-fpm. Killing A's zygote and workers with SIGKILL must not cost B a single
request while it is under load, and A must answer again within 2 seconds.

The same attack scripts then run against Debian's php-fpm8.2 with the same two
pools and users (one php.ini there: php-fpm has no per-pool php.ini); what leaks
there is printed ("php-fpm8.2 LEAKS ...") and never fails the test. When it does
leak, it also shows the attacks would have caught a leak on lowphp-fpm.
"""
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

from lowphp_test import (Backend, TempDir, check, check_eq, fcgi, lowphp_bin, phpfpm_bin, run,
                         test, util)
from lowphp_test.backend import DEFAULT_INI

USER_A, USER_B = "lowphp_iso_a", "lowphp_iso_b"
POOL_A, POOL_B = "iso_a", "iso_b"
NGINX_USER = "www-data"
APCU_KEY, APCU_SECRET = "iso_a_secret", "A's APCu secret"
SESSION_SECRET = "A's session secret"
ADMIN_MARKER = "iso-a-admin-marker"
INCLUDE_SECRET = "A's code: db password hunter2"
DEBIAN_SESSIONS = "/var/lib/php/sessions"

# --- pool A's scripts ----------------------------------------------------------
A_STORE = f"""<?php
apcu_store({APCU_KEY!r}, {APCU_SECRET!r});
$code = include __DIR__ . '/secret.php';
session_start();
$_SESSION['secret'] = {SESSION_SECRET!r};
echo json_encode(['sid' => session_id(), 'save_path' => session_save_path(),
                  'apcu_stored' => apcu_fetch({APCU_KEY!r}), 'code' => $code,
                  'user' => posix_getpwuid(posix_geteuid())['name'], 'pid' => getmypid()]);
"""
A_SECRET = f"<?php return {INCLUDE_SECRET!r};\n"
PRELOAD_SECRET = "A's preloaded code"
A_PRELOAD = f"<?php function iso_a_preloaded() {{ return {PRELOAD_SECRET!r}; }}\n"
# A checks itself: another worker of A sees A's APCu and opcache (per pool, shared
# by the pool's workers), so B not seeing them is isolation, not a broken cache.
A_SELF = f"""<?php
if (isset($_GET['hold'])) usleep(300000);  // keeps this worker busy: the next request goes to another
$st = opcache_get_status(true);
echo json_encode(['apcu' => apcu_fetch({APCU_KEY!r}), 'pid' => getmypid(),
                  'scripts' => array_keys($st['scripts'] ?? []),
                  'calendar' => extension_loaded('calendar'),
                  'preloaded' => function_exists('iso_a_preloaded') ? iso_a_preloaded() : null,
                  'opcache_mb' => ini_get('opcache.memory_consumption'),
                  'user_agent' => ini_get('user_agent')]);
"""
A_HELLO = "<?php echo 'A';"

# --- pool B's attack script ------------------------------------------------------
B_ATTACK = r"""<?php
$a_dir = $_GET['a_dir']; $sid = $_GET['sid']; $a_save = $_GET['save_path']; $a_sock = $_GET['a_sock'];
$r = ['user' => function_exists('posix_geteuid') ? posix_getpwuid(posix_geteuid())['name'] : '?',
      'pid' => getmypid()];
// 1. opcache: A's scripts in the status, A's 0600 script through the cache
$st = function_exists('opcache_get_status') ? opcache_get_status(true) : false;
$scripts = array_keys(($st ?: [])['scripts'] ?? []);
$r['opcache_enabled'] = (bool)(($st ?: [])['opcache_enabled'] ?? false);
$r['opcache_own_scripts'] = array_values(array_filter($scripts, fn($p) => $p === __FILE__));
$r['opcache_a_scripts'] = array_values(array_filter($scripts, fn($p) => str_starts_with($p, $a_dir . '/')));
$r['include_a_secret'] = @include $a_dir . '/secret.php';
$r['a_preloaded'] = function_exists('iso_a_preloaded') ? iso_a_preloaded() : null;
// 2. APCu: the key by name, and every key by iteration
$r['apcu_enabled'] = function_exists('apcu_enabled') && apcu_enabled();
$ok = false;
$v = function_exists('apcu_fetch') ? apcu_fetch($_GET['key'], $ok) : null;
$r['apcu_fetch_a'] = $ok ? $v : null;
$keys = [];
if (class_exists('APCUIterator')) foreach (new APCUIterator() as $e) $keys[] = $e['key'];
$r['apcu_keys'] = $keys;
// 3. sessions: A's file, then A's session id in A's save_path
$file = $a_save . '/sess_' . $sid;
$r['session_file'] = @file_get_contents($file);
ini_set('session.save_path', $a_save);
session_id($sid);
$r['session_hijack'] = @session_start() ? ($_SESSION['secret'] ?? null) : null;
if (session_status() === PHP_SESSION_ACTIVE) session_abort();
// 4. A's FastCGI socket
$errno = 0; $errstr = '';
$s = @stream_socket_client('unix://' . $a_sock, $errno, $errstr, 2);
$r['socket_a'] = $s ? 'connected' : "refused: $errstr";
// 5. A's php_admin_value, A's extension, B's own opcache size
$r['user_agent'] = ini_get('user_agent');
$r['calendar'] = extension_loaded('calendar');
$r['opcache_mb'] = ini_get('opcache.memory_consumption');
echo json_encode($r);
"""
B_HELLO = "<?php echo 'B';"

connect_as = util.connect_as



# --- users, files, pools ---------------------------------------------------------
def delete_user(name):
    if subprocess.run(["id", name], capture_output=True).returncode == 0:
        subprocess.run(["userdel", name], check=True, capture_output=True)
    if subprocess.run(["getent", "group", name], capture_output=True).returncode == 0:
        subprocess.run(["groupdel", name], capture_output=True)


def create_user(name):
    delete_user(name)  # left over by an interrupted run
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                    "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True)
    return pwd.getpwnam(name)


def put(path, text, pw, mode=0o600):
    util.write_file(path, text, mode)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def write_ini_dir(d, extensions, settings):
    os.makedirs(os.path.join(d, "conf.d"))
    ini = dict(DEFAULT_INI)
    # scripts written a moment ago are cached at once (default: not for 2 s)
    ini["opcache.file_update_protection"] = "0"
    ini.update(settings)
    util.write_file(os.path.join(d, "php.ini"), "".join(f"{k} = {v}\n" for k, v in ini.items()))
    for ext in extensions:
        kind = "zend_extension" if ext == "opcache" else "extension"
        util.write_file(os.path.join(d, "conf.d", f"20-{ext}.ini"), f"{kind}={ext}.so\n")


def pool_directives(pw, sock, ini_dir=None, admin=None):
    lines = [f"user = {pw.pw_name}", f"group = {pw.pw_name}", f"listen = {sock}",
             f"listen.owner = {NGINX_USER}", f"listen.group = {NGINX_USER}", "listen.mode = 0660",
             "pm = static", "pm.max_children = 2", "catch_workers_output = yes"]
    if ini_dir:
        lines += [f"php_ini = {ini_dir}/php.ini", f"php_ini_scan_dir = {ini_dir}/conf.d"]
    for k, v in (admin or {}).items():
        lines.append(f"php_admin_value[{k}] = {v}")
    return lines


class Site:
    """Users, document roots and php.ini files shared by both backends."""

    def __init__(self):
        self.tmp = TempDir(prefix="lowphp-iso-")
        self.pw_a = create_user(USER_A)
        self.pw_b = create_user(USER_B)
        # document roots: each user's own, others may traverse but not list or read
        self.a_dir = self.tmp.join("a")
        self.b_dir = self.tmp.join("b")
        for d, pw in ((self.a_dir, self.pw_a), (self.b_dir, self.pw_b)):
            os.mkdir(d)
            os.chown(d, pw.pw_uid, pw.pw_gid)
            os.chmod(d, 0o711)
        put(os.path.join(self.a_dir, "store.php"), A_STORE, self.pw_a)
        put(os.path.join(self.a_dir, "secret.php"), A_SECRET, self.pw_a)
        put(os.path.join(self.a_dir, "self.php"), A_SELF, self.pw_a)
        put(os.path.join(self.a_dir, "hello.php"), A_HELLO, self.pw_a)
        put(os.path.join(self.a_dir, "preload.php"), A_PRELOAD, self.pw_a)
        put(os.path.join(self.b_dir, "attack.php"), B_ATTACK, self.pw_b)
        put(os.path.join(self.b_dir, "hello.php"), B_HELLO, self.pw_b)
        self.ini_a = self.tmp.join("ini-a")
        self.ini_b = self.tmp.join("ini-b")
        write_ini_dir(self.ini_a, ["opcache", "apcu", "posix", "calendar"],
                      {"opcache.memory_consumption": "64",
                       # preloading as root needs a user to run it as (php-fpm too)
                       "opcache.preload": os.path.join(self.a_dir, "preload.php"),
                       "opcache.preload_user": USER_A})
        write_ini_dir(self.ini_b, ["opcache", "apcu", "posix"],
                      {"opcache.memory_consumption": "32"})
        self.session_files = []  # php-fpm's, in Debian's shared directory

    def backend(self, binary, name, per_pool_ini):
        """Both pools in one master; php-fpm gets one php.ini (A's) and Debian's conf.d."""
        tmp = TempDir(prefix=f"lowphp-iso-{name}-")
        sock_a, sock_b = tmp.join("a.sock"), tmp.join("b.sock")
        pool_a = pool_directives(self.pw_a, sock_a, self.ini_a if per_pool_ini else None,
                                 {"user_agent": ADMIN_MARKER})
        pool_b = pool_directives(self.pw_b, sock_b, self.ini_b if per_pool_ini else None)
        b = Backend(binary, name=name, tmp=tmp, pool_name=POOL_A,
                    pool=[tuple(line.split(" = ", 1)) for line in pool_a],
                    ini_file=os.path.join(self.ini_a, "php.ini"),
                    extra_conf=f"\n[{POOL_B}]\n" + "\n".join(pool_b) + "\n")
        b.sock_a, b.sock_b, b.own_tmp = sock_a, sock_b, True
        b.socket_path = b.address = sock_a  # start() waits for it
        return b

    def close(self):
        for sid_file in self.session_files:
            try:
                os.unlink(sid_file)
            except FileNotFoundError:
                pass
        for pool in (POOL_A, POOL_B):
            shutil.rmtree(os.path.join(util.SESSION_BASE, pool), ignore_errors=True)
        for user in (USER_A, USER_B):
            delete_user(user)
        self.tmp.cleanup()


def request(sock, script, query="", timeout=10.0):
    with fcgi.Connection(sock, timeout=timeout) as c:
        return c.request(fcgi.php_params(script, document_root=os.path.dirname(script), query=query))


def json_request(sock, script, query=""):
    r = request(sock, script, query)
    check(r.complete and r.status == 200, f"{script}: {r!r}")
    try:
        return json.loads(r.body)
    except ValueError:
        raise AssertionError(f"{script} did not answer JSON: {r!r}") from None


def attack(site, backend):
    """A stores its secrets (twice: both workers), then B attacks. Returns (A's view, B's result)."""
    for _ in range(2):
        stored = json_request(backend.sock_a, os.path.join(site.a_dir, "store.php"))
        site.session_files.append(os.path.join(stored["save_path"], "sess_" + stored["sid"]))
    query = urllib.parse.urlencode({"a_dir": site.a_dir, "sid": stored["sid"],
                                    "save_path": stored["save_path"], "a_sock": backend.sock_a,
                                    "key": APCU_KEY})
    result = json_request(backend.sock_b, os.path.join(site.b_dir, "attack.php"), query)
    return stored, result


def leaks(stored, r):
    """What B got of A's, by attack (empty dict: nothing)."""
    out = {}
    if r["opcache_a_scripts"]:
        out["opcache_get_status(true) lists A's scripts"] = r["opcache_a_scripts"]
    if r["include_a_secret"]:
        out["include of A's 0600 script runs A's code"] = r["include_a_secret"]
    if r["a_preloaded"]:
        out["A's opcache.preload functions callable"] = r["a_preloaded"]
    if r["apcu_fetch_a"] is not None:
        out["apcu_fetch of A's key"] = r["apcu_fetch_a"]
    if APCU_KEY in r["apcu_keys"]:
        out["APCUIterator lists A's key"] = APCU_KEY
    if r["session_file"]:
        out["A's session file read"] = r["session_file"]
    if r["session_hijack"]:
        out["A's session opened with its id"] = r["session_hijack"]
    if r["socket_a"] == "connected":
        out["A's socket connected"] = True
    if r["user_agent"] == ADMIN_MARKER:
        out["ini_get returns A's php_admin_value"] = r["user_agent"]
    if r["calendar"]:
        out["A's extension (calendar) loaded in B"] = True
    return out


# --- the tests on lowphp-fpm -------------------------------------------------------
def setup():
    site = Site()
    try:
        site.low = site.backend(lowphp_bin(), "lowphp-fpm", per_pool_ini=True).start()
        site.stored, site.result = attack(site, site.low)
    except BaseException:
        teardown(site)
        raise
    return site


def teardown(site):
    if site is None:
        # setup failed before returning: users may exist
        for user in (USER_A, USER_B):
            delete_user(user)
        return
    try:
        for b in (getattr(site, "low", None), getattr(site, "fpm", None)):
            if b is not None and b.proc is not None:
                b.stop()
    finally:
        for b in (getattr(site, "low", None), getattr(site, "fpm", None)):
            if b is not None:
                b.close()
        site.close()


@test
def pools_run_as_their_own_users(site):
    check_eq(site.stored["user"], USER_A, "pool A's worker user")
    check_eq(site.result["user"], USER_B, "pool B's worker user")
    check_eq(site.stored["code"], INCLUDE_SECRET, "A runs its own 0600 script")


@test
def sockets_reachable_by_nginx_user_only(site):
    for sock in (site.low.sock_a, site.low.sock_b):
        check_eq(connect_as(NGINX_USER, sock), "connected", f"{NGINX_USER} (listen.owner) to {sock}")
    check_eq(connect_as(USER_B, site.low.sock_a), "denied", "B's user to A's socket")
    check_eq(connect_as(USER_A, site.low.sock_b), "denied", "A's user to B's socket")


@test
def b_cannot_see_a_in_opcache(site):
    r = site.result
    check(r["opcache_enabled"], f"opcache runs in B: {r}")
    check(r["opcache_own_scripts"], f"B's opcache holds B's own script: {r['opcache_own_scripts']}")
    check_eq(r["opcache_a_scripts"], [], "A's scripts in B's opcache_get_status(true)")
    check_eq(r["include_a_secret"], False, "B including A's cached 0600 script")
    check_eq(r["a_preloaded"], None, "A's preloaded function in B")
    own = json_request(site.low.sock_a, os.path.join(site.a_dir, "self.php"))
    check(os.path.join(site.a_dir, "secret.php") in own["scripts"],
          f"A's own opcache holds A's scripts: {own['scripts']}")
    check_eq(own["preloaded"], PRELOAD_SECRET, "A's preloaded function in A")


@test
def b_cannot_fetch_a_apcu(site):
    r = site.result
    check(r["apcu_enabled"], f"APCu runs in B: {r}")
    check_eq(r["apcu_fetch_a"], None, "apcu_fetch of A's key in B")
    check(APCU_KEY not in r["apcu_keys"], f"APCUIterator in B lists A's key: {r['apcu_keys']}")
    # A's two workers share A's segment: both see the key
    # two requests at once: both of A's workers answer, and both see the key
    params = fcgi.php_params(os.path.join(site.a_dir, "self.php"), document_root=site.a_dir,
                             query="hold=1")
    conns = [fcgi.Connection(site.low.sock_a) for _ in range(2)]
    try:
        for c in conns:
            c.send_request(params)
        seen = {}
        for c in conns:
            own = json.loads(c.read_response().body)
            seen[own["pid"]] = own["apcu"]
    finally:
        for c in conns:
            c.close()
    check_eq(sorted(seen.values()), [APCU_SECRET, APCU_SECRET], f"A's two workers and their APCu values {seen}")


@test
def b_cannot_read_a_sessions(site):
    r = site.result
    check_eq(site.stored["save_path"], os.path.join(util.SESSION_BASE, POOL_A), "A's session.save_path")
    check_eq(r["session_file"], False, "B reading A's session file")
    check_eq(r["session_hijack"], None, "B opening A's session by id")
    st = os.stat(site.stored["save_path"])
    check_eq((st.st_uid, st.st_mode & 0o777), (site.pw_a.pw_uid, 0o700), "A's session dir owner and mode")


@test
def b_cannot_connect_to_a_socket(site):
    check(site.result["socket_a"].startswith("refused"), f"B's PHP to A's socket: {site.result['socket_a']}")
    check("Permission denied" in site.result["socket_a"], f"refused for permissions: {site.result['socket_a']}")


@test
def b_never_gets_a_admin_value(site):
    check_eq(site.result["user_agent"], "", "ini_get('user_agent') in B")
    own = json_request(site.low.sock_a, os.path.join(site.a_dir, "self.php"))
    check_eq(own["user_agent"], ADMIN_MARKER, "ini_get('user_agent') in A")


@test
def pools_load_their_own_php_ini(site):
    own = json_request(site.low.sock_a, os.path.join(site.a_dir, "self.php"))
    check_eq(own["calendar"], True, "calendar loaded in A (A's conf.d)")
    check_eq(site.result["calendar"], False, "calendar loaded in B")
    check_eq((own["opcache_mb"], site.result["opcache_mb"]), ("64", "32"),
             "opcache.memory_consumption in A and B")


def pool_processes(master, pool):
    zygote, workers = None, []
    for pid in util.descendants_of(master):
        title = util.proc_cmdline(pid)
        if title == f"lowphp-fpm: zygote {pool}":
            zygote = pid
        elif title == f"lowphp-fpm: pool {pool}":
            workers.append(pid)
    return zygote, sorted(workers)


class Load:
    """Threads requesting B's hello.php back to back; every failure is counted."""

    def __init__(self, sock, script, threads=4):
        self.sock, self.script = sock, script
        self.stop_flag = threading.Event()
        self.ok = 0
        self.errors = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.loop, daemon=True) for _ in range(threads)]

    def loop(self):
        while not self.stop_flag.is_set():
            try:
                r = request(self.sock, self.script, timeout=5.0)
                good = r.complete and r.status == 200 and r.body == b"B"
                err = None if good else repr(r)
            except (OSError, AssertionError) as e:
                err = f"{type(e).__name__}: {e}"
            with self.lock:
                if err:
                    self.errors.append(err)
                else:
                    self.ok += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(10)


@test
def killing_a_leaves_b_serving_and_a_returns(site):
    b = site.low
    zyg_a, workers_a = pool_processes(b.pid, POOL_A)
    zyg_b, workers_b = pool_processes(b.pid, POOL_B)
    check(zyg_a and len(workers_a) == 2, f"A's zygote {zyg_a} and workers {workers_a}")
    check(zyg_b and len(workers_b) == 2, f"B's zygote {zyg_b} and workers {workers_b}")
    mark = b.log_mark()
    hello_a = os.path.join(site.a_dir, "hello.php")
    with Load(b.sock_b, os.path.join(site.b_dir, "hello.php")) as load:
        time.sleep(0.5)
        before = load.ok
        for pid in [zyg_a] + workers_a:
            os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        back = None
        while time.monotonic() - t0 < 5:
            try:
                r = request(b.sock_a, hello_a, timeout=5.0)
                if r.complete and r.body == b"A":
                    back = time.monotonic() - t0
                    break
            except OSError:
                pass
            time.sleep(0.02)
        time.sleep(0.5)  # B keeps being loaded after A is back
    print(f"  B under load: {load.ok} requests ({load.ok - before} after the kill), "
          f"{len(load.errors)} errors; A answered again {back if back is None else round(back, 3)} s "
          "after SIGKILL", flush=True)
    check_eq(load.errors[:5], [], "B's failed requests while A was killed")
    check(load.ok - before > 20, f"B served requests during the kill ({load.ok - before})")
    check(back is not None and back <= 2.0, f"A answered again after {back} s (limit 2 s)")
    b.wait_log(rf"WARNING: \[pool {POOL_A}\] zygote was killed \(9\), restarting it", mark)
    new_zyg_a, new_workers_a = pool_processes(b.pid, POOL_A)
    check(new_zyg_a not in (None, zyg_a), f"A has a new zygote ({zyg_a} -> {new_zyg_a})")
    check(not set(new_workers_a) & set(workers_a), f"A's workers are new: {new_workers_a}")
    check_eq(pool_processes(b.pid, POOL_B), (zyg_b, workers_b), "B's zygote and workers untouched")
    check(POOL_B not in b.log_since(mark), f"nothing logged about B:\n{b.log_since(mark)}")


def kill_zygote_and_time_restart(b, pool, old_zygote):
    """SIGKILL the zygote; seconds until a new zygote of the pool runs and its workers serve."""
    os.kill(old_zygote, signal.SIGKILL)
    t0 = time.monotonic()
    util.wait_for(lambda: pool_processes(b.pid, pool)[0] not in (None, old_zygote), 40,
                  interval=0.02, what=f"a new zygote for {pool}")
    return time.monotonic() - t0


@test
def zygote_restarts_back_off_only_while_it_keeps_dying(site):
    b = site.low
    # A's zygote was restarted by the previous test a moment ago: dying again this
    # soon counts as a crash loop, so the next start waits (1 s more)
    zyg = pool_processes(b.pid, POOL_A)[0]
    quick = kill_zygote_and_time_restart(b, POOL_A, zyg)
    check(quick >= 0.9, f"a zygote that keeps dying is restarted after a pause ({quick:.2f} s)")
    # once it has run 10 s it was healthy: the next restart is at once again
    time.sleep(10.5)
    zyg = pool_processes(b.pid, POOL_A)[0]
    stable = kill_zygote_and_time_restart(b, POOL_A, zyg)
    print(f"  restart after a crash loop: {quick:.2f} s; after 10 s of health: {stable:.2f} s", flush=True)
    check(stable <= 0.6, f"a zygote that ran 10 s is restarted at once, not on the next tick ({stable:.2f} s)")
    r = request(b.sock_a, os.path.join(site.a_dir, "hello.php"))
    check(r.complete and r.body == b"A", f"A serves: {r!r}")


# --- the same attacks on php-fpm8.2, recorded ------------------------------------------
@test
def phpfpm_same_attacks_recorded(site):
    """Not a check of php-fpm: prints what it leaks. Fails only if the attacks could not run."""
    site.fpm = site.backend(phpfpm_bin(), "php-fpm8.2", per_pool_ini=False).start()
    stored, result = attack(site, site.fpm)
    check_eq((stored["user"], result["user"]), (USER_A, USER_B), "php-fpm workers' users")
    found = leaks(stored, result)
    low = leaks(site.stored, site.result)
    print(f"  lowphp-fpm leaks: {json.dumps(low) if low else 'nothing'}", flush=True)
    for what in ("opcache_get_status(true) lists A's scripts", "include of A's 0600 script runs A's code",
                 "A's opcache.preload functions callable",
                 "apcu_fetch of A's key", "APCUIterator lists A's key", "A's session file read",
                 "A's session opened with its id", "A's socket connected",
                 "ini_get returns A's php_admin_value", "A's extension (calendar) loaded in B"):
        state = f"LEAKS {json.dumps(found[what])}" if what in found else "does not leak"
        print(f"  php-fpm8.2 {state}: {what}", flush=True)
    check_eq(low, {}, "lowphp-fpm leaks (the same attacks)")
    site.fpm.stop()


if __name__ == "__main__":
    run(setup, teardown)
