"""Process lifecycle of $LOWPHP_BIN: signals, worker crashes, respawn, reload."""
import os
import re
import signal
import threading
import time

from lowphp_test import LOG_PREFIX, Stack, check, check_eq, check_in, http, run, test, util, wait_for

NOTICE = LOG_PREFIX + "NOTICE: "
WARNING = LOG_PREFIX + "WARNING: "


class Background:
    """Run an HTTP GET in a thread; .result is the Reply or the exception."""

    def __init__(self, port, path, timeout=20):
        self.result = None
        self.t = threading.Thread(target=self._run, args=(port, path, timeout), daemon=True)
        self.t.start()

    def _run(self, port, path, timeout):
        try:
            self.result = http.get(port, path, timeout=timeout)
        except BaseException as e:  # noqa: BLE001
            self.result = e

    def join(self, timeout=20):
        self.t.join(timeout)
        check(not self.t.is_alive(), "background request still running")
        return self.result


def stop_checked(stack, sig, timeout=10):
    rc = stack.backend.stop(sig=sig, timeout=timeout, check=True)
    return rc


@test
def sigquit_graceful_finishes_inflight_request():
    # php-fpm's default process_control_timeout = 0 escalates SIGQUIT to
    # SIGTERM at once (the in-flight request gets a 502); a graceful stop
    # needs a timeout.
    s = Stack(pool={"pm.max_children": "2"}, global_conf={"process_control_timeout": "10s"})
    try:
        marker = s.tmp.join("busy.pid")
        bg = Background(s.port, f"/busy.php?ms=1500&f={marker}")
        wait_for(lambda: os.path.exists(marker), 5, what="busy.php to start")
        t0 = time.monotonic()
        rc = stop_checked(s, signal.SIGQUIT)
        took = time.monotonic() - t0
        r = bg.join()
        check(not isinstance(r, BaseException), f"in-flight request failed during SIGQUIT: {r!r}")
        check_eq(r.status, 200, "in-flight request status")
        check_in("slept", r.text, "in-flight request completed its sleep")
        check(took >= 0.8, f"master exited {took:.2f}s after SIGQUIT, before the 1.5 s request could finish")
        check_eq(rc, 0, "exit status after SIGQUIT")
        log = s.backend.log()
        check(re.search(NOTICE + r"Finishing \.\.\.\n", log), f"'Finishing ...' line:\n{log}")
        check(re.search(NOTICE + r"exiting, bye-bye!\n", log), f"'exiting, bye-bye!' line:\n{log}")
        check(not os.path.exists(s.backend.socket_path), "unix socket removed after SIGQUIT")
    finally:
        s.close(check=False)


@test
def sigterm_stops_without_orphans_and_removes_socket():
    s = Stack(pool={"pm": "dynamic", "pm.max_children": "5", "pm.start_servers": "3",
                    "pm.min_spare_servers": "1", "pm.max_spare_servers": "3"})
    try:
        check_eq(http.get(s.port, "/hello.php").status, 200, "serving")
        workers = s.backend.worker_pids()
        check(len(workers) >= 3, f"expected >= 3 worker processes, found {workers}")
        sock = s.backend.socket_path
        check(os.path.exists(sock), "socket exists while running")
        # a long request in flight: SIGTERM must not leave its worker behind
        marker = s.tmp.join("busy.pid")
        bg = Background(s.port, f"/busy.php?ms=8000&f={marker}")
        wait_for(lambda: os.path.exists(marker), 5, what="busy.php to start")
        busy = int(open(marker).read())
        t0 = time.monotonic()
        rc = stop_checked(s, signal.SIGTERM)  # raises on leftovers / need for SIGKILL
        check_eq(rc, 0, "exit status after SIGTERM")
        check(time.monotonic() - t0 < 5, "SIGTERM waited for the 8 s request: it must be a fast stop")
        check(not os.path.exists(f"/proc/{busy}") or open(f"/proc/{busy}/stat").read().split(") ")[1][0] == "Z",
              f"busy worker {busy} survived SIGTERM")
        bg.join(10)
        alive = [p for p in workers if os.path.exists(f"/proc/{p}") and open(f"/proc/{p}/stat").read().split(") ")[1][0] != "Z"]
        check_eq(alive, [], "worker processes alive after SIGTERM")
        check(not os.path.exists(sock), f"unix socket {sock} still exists after SIGTERM")
        log = s.backend.log()
        check(re.search(NOTICE + r"Terminating \.\.\.\n", log), f"'Terminating ...' line:\n{log}")
        check(re.search(NOTICE + r"exiting, bye-bye!\n", log), f"'exiting, bye-bye!' line:\n{log}")
    finally:
        s.close(check=False)


@test
def sigint_stops_like_sigterm():
    s = Stack()
    try:
        check_eq(http.get(s.port, "/hello.php").status, 200, "serving")
        rc = stop_checked(s, signal.SIGINT)
        check_eq(rc, 0, "exit status after SIGINT")
        check_in("Terminating ...", s.backend.log(), "log")
        check(not os.path.exists(s.backend.socket_path), "unix socket removed")
    finally:
        s.close(check=False)


@test
def worker_killed_by_sigkill_is_replaced():
    s = Stack(pool={"pm.max_children": "2"})
    try:
        mark = s.backend.log_mark()
        marker = s.tmp.join("busy.pid")
        bg = Background(s.port, f"/busy.php?ms=4000&f={marker}")
        wait_for(lambda: os.path.exists(marker), 5, what="busy.php to start")
        pid = int(open(marker).read())
        os.kill(pid, signal.SIGKILL)
        r = bg.join(15)
        if not isinstance(r, BaseException):
            check(r.status == 502 or b"slept" not in r.body, f"killed worker completed the request?! {r!r}")
        s.backend.wait_log(WARNING + r"\[pool www\] child %d exited on signal 9 \(SIGKILL\) after \d+\.\d{6} seconds from start\n" % pid, mark)
        m2 = s.backend.wait_log(NOTICE + r"\[pool www\] child (\d+) started\n", mark)
        newpid = int(m2.group(1))
        check(newpid != pid, "new child has a new pid")
        for _ in range(6):
            r = http.get(s.port, "/pid.php")
            check_eq(r.status, 200, "next request after the crash")
        check(os.path.exists(f"/proc/{newpid}"), f"replacement child {newpid} is running")
    finally:
        s.close(check=False)


@test
def worker_segfault_is_replaced():
    s = Stack(pool={"pm.max_children": "1", "catch_workers_output": "yes"})
    try:
        first = http.get(s.port, "/pid.php")
        check_eq(first.status, 200, "pid.php")
        pid = int(first.text)
        mark = s.backend.log_mark()
        r = http.get(s.port, "/segv.php", timeout=10)
        check(r.status in (200, 502), f"crashing request: nginx answers 502 or the partial 200, got {r.status}")
        check(b"survived" not in r.body, "SIGSEGV did not kill the worker?")
        s.backend.wait_log(WARNING + r"\[pool www\] child %d exited on signal 11 \(SIGSEGV( - core dumped)?\) after \d+\.\d{6} seconds from start\n" % pid, mark)
        m2 = s.backend.wait_log(NOTICE + r"\[pool www\] child (\d+) started\n", mark)
        r = http.get(s.port, "/pid.php")
        check_eq(r.status, 200, "next request after the crash")
        check_eq(int(r.text), int(m2.group(1)), "the new child serves (pm.max_children = 1)")
    finally:
        s.close(check=False)


@test
def max_requests_recycles_worker():
    s = Stack(pool={"pm.max_children": "1", "pm.max_requests": "3"})
    try:
        mark = s.backend.log_mark()
        pids = [int(http.get(s.port, "/pid.php").text) for _ in range(7)]
        check_eq(len(set(pids[0:3])), 1, f"first 3 requests on one worker: {pids}")
        check(pids[3] != pids[2], f"4th request on a new worker: {pids}")
        check_eq(len(set(pids[3:6])), 1, f"requests 4-6 on one worker: {pids}")
        s.backend.wait_log(NOTICE + r"\[pool www\] child %d exited with code 0 after \d+\.\d{6} seconds from start\n" % pids[0], mark)
        s.backend.wait_log(NOTICE + r"\[pool www\] child %d started\n" % pids[3], mark)
    finally:
        s.close(check=False)


@test
def sigusr1_reopens_log():
    s = Stack()
    try:
        mark = s.backend.log_mark()
        old = s.backend.error_log + ".1"
        os.rename(s.backend.error_log, old)
        s.backend.send_signal(signal.SIGUSR1)
        wait_for(lambda: os.path.exists(s.backend.error_log), 5, what="error log re-created after SIGUSR1")
        s.backend.wait_log(NOTICE + r"error log file re-opened\n", 0)
        check_eq(http.get(s.port, "/hello.php").status, 200, "serving after SIGUSR1")
        check(s.backend.running(), "master still running")
    finally:
        s.close(check=False)


@test
def sigusr2_reload_keeps_serving():
    s = Stack(pool={"pm.max_children": "2"})
    try:
        before = s.backend.log().count("ready to handle connections")
        mark = s.backend.log_mark()
        s.backend.send_signal(signal.SIGUSR2)
        s.backend.wait_log(NOTICE + r"Reloading in progress \.\.\.\n", mark)
        wait_for(lambda: s.backend.log().count("ready to handle connections") > before, 10,
                 what="ready again after reload")
        for _ in range(5):
            check_eq(http.get(s.port, "/hello.php").status, 200, "serving after SIGUSR2")
        check(s.backend.running(), "master still running after reload")
        m = s.backend.wait_log(NOTICE + r"fpm is running, pid (\d+)\n", mark)
        check_eq(int(m.group(1)), s.backend.pid, "same master pid after reload")
    finally:
        s.close(check=True)


@test
def a_reload_with_a_broken_config_keeps_serving():
    """Beyond php-fpm (whose new image exits, taking the site down): SIGUSR2
    with a configuration that no longer loads is refused with the reader's
    error, the running workers go on serving; once the file is fixed, SIGUSR2
    reloads."""
    s = Stack(pool={"pm.max_children": "2"})
    try:
        b = s.backend
        workers = b.worker_pids()
        good = util.read_text(b.conf_file)
        util.write_file(b.conf_file, good + "\nbogus_directive = 1\n")
        mark = b.log_mark()
        b.send_signal(signal.SIGUSR2)
        b.wait_log(r"ERROR: \[.*php-fpm\.conf:\d+\] unknown entry 'bogus_directive'\n", mark)
        b.wait_log(r"ERROR: reload refused: the configuration file .*php-fpm\.conf does not load; "
                   r"the running configuration goes on\n", mark)
        check(b.running(), "master still running")
        check_eq(http.get(s.port, "/hello.php").status, 200, "serving after the refused reload")
        check_eq(sorted(b.worker_pids()), sorted(workers), "the same workers")
        check("Reloading in progress" not in b.log_since(mark), "no reload began")
        # a file that parses but names an unknown user: the new image would
        # stop at start-up's identity checks, so the reload is refused too
        util.write_file(b.conf_file, good + "\nlisten.owner = lowphp_no_such_user\n")
        mark = b.log_mark()
        b.send_signal(signal.SIGUSR2)
        b.wait_log(r"ERROR: \[pool www\] cannot get uid for user 'lowphp_no_such_user'", mark)
        b.wait_log(r"ERROR: reload refused: the configuration file .*php-fpm\.conf does not load", mark)
        check_eq(http.get(s.port, "/hello.php").status, 200, "serving after the second refused reload")
        check("Reloading in progress" not in b.log_since(mark), "no reload began")
        util.write_file(b.conf_file, good)
        mark = b.log_mark()
        b.send_signal(signal.SIGUSR2)
        b.wait_log(NOTICE + r"Reloading in progress \.\.\.\n", mark)
        b.wait_log(NOTICE + r"ready to handle connections\n", mark, timeout=10)
        check_eq(http.get(s.port, "/hello.php").status, 200, "serving after the reload")
    finally:
        s.close(check=True)


if __name__ == "__main__":
    run()
