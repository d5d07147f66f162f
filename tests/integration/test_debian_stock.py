"""Debian's stock php-fpm configuration (/etc/php/8.2/fpm) works as it is:
`-t` passes, and with only `listen` changed (plus the pid/error_log/include
paths moved into a temp dir so the test touches nothing of the system) it serves
PHP as the www-data pool with pm = dynamic."""
import os
import re
import signal
import subprocess
import time

from lowphp_test import check, check_eq, check_in, fcgi, lowphp_bin, run, test, wait_for, TempDir

STOCK = "/etc/php/8.2/fpm/php-fpm.conf"
STOCK_POOL = "/etc/php/8.2/fpm/pool.d/www.conf"


@test
def stock_config_passes_test_flag():
    r = subprocess.run([lowphp_bin(), "-t", "-y", STOCK], capture_output=True, text=True, timeout=30)
    check_eq(r.returncode, 0, f"exit status (stderr {r.stderr!r})")
    check_in(f"configuration file {STOCK} test is successful", r.stderr, "-t output")


@test
def stock_pool_serves_with_only_listen_changed():
    with TempDir() as td:
        tmp = td.path
        pool_dir = os.path.join(tmp, "pool.d")
        os.mkdir(pool_dir)
        sock = os.path.join(tmp, "stock.sock")
        pool = open(STOCK_POOL).read()
        pool = re.sub(r"(?m)^listen = .*$", f"listen = {sock}", pool)
        open(os.path.join(pool_dir, "www.conf"), "w").write(pool)
        main = open(STOCK).read()
        main = re.sub(r"(?m)^pid = .*$", f"pid = {tmp}/fpm.pid", main)
        main = re.sub(r"(?m)^error_log = .*$", f"error_log = {tmp}/error.log", main)
        main = re.sub(r"(?m)^include=.*$", f"include={pool_dir}/*.conf", main)
        conf = os.path.join(tmp, "php-fpm.conf")
        open(conf, "w").write(main)
        script = os.path.join(tmp, "who.php")
        open(script, "w").write("<?php echo posix_getpwuid(posix_geteuid())['name'], ' ', PHP_SAPI;\n")
        os.chmod(script, 0o644)
        proc = subprocess.Popen([lowphp_bin(), "-F", "-y", conf], start_new_session=True)
        try:
            log = os.path.join(tmp, "error.log")
            wait_for(lambda: os.path.exists(log) and "ready to handle connections" in open(log).read(),
                     10, what="ready to handle connections")
            st = os.stat(sock)
            check_eq(oct(st.st_mode & 0o777), "0o660", "socket mode (php-fpm default)")
            with fcgi.Connection(sock) as c:
                r = c.request({"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": script,
                               "SCRIPT_NAME": "/who.php", "DOCUMENT_ROOT": tmp})
            check(r.complete, f"no response: {r!r}")
            check_eq(r.body, b"www-data fpm-fcgi", "body")
            # pm = dynamic, pm.start_servers = 2: two workers run as www-data
            out = subprocess.run(["ps", "-o", "user=,args=", "--ppid", str(proc.pid)],
                                 capture_output=True, text=True).stdout
            workers = [line for line in out.splitlines() if "pool www" in line]
            check_eq(len(workers), 2, f"workers started (ps: {out!r})")
            check(all(w.split()[0] == "www-data" for w in workers), f"workers' user: {workers}")
        finally:
            os.killpg(proc.pid, signal.SIGQUIT)
            proc.wait(timeout=15)
        check(not os.path.exists(sock), "socket removed after stop")


if __name__ == "__main__":
    run()
