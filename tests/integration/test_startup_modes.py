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


def ini_value(sock, tmp, name):
    path = os.path.join(tmp, "ini.php")
    with open(path, "w") as f:
        f.write(f"<?php echo ini_get('{name}');")
    with fcgi.Connection(sock) as c:
        r = c.request({"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": path, "SCRIPT_NAME": "/ini.php"})
    check(r.complete, f"response {r!r}")
    return r.body.decode()


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
            check(ini_value(os.path.join(tmp, "a.sock"), tmp, "precision") != "",
                  "the first instance still serves on its socket")
        finally:
            stop(tmp)


if __name__ == "__main__":
    run()
