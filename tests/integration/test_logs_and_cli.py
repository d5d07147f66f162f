"""Log lines (php-fpm's wording and prefix) and command-line behaviour
(-t, -v, -m, exit codes) of $LOWPHP_BIN."""
import os
import re
import signal
import subprocess

from lowphp_test import (LOG_PREFIX, Backend, Stack, TempDir, check, check_eq, check_in, http,
                         lowphp_bin, run, run_cli, test, util)

NOTICE = LOG_PREFIX + "NOTICE: "
WARNING = LOG_PREFIX + "WARNING: "
ERROR = LOG_PREFIX + "ERROR: "
ANY_LINE = re.compile(r"^\[\d{2}-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-\d{4} \d{2}:\d{2}:\d{2}\] "
                      r"(ALERT|ERROR|WARNING|NOTICE|DEBUG): \S")


def check_all_lines_prefixed(text, what):
    for line in text.splitlines():
        if line.strip():
            check(ANY_LINE.match(line), f"{what}: line without php-fpm's '[dd-Mon-YYYY HH:MM:SS] LEVEL: ' prefix: {line!r}\n{text}")


@test
def startup_and_stop_lines():
    s = Stack(pool={"pm.max_children": "2"})
    try:
        log = s.backend.log()
        m = re.search(r"^" + NOTICE + r"fpm is running, pid (\d+)$", log, re.M)
        check(m, f"'fpm is running, pid N' line:\n{log}")
        check_eq(int(m.group(1)), s.backend.pid, "pid in 'fpm is running'")
        check(re.search(r"^" + NOTICE + r"ready to handle connections$", log, re.M), f"'ready' line:\n{log}")
        check(log.index("fpm is running") < log.index("ready to handle connections"), "line order")
        check_eq(open(s.backend.pid_file).read().strip(), str(s.backend.pid), "pid file")
        s.backend.stop(signal.SIGQUIT, check=True)
        log = s.backend.log()
        check(re.search(r"^" + NOTICE + r"exiting, bye-bye!$", log, re.M), f"bye-bye line:\n{log}")
        check(log.endswith("exiting, bye-bye!\n"), f"bye-bye is the last line:\n{log}")
        check_all_lines_prefixed(log, "error_log")
        check(not os.path.exists(s.backend.pid_file), "pid file removed at exit")
    finally:
        s.close(check=False)


@test
def child_started_line_after_respawn():
    # php-fpm logs the first children at DEBUG level, respawned ones at NOTICE
    s = Stack(pool={"pm.max_children": "1"})
    try:
        pid = int(http.get(s.port, "/pid.php").text)
        mark = s.backend.log_mark()
        os.kill(pid, signal.SIGKILL)
        s.backend.wait_log(r"(?m)^" + WARNING + r"\[pool www\] child %d exited on signal 9 \(SIGKILL\) "
                           r"after \d+\.\d{6} seconds from start$" % pid, mark)
        m = s.backend.wait_log(r"(?m)^" + NOTICE + r"\[pool www\] child (\d+) started$", mark)
        newpid = int(http.get(s.port, "/pid.php").text)
        check_eq(newpid, int(m.group(1)), "the logged new child serves")
        check_all_lines_prefixed(s.backend.log(), "error_log")
    finally:
        s.close(check=False)


@test
def debug_level_logs_initial_children():
    s = Stack(pool={"pm.max_children": "2"}, global_conf={"log_level": "debug"})
    try:
        log = s.backend.log()
        started = re.findall(r"\[pool www\] child (\d+) started", log)
        check_eq(len(started), 2, f"two 'child N started' lines at debug level:\n{log}")
        for line in log.splitlines():
            if "child" in line and "started" in line:
                # debug lines: "[dd-Mon-YYYY HH:MM:SS.uuuuuu] DEBUG: pid N, function(), line N: ..."
                check(re.match(r"^\[\d{2}-\w{3}-\d{4} \d{2}:\d{2}:\d{2}\.\d{6}\] DEBUG: pid \d+, \w+\(\), line \d+: ", line),
                      f"debug line format: {line!r}")
    finally:
        s.close(check=False)


@test
def worker_output_is_decorated():
    s = Stack(pool={"catch_workers_output": "yes"})
    try:
        mark = s.backend.log_mark()
        check_eq(http.get(s.port, "/error.php").status, 200, "error.php")
        s.backend.wait_log(r"(?m)^" + WARNING + r"\[pool www\] child \d+ said into stderr: \"NOTICE: PHP message: "
                           r"PHP Warning:  a user warning from the test in \S+/error\.php on line 1\"$", mark)
        mark = s.backend.log_mark()
        check_eq(http.get(s.port, "/txt/notes.txt").status, 403, "limit_extensions")
        s.backend.wait_log(r"(?m)^" + WARNING + r"\[pool www\] child \d+ said into stderr: \"NOTICE: Access to the script "
                           r"'\S+/txt/notes\.txt' has been denied \(see security\.limit_extensions\)\"$", mark)
    finally:
        s.close(check=False)


def write_conf(tmp, name, pool_lines):
    path = tmp.join(name)
    util.write_file(path, "[global]\nerror_log = %s\npid = %s\n\n[www]\nlisten = %s\n%s" % (
        tmp.join("error.log"), tmp.join("fpm.pid"), tmp.join("php.sock"), pool_lines))
    return path


GOOD_POOL = "user = www-data\ngroup = www-data\npm = static\npm.max_children = 2\n"


@test
def test_flag_good_config():
    with TempDir() as tmp:
        conf = write_conf(tmp, "good.conf", GOOD_POOL)
        rc, out, err = run_cli(lowphp_bin(), ["-t", "-y", conf, "-p", tmp.path])
        check_eq(rc, 0, f"-t exit status (stdout {out!r}, stderr {err!r})")
        check(re.search(r"(?m)^" + NOTICE + r"configuration file %s test is successful$" % re.escape(conf), err),
              f"success line on stderr: stdout {out!r} stderr {err!r}")
        check(not os.path.exists(tmp.join("php.sock")), "-t must not create the listening socket")
        check(not os.path.exists(tmp.join("fpm.pid")), "-t must not write the pid file")


@test
def test_flag_unknown_entry():
    with TempDir() as tmp:
        conf = write_conf(tmp, "bad.conf", GOOD_POOL + "bogus_entry = 3\n")
        line = 11  # 5 header lines + listen + 4 good lines + the bogus one
        check_eq(open(conf).read().splitlines()[line - 1], "bogus_entry = 3", "test setup: line number")
        rc, out, err = run_cli(lowphp_bin(), ["-t", "-y", conf, "-p", tmp.path])
        check_eq(rc, 78, f"-t exit status on a bad config (stdout {out!r}, stderr {err!r})")
        check(re.search(r"(?m)^" + ERROR + r"\[%s:%d\] unknown entry 'bogus_entry'$" % (re.escape(conf), line), err),
              f"unknown entry line naming file:line on stderr:\n{err}")
        check(re.search(r"(?m)^" + ERROR + r"failed to load configuration file '%s'$" % re.escape(conf), err),
              f"'failed to load configuration file' line:\n{err}")


@test
def test_flag_bad_value():
    with TempDir() as tmp:
        conf = write_conf(tmp, "bad.conf", GOOD_POOL.replace("pm.max_children = 2", "pm.max_children = abc"))
        rc, out, err = run_cli(lowphp_bin(), ["-t", "-y", conf, "-p", tmp.path])
        check_eq(rc, 78, f"-t exit status (stderr {err!r})")
        check(re.search(r"(?m)^" + ERROR + r"\[%s:10\] unable to parse value for entry 'pm\.max_children': "
                        % re.escape(conf), err), f"parse error line:\n{err}")


@test
def start_with_bad_config_exits_78():
    with TempDir() as tmp:
        conf = write_conf(tmp, "bad.conf", GOOD_POOL + "bogus_entry = 3\n")
        rc, out, err = run_cli(lowphp_bin(), ["-F", "-R", "-y", conf, "-p", tmp.path], timeout=15)
        check_eq(rc, 78, f"exit status when starting with a bad config (stderr {err!r})")
        check_in("unknown entry 'bogus_entry'", err, "stderr")
        check(not os.path.exists(tmp.join("php.sock")), "no socket left behind")


@test
def root_without_user_needs_R():
    with TempDir() as tmp:
        conf = write_conf(tmp, "nouser.conf", "pm = static\npm.max_children = 1\n")
        if os.geteuid() != 0:
            raise AssertionError("this test must run as root (as the integration tests do in CI)")
        rc, out, err = run_cli(lowphp_bin(), ["-t", "-y", conf, "-p", tmp.path])
        check_eq(rc, 78, f"-t as root with no pool user and no -R (stderr {err!r})")
        check(re.search(r"(?m)^" + LOG_PREFIX + r"ALERT: \[pool www\] user has not been defined$", err), f"alert line:\n{err}")
        rc, out, err = run_cli(lowphp_bin(), ["-R", "-t", "-y", conf, "-p", tmp.path])
        check_eq(rc, 0, f"-R -t (stderr {err!r})")
        check_in("test is successful", err, "stderr")


def expected_build_line():
    """The line -v ends with: the project version and the commit the binary
    was built from (the tests run on the tree the binary was built from)."""
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    version = re.search(r"project\(lowphp-fpm VERSION ([0-9.]+)",
                        open(os.path.join(repo, "CMakeLists.txt")).read()).group(1)
    git = subprocess.run(["git", "-C", repo, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
    if git.returncode != 0:
        return f"lowphp-fpm {version} (built outside git)"
    dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return f"lowphp-fpm {version} (git commit {git.stdout.strip()}{' with uncommitted changes' if dirty else ''})"


@test
def version_flag():
    """php-fpm's version block as php8.2-fpm prints it (but for the build
    date), then one line of our own: version and commit."""
    from lowphp_test.backend import phpfpm_bin
    rc, out, err = run_cli(lowphp_bin(), ["-v"])
    check_eq(rc, 0, "-v exit status")
    ref = run_cli(phpfpm_bin(), ["-v"])[1]
    built = re.compile(r"\(built: [^)]*\)")
    lines = out.splitlines()
    check_eq([built.sub("(built)", x) for x in lines[:-1]], [built.sub("(built)", x) for x in ref.splitlines()],
             "php-fpm's version block")
    check_eq(lines[-1], expected_build_line(), "lowphp-fpm's own line")


@test
def modules_flag():
    rc, out, err = run_cli(lowphp_bin(), ["-m"])
    check_eq(rc, 0, "-m exit status")
    check_in("[PHP Modules]", out, "-m output")
    check_in("[Zend Modules]", out, "-m output")
    for mod in ("Core", "standard", "posix"):
        check(re.search(r"(?m)^%s$" % mod, out), f"module {mod} listed:\n{out}")



@test
def info_flags_act_where_php_fpm_meets_them():
    """-h, -?, -v and -m act as soon as they are read, as php-fpm's getopt loop
    does: what follows them is not looked at. Exit statuses as php8.2-fpm's."""
    from lowphp_test.backend import phpfpm_bin
    for args in (["-v", "-Z"], ["-m", "-Z"], ["-h", "-Z"], ["-?"], ["-Z"], ["-v", "-c"], ["--help", "--foo"]):
        ref = run_cli(phpfpm_bin(), args)
        sub = run_cli(lowphp_bin(), args)
        check_eq(sub[0], ref[0], f"exit status of {' '.join(args)} (php-fpm8.2's)")
        check_eq(bool(sub[1].startswith("PHP 8.2")), bool(ref[1].startswith("PHP 8.2")),
                 f"{' '.join(args)} prints the version")


if __name__ == "__main__":
    run()
