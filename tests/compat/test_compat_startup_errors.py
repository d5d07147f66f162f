"""Broken configurations against php-fpm8.2: for each, the start-up
(`-F -R -O`) and the test (`-t`, as the invoking user without -R) must end
with the same exit status and print the same lines, in the same order (after
the timestamp, the binary's name and the pid are normalised). Covers the
order of php-fpm's checks (a root -t without `user` fails on that before
anything else), the log files it opens while checking (error_log, slowlog,
access.log: -t fails when one cannot be created), and parse errors such as an
empty env[] value."""
import os
import re
import signal
import socket
import subprocess
import threading
import time

from lowphp_test import check, run, test, util
from lowphp_test.backend import lowphp_bin, phpfpm_bin
from lowphp_test.util import TempDir

BUSY = None  # a TCP socket held open: "port in use"

POOL = "listen = {tmp}/s.sock\npm = static\npm.max_children = 1\n"

# name -> (pool section or None for no pool, extra [global] lines)
CASES = {
    "listen port in use": ("listen = 127.0.0.1:{busy}\npm = static\npm.max_children = 1\n", ""),
    "unknown user": (POOL + "user = no_such_user_xyz\n", ""),
    "unknown group": (POOL + "user = nobody\ngroup = no_such_group_xyz\n", ""),
    "pm.max_children 0": ("listen = {tmp}/s.sock\npm = static\npm.max_children = 0\n", ""),
    "start_servers above max_spare": (
        "listen = {tmp}/s.sock\npm = dynamic\npm.max_children = 2\npm.start_servers = 5\n"
        "pm.min_spare_servers = 1\npm.max_spare_servers = 2\n", ""),
    "listen directory missing": ("listen = {tmp}/nodir/s.sock\npm = static\npm.max_children = 1\n", ""),
    "listen.owner unknown": (POOL + "listen.owner = no_such_user_xyz\n", ""),
    "chroot missing": (POOL + "chroot = {tmp}/nochroot\n", ""),
    "chdir missing": (POOL + "chdir = {tmp}/nochdir\n", ""),
    "status path without slash": (POOL + "pm.status_path = status\n", ""),
    "slowlog cannot be created": (POOL + "request_slowlog_timeout = 5\nslowlog = {tmp}/nodir/slow.log\n", ""),
    "access.log cannot be created": (POOL + "access.log = {tmp}/nodir/access.log\n", ""),
    "no pool": (None, ""),
    "listen empty": ("listen =\npm = static\npm.max_children = 1\n", ""),
    "env[] empty": (POOL + "env[FOO] =\n", ""),
    "process.priority out of range": (POOL + "process.priority = 100\n", ""),
    "error_log cannot be created": (POOL, "error_log = {tmp}/nodir/err.log\n"),
    "include matches nothing": (POOL, "include = {tmp}/nodir/*.conf\n"),
    "log_level unknown": (POOL, "log_level = loud\n"),
    "events.mechanism unavailable": (POOL, "events.mechanism = kqueue\n"),
    "text after a section": (None, "[www] junk\n" + POOL),
    "section closed twice": (None, "[www]]\n" + POOL),
}

# Refused by one run only -> (pool section, arguments). Pools that would run as
# root (whatever way the user or group says so) fail at start-up without -R
# (-t passes them); a -p prefix that does not exist fails anything.
ONE_RUN = {
    "user root": (POOL + "user = root\n", ["-F", "-O"]),
    "user 0": (POOL + "user = 0\n", ["-F", "-O"]),
    "group root": (POOL + "user = nobody\ngroup = root\n", ["-F", "-O"]),
    "numeric user without passwd entry (gid 0)": (POOL + "user = 54321\n", ["-F", "-O"]),
    "prefix missing": (POOL + "user = nobody\n", ["-t", "-p", "{tmp}/nope"]),
}


def normalise(text, tmp, binary):
    text = text.replace(tmp, "TMP").replace(binary, "BIN").replace(os.path.basename(binary), "BIN")
    text = re.sub(r"^\[\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d\] ", "", text, flags=re.M)
    return re.sub(r"pid \d+", "pid N", text).strip()


def outcome(binary, pool, extra):
    tmp = TempDir(prefix="lowphp-starterr-")
    try:
        fill = {"tmp": tmp.path, "busy": BUSY.getsockname()[1]}
        conf = (f"[global]\npid = {tmp.path}/x.pid\nerror_log = {tmp.path}/err.log\n" +
                extra.format(**fill) + ("[www]\n" + pool.format(**fill) if pool is not None else ""))
        path = tmp.join("c.conf")
        with open(path, "w") as f:
            f.write(conf)
        runs = {}
        log = tmp.join("err.log")
        for what, args in (("start", ["-F", "-R", "-O"]), ("-t", ["-t"])):
            if os.path.exists(log):
                os.unlink(log)
            r = subprocess.run([binary, *args, "-y", path, "-p", tmp.path],
                               capture_output=True, text=True, timeout=20)
            # stderr is no terminal: without -O php-fpm also writes what follows
            # the [global] checks to error_log
            written = open(log).read() if os.path.exists(log) else None
            runs[what] = (r.returncode, normalise(r.stdout + r.stderr, tmp.path, binary),
                          None if written is None else normalise(written, tmp.path, binary))
        return runs
    finally:
        tmp.cleanup()


def make(name, pool, extra):
    def t():
        ref = outcome(phpfpm_bin(), pool, extra)
        sub = outcome(lowphp_bin(), pool, extra)
        for what in ("start", "-t"):
            print(f"  php-fpm8.2 {what}: exit {ref[what][0]}: {ref[what][1]!r}"[:400])
            check(ref[what][0] == 78, f"php-fpm8.2 {what} did not fail: {ref[what]}")
            check(sub[what] == ref[what],
                  f"{what} differs:\n  php-fpm8.2: {ref[what]}\n  lowphp-fpm: {sub[what]}")
    t.__name__ = f"broken config: {name}"
    return t


for name, (pool, extra) in CASES.items():
    test(make(name, pool, extra))


def one_run(binary, pool, args, as_nobody=False):
    """(exit status, what it printed, error_log) of one run with `args`;
    `as_nobody`: run as uid/gid 65534."""
    with TempDir(prefix="lowphp-starterr-") as tmp:
        if as_nobody:
            os.chmod(tmp.path, 0o777)  # nobody writes error_log there
        path = tmp.join("c.conf")
        with open(path, "w") as f:
            f.write(f"[global]\npid = {tmp.path}/x.pid\nerror_log = {tmp.path}/err.log\n[www]\n" +
                    pool.format(tmp=tmp.path))
        extra = [a.format(tmp=tmp.path) for a in args]
        prefix = util.AS_NOBODY if as_nobody else []
        r = subprocess.run([*prefix, binary, "-y", path, "-p", tmp.path, *extra],
                           capture_output=True, text=True, timeout=20)
        log = tmp.join("err.log")
        written = normalise(open(log).read(), tmp.path, binary) if os.path.exists(log) else None
        return r.returncode, normalise(r.stdout + r.stderr, tmp.path, binary), written


def make_one_run(name, pool, args):
    def t():
        ref = one_run(phpfpm_bin(), pool, args)
        sub = one_run(lowphp_bin(), pool, args)
        print(f"  php-fpm8.2 {' '.join(args)}: exit {ref[0]}: {ref[1]!r}"[:400])
        check(ref[0] == 78, f"php-fpm8.2 did not fail: {ref}")
        check(sub == ref, f"differs:\n  php-fpm8.2: {ref}\n  lowphp-fpm: {sub}")
    t.__name__ = f"refused ({' '.join(args)}): {name}"
    return t


for name, (pool, args) in ONE_RUN.items():
    test(make_one_run(name, pool, args))


@test
def php_start_up_messages_in_the_test():
    """-t starts PHP as php-fpm's does: a missing extension or a php.ini
    problem is printed by the test (which still passes), before its verdict."""
    args = ["-t", "-d", "extension=no_such_ext_xyz.so", "-d", "memory_limit=abc"]
    ref = one_run(phpfpm_bin(), POOL + "user = nobody\n", args)
    sub = one_run(lowphp_bin(), POOL + "user = nobody\n", args)
    print(f"  php-fpm8.2: exit {ref[0]}: {ref[1][:300]!r}")
    check(ref[0] == 0 and "no_such_ext_xyz" in ref[1], f"php-fpm8.2: {ref}")
    check(sub == ref, f"differs:\n  php-fpm8.2: {ref}\n  lowphp-fpm: {sub}")


@test
def a_good_configuration_tested():
    """-t's verdict (and -tt's dump) goes to stderr and to error_log, as in php-fpm."""
    for args in (["-t"], ["-tt"]):
        ref = one_run(phpfpm_bin(), POOL + "user = nobody\n", args)
        sub = one_run(lowphp_bin(), POOL + "user = nobody\n", args)
        print(f"  php-fpm8.2 {args[0]}: exit {ref[0]}, error_log: {(ref[2] or '')[:200]!r}")
        check(ref[0] == 0 and ref[2] and "test is successful" in ref[2], f"php-fpm8.2: {ref}")
        check(sub == ref, f"{args[0]} differs:\n  php-fpm8.2: {ref}\n  lowphp-fpm: {sub}")


@test
def the_test_as_non_root_still_looks_up_user_and_group():
    """Not root, php-fpm 8.2 ignores `user` / `group` when it starts (a notice
    each), but its -t still looks the names up, without those notices: a typo
    fails the test (exit 78) whoever runs it."""
    cases = {"unknown user": (POOL + "user = no_such_user_xyz\n", 78),
             "unknown group": (POOL + "user = root\ngroup = no_such_group_xyz\n", 78),
             "known user and group": (POOL + "user = nobody\ngroup = nogroup\n", 0)}
    for name, (pool, status) in cases.items():
        ref = one_run(phpfpm_bin(), pool, ["-t"], as_nobody=True)
        sub = one_run(lowphp_bin(), pool, ["-t"], as_nobody=True)
        print(f"  php-fpm8.2 {name}: exit {ref[0]}: {ref[1]!r}"[:300])
        check(ref[0] == status, f"php-fpm8.2 {name}: {ref}")
        check(sub == ref, f"{name} differs:\n  php-fpm8.2: {ref}\n  lowphp-fpm: {sub}")


def started_then_stopped(binary, args, mode="-F", error_log="file"):
    """`mode` -R with `args`: once ready, SIGQUIT. Returns (what it printed,
    error_log, or with syslog whether a syslog message named the missing
    extension). With -D the caller returns once the daemon is ready, and what
    it printed is complete only when every process has let go of its stderr:
    one that keeps it makes this fail."""
    with TempDir(prefix="lowphp-starterr-") as tmp:
        sink = util.SyslogSink(tmp) if error_log == "syslog" else None
        try:
            return started_then_stopped_in(tmp, sink, binary, args, mode, error_log)
        finally:
            if sink:
                sink.close()


def started_then_stopped_in(tmp, sink, binary, args, mode, error_log):
    path = tmp.join("c.conf")
    target = "syslog" if error_log == "syslog" else f"{tmp.path}/err.log"
    with open(path, "w") as f:
        f.write(f"[global]\npid = {tmp.path}/x.pid\nerror_log = {target}\n[www]\n" +
                POOL.format(tmp=tmp.path) + "[second]\n" +
                POOL.replace("s.sock", "s2.sock").format(tmp=tmp.path))
    log, pid_file = tmp.join("err.log"), tmp.join("x.pid")
    cmd = [binary, mode, "-R", "-y", path, "-p", tmp.path, *args]
    p = subprocess.Popen(sink.wrap(cmd) if sink else cmd,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    chunks = []
    reader = threading.Thread(target=lambda: chunks.extend(p.stdout), daemon=True)
    reader.start()
    # Ready: the error log (or syslog) says so and the pid file is written;
    # a SIGQUIT before that would not stop the server.
    received = []  # syslog datagrams

    def ready():
        if sink:
            received.extend(sink.drain())
            said = any(b"ready to handle connections" in d for d in received)
        else:
            said = os.path.exists(log) and "ready to handle" in open(log).read()
        return said and os.path.exists(pid_file)

    deadline = time.time() + 15
    while time.time() < deadline and not ready():
        time.sleep(0.05)
    if mode == "-D":  # the caller has returned; its pipe ends once nobody holds it
        reader.join(timeout=15)
    if os.path.exists(pid_file):
        os.kill(int(open(pid_file).read()), signal.SIGQUIT)
    p.wait(timeout=20)
    deadline = time.time() + 10
    while time.time() < deadline and os.path.exists(pid_file):
        time.sleep(0.05)
    reader.join(timeout=5)
    printed = "".join(chunks) if not reader.is_alive() else "stderr kept open by the daemon"
    if sink:
        written = any(b"no_such_ext_xyz" in d for d in received + sink.drain())
    else:
        written = normalise(open(log).read(), tmp.path, binary)
    return normalise(printed, tmp.path, binary), written


@test
def php_start_up_messages_at_start():
    """Two pools started with a missing extension, in the foreground (-F,
    systemd's way) or as a daemon (-D), logging to a file or to syslog:
    php-fpm starts PHP once, before it opens its error log (and before it
    daemonizes), so PHP's warning goes once to the stderr it was started with
    (the journal) and never to the error log or syslog; a daemon then lets go
    of that stderr (its caller's pipe ends)."""
    args = ["-d", "extension=no_such_ext_xyz.so"]
    for mode in ("-F", "-D"):
        for error_log in ("file", "syslog"):
            ref = started_then_stopped(phpfpm_bin(), args, mode, error_log)
            sub = started_then_stopped(lowphp_bin(), args, mode, error_log)
            print(f"  php-fpm8.2 {mode} {error_log} printed: {ref[0][:200]!r}")
            check("no_such_ext_xyz" in ref[0] and ref[1] is not True and
                  "no_such_ext_xyz" not in str(ref[1]), f"php-fpm8.2 {mode} {error_log}: {ref}")
            check(sub == ref,
                  f"{mode} {error_log} differs:\n  php-fpm8.2: {ref}\n  lowphp-fpm: {sub}")


def setup():
    global BUSY
    BUSY = socket.socket()
    BUSY.bind(("127.0.0.1", 0))
    BUSY.listen(1)


def teardown(_):
    if BUSY is not None:
        BUSY.close()


if __name__ == "__main__":
    run(setup, teardown)
