"""Start-up modes and php.ini selection: -D daemonizes with a pid file,
-c / PHPRC / a pool's own php_ini decide which php.ini a pool runs with."""
import os
import signal
import subprocess
import time

from lowphp_test import TempDir, check, check_eq, fcgi, lowphp_bin, run, test, wait_for

CONF = """[global]
pid = {tmp}/fpm.pid
error_log = {tmp}/error.log
[a]
listen = {tmp}/a.sock
pm = static
pm.max_children = 1
{extra_a}
[b]
listen = {tmp}/b.sock
pm = static
pm.max_children = 1
"""


def php_answer(sock, tmp, code):
    path = os.path.join(tmp, "ini.php")
    with open(path, "w") as f:
        f.write(f"<?php {code}")
    with fcgi.Connection(sock) as c:
        r = c.request({"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": path, "SCRIPT_NAME": "/ini.php"})
    check(r.complete, f"response {r!r}")
    return r.body.decode()


def ini_value(sock, tmp, name):
    return php_answer(sock, tmp, f"echo ini_get('{name}');")


def start(tmp, args, extra_a="", env=None):
    conf = os.path.join(tmp, "fpm.conf")
    with open(conf, "w") as f:
        f.write(CONF.format(tmp=tmp, extra_a=extra_a))
    return subprocess.run([lowphp_bin(), "-D", "-R", "-y", conf] + args, env=env,
                          capture_output=True, text=True, timeout=30)


def stop(tmp):
    pid = int(open(os.path.join(tmp, "fpm.pid")).read())
    os.kill(pid, signal.SIGQUIT)
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 10, what="master exit")


@test
def daemonize_writes_pid_file_and_serves():
    with TempDir() as td:
        r = start(td.path, [])
        check_eq(r.returncode, 0, f"-D exit status ({r.stderr})")
        pid = int(open(os.path.join(td.path, "fpm.pid")).read())
        check(os.path.exists(f"/proc/{pid}"), "master from the pid file runs")
        check_eq(os.getsid(pid), pid, "the daemon leads its own session")
        check(ini_value(os.path.join(td.path, "a.sock"), td.path, "precision") != "", "serves")
        stop(td.path)
        check(not os.path.exists(os.path.join(td.path, "fpm.pid")), "pid file removed at stop")


@test
def c_flag_and_pool_php_ini():
    with TempDir() as td:
        tmp = td.path
        with open(os.path.join(tmp, "global.ini"), "w") as f:
            f.write("precision = 5\n")
        with open(os.path.join(tmp, "pool-a.ini"), "w") as f:
            f.write("precision = 3\n")
        r = start(tmp, ["-c", os.path.join(tmp, "global.ini")], extra_a=f"php_ini = {tmp}/pool-a.ini")
        check_eq(r.returncode, 0, f"start ({r.stderr})")
        try:
            check_eq(ini_value(os.path.join(tmp, "a.sock"), tmp, "precision"), "3", "pool a (php_ini)")
            check_eq(ini_value(os.path.join(tmp, "b.sock"), tmp, "precision"), "5", "pool b (-c)")
        finally:
            stop(tmp)


@test
def phprc_is_honoured():
    with TempDir() as td:
        tmp = td.path
        os.makedirs(os.path.join(tmp, "etc"))
        with open(os.path.join(tmp, "etc", "php.ini"), "w") as f:
            f.write("precision = 9\n")
        env = dict(os.environ, PHPRC=os.path.join(tmp, "etc"))
        r = start(tmp, [], env=env)
        check_eq(r.returncode, 0, f"start ({r.stderr})")
        try:
            check_eq(ini_value(os.path.join(tmp, "b.sock"), tmp, "precision"), "9", "PHPRC php.ini")
        finally:
            stop(tmp)


@test
def second_instance_on_same_socket_is_refused():
    with TempDir() as td:
        tmp = td.path
        check_eq(start(tmp, []).returncode, 0, "first instance")
        try:
            conf = os.path.join(tmp, "fpm.conf")
            r = subprocess.run([lowphp_bin(), "-F", "-O", "-R", "-y", conf], capture_output=True,
                               text=True, timeout=30)
            check_eq(r.returncode, 78, "second instance exit status")
            check(f"Another FPM instance seems to already listen on {tmp}/a.sock" in r.stderr,
                  f"error line ({r.stderr!r})")
            # -D: the calling process reports the daemon's failure as php-fpm's
            # does, with FPM_EXIT_SOFTWARE
            r = subprocess.run([lowphp_bin(), "-D", "-O", "-R", "-y", conf], capture_output=True,
                               text=True, timeout=30)
            check_eq(r.returncode, 70, "second instance exit status with -D")
            check(f"Another FPM instance seems to already listen on {tmp}/a.sock" in r.stderr,
                  f"error line with -D ({r.stderr!r})")
            check(ini_value(os.path.join(tmp, "a.sock"), tmp, "precision") != "",
                  "the first instance still serves on its socket")
        finally:
            stop(tmp)



@test
def no_ini_and_scan_dir_leave_nothing_behind():
    """-n loads no php.ini (php-fpm's; -c would still be read). The scan
    directory given to PHP at start-up is not left in the environment scripts
    see with clear_env = no, nor inherited by their child processes; a blank
    entry in PHP_INI_SCAN_DIR means php-fpm's conf.d, not the embed SAPI's."""
    with TempDir() as td:
        tmp = td.path
        os.makedirs(os.path.join(tmp, "extra"))
        with open(os.path.join(tmp, "extra", "z.ini"), "w") as f:
            f.write("precision = 7\n")
        env = dict(os.environ, PHP_INI_SCAN_DIR=":" + os.path.join(tmp, "extra"))
        r = start(tmp, [], extra_a="clear_env = no", env=env)
        check_eq(r.returncode, 0, f"start ({r.stderr})")
        try:
            sock = os.path.join(tmp, "a.sock")
            check_eq(ini_value(sock, tmp, "precision"), "7", "the extra scan directory is read")
            scanned = php_answer(sock, tmp, "echo php_ini_scanned_files();")
            check("/etc/php/8.2/fpm/conf.d/" in scanned and "/embed/" not in scanned,
                  f"blank entry = php-fpm's conf.d ({scanned[:200]!r})")
            check_eq(php_answer(sock, tmp, "echo getenv('PHP_INI_SCAN_DIR');"), env["PHP_INI_SCAN_DIR"],
                     "the environment keeps what it was given")
        finally:
            stop(tmp)
        env = {k: v for k, v in os.environ.items() if k != "PHP_INI_SCAN_DIR"}
        r = start(tmp, ["-n"], extra_a="clear_env = no", env=env)
        check_eq(r.returncode, 0, f"start ({r.stderr})")
        try:
            sock = os.path.join(tmp, "a.sock")
            check_eq(php_answer(sock, tmp, "var_dump(php_ini_loaded_file());").strip(), "bool(false)",
                     "-n: no php.ini")
            got = php_answer(sock, tmp, "var_dump(getenv('PHP_INI_SCAN_DIR'));")
            check_eq(got.strip(), "bool(false)", "no PHP_INI_SCAN_DIR of ours in the environment")
        finally:
            stop(tmp)



@test
def pid_file_from_the_configuration_before_g():
    """php-fpm 8.2 writes the configuration's `pid`; -g names the file only
    when the configuration has none (a -g into a missing directory is then
    not even tried)."""
    with TempDir() as td:
        tmp = td.path
        r = start(tmp, ["-g", os.path.join(tmp, "nodir", "g.pid")])
        check_eq(r.returncode, 0, f"start with a config pid and -g ({r.stderr})")
        check(os.path.exists(os.path.join(tmp, "fpm.pid")), "the configuration's pid file")
        stop(tmp)
        conf = os.path.join(tmp, "fpm.conf")
        text = open(conf).read().replace(f"pid = {tmp}/fpm.pid\n", "")
        with open(conf, "w") as f:
            f.write(text)
        g = os.path.join(tmp, "g.pid")
        r = subprocess.run([lowphp_bin(), "-D", "-R", "-y", conf, "-g", g], capture_output=True,
                           text=True, timeout=30)
        check_eq(r.returncode, 0, f"start with -g only ({r.stderr})")
        pid = int(open(g).read())
        os.kill(pid, signal.SIGQUIT)
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 10, what="master exit")


if __name__ == "__main__":
    run()
