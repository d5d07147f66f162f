"""Per-pool default session.save_path: a pool that sets no session.save_path
(php.ini, -d, php_value, php_admin_value) stores its sessions in
/var/lib/php/sessions/lowphp/<pool>, owned by the pool's user, mode 0700;
whatever the operator sets wins."""
import os
import pwd
import shutil
import stat

from lowphp_test import Backend, TempDir, check, check_eq, fcgi, run, test
from lowphp_test.util import AS_NOBODY, SESSION_BASE

POOL = "lowphp_sess_t"  # a name no real site uses: the test removes its directory
SESSION_SCRIPT = """<?php
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
echo session_save_path(), "\\n", session_id(), "\\n", $_SESSION['n'];
"""


def session_request(b, cookie=None):
    script = os.path.join(b.dir, "sess.php")
    with open(script, "w") as f:
        f.write(SESSION_SCRIPT)
    params = {"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": script, "SCRIPT_NAME": "/sess.php"}
    if cookie:
        params["HTTP_COOKIE"] = f"PHPSESSID={cookie}"
    with fcgi.Connection(b.address) as c:
        r = c.request(params)
    check(r.complete and r.status == 200, f"response {r!r}")
    path, sid, count = r.body.decode().split("\n")
    return path, sid, int(count)


def pool_dir():
    return os.path.join(SESSION_BASE, POOL)


def remove_pool_dir():
    shutil.rmtree(pool_dir(), ignore_errors=True)


@test
def default_is_a_private_dir_per_pool():
    remove_pool_dir()
    b = Backend(pool_name=POOL, pool={"user": "nobody", "group": "nogroup"})
    b.start()
    try:
        path, sid, n = session_request(b)
        check_eq(path, pool_dir(), "session.save_path")
        st = os.stat(pool_dir())
        check_eq(oct(stat.S_IMODE(st.st_mode)), "0o700", "pool session dir mode")
        check_eq(pwd.getpwuid(st.st_uid).pw_name, "nobody", "pool session dir owner")
        base = os.stat(SESSION_BASE)
        check_eq((base.st_uid, oct(stat.S_IMODE(base.st_mode))), (0, "0o711"), "base owner and mode")
        f = os.stat(os.path.join(pool_dir(), f"sess_{sid}"))
        check_eq(pwd.getpwuid(f.st_uid).pw_name, "nobody", "session file owner")
        check_eq(session_request(b, sid)[2], n + 1, "the session is found again")
    finally:
        try:
            b.stop()
        finally:
            b.close()
            remove_pool_dir()


@test
def numeric_user_without_passwd_entry_gets_its_dir():
    uid = 48213
    while True:  # an id nobody has
        try:
            pwd.getpwuid(uid)
            uid += 1
        except KeyError:
            break
    remove_pool_dir()
    b = Backend(pool_name=POOL, pool={"user": str(uid), "group": str(uid)})
    b.start()
    try:
        path, sid, _ = session_request(b)
        check_eq(path, pool_dir(), "session.save_path")
        st = os.stat(pool_dir())
        check_eq((st.st_uid, st.st_gid, oct(stat.S_IMODE(st.st_mode))), (uid, uid, "0o700"),
                 "pool session dir owner, group and mode")
        check_eq(os.stat(os.path.join(pool_dir(), f"sess_{sid}")).st_uid, uid, "session file owner")
    finally:
        try:
            b.stop()
        finally:
            b.close()
            remove_pool_dir()


@test
def not_root_keeps_php_default_without_a_warning():
    """Started by an unprivileged user every pool runs as that user, so a
    directory per pool would isolate nothing: PHP's default stays and, as
    php-fpm, nothing is logged (php-src's bug68381 test wants an empty log)."""
    remove_pool_dir()
    b = Backend(pool_name=POOL)
    os.chmod(b.dir, 0o777)  # error_log, pid and socket of an unprivileged master
    as_root = b.command
    b.command = lambda: [*AS_NOBODY, *as_root()]
    b.start()
    try:
        path, sid, n = session_request(b)
        check(not path.startswith(SESSION_BASE) and n == 1,
              f"PHP's default session.save_path and a working session, got {path!r}, {n}")
        check(not os.path.exists(pool_dir()), f"{pool_dir()} made for an unprivileged pool")
    finally:
        try:
            b.stop()
        finally:
            log = b.log()
            b.close()
            remove_pool_dir()
    check_eq([line for line in log.splitlines() if "NOTICE" not in line], [],
             "error log lines above NOTICE")


@test
def existing_dir_is_given_back_to_the_pool_user():
    remove_pool_dir()
    os.makedirs(pool_dir(), exist_ok=True)
    os.chmod(pool_dir(), 0o777)
    b = Backend(pool_name=POOL, pool={"user": "nobody", "group": "nogroup"})
    b.start()
    try:
        st = os.stat(pool_dir())
        check_eq((st.st_uid, oct(stat.S_IMODE(st.st_mode))), (pwd.getpwnam("nobody").pw_uid, "0o700"),
                 "owner and mode after start")
    finally:
        try:
            b.stop()
        finally:
            b.close()
            remove_pool_dir()


@test
def pool_values_win():
    remove_pool_dir()
    for key in ("php_value[session.save_path]", "php_admin_value[session.save_path]"):
        with TempDir() as mine:
            b = Backend(pool_name=POOL, pool={key: mine.path})
            b.start()
            try:
                check_eq(session_request(b)[0], mine.path, f"session.save_path from {key}")
                check(not os.path.exists(pool_dir()), f"no default dir made when {key} is set")
            finally:
                b.close()


@test
def php_ini_wins():
    remove_pool_dir()
    with TempDir() as mine:
        b = Backend(pool_name=POOL, ini={"session.save_path": mine.path})
        b.start()
        try:
            check_eq(session_request(b)[0], mine.path, "session.save_path from php.ini")
            check(not os.path.exists(pool_dir()), "no default dir made when php.ini sets the path")
        finally:
            b.close()


@test
def define_wins():
    remove_pool_dir()
    b = Backend(pool_name=POOL, defines=["session.save_path=/tmp"])
    b.start()
    try:
        check_eq(session_request(b)[0], "/tmp", "session.save_path from -d")
        check(not os.path.exists(pool_dir()), "no default dir made when -d sets the path")
    finally:
        b.close()


if __name__ == "__main__":
    run()
