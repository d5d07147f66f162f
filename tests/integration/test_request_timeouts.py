"""request_slowlog_timeout and request_terminate_timeout, with php-fpm's log
lines. The slow log must work where php-fpm's cannot: the master runs without
CAP_SYS_PTRACE (as in an unprivileged container) and the pool runs as nobody,
so php-fpm's ptrace(ATTACH) is refused; the script must not be disturbed by
the trace (it sleeps or blocks in a socket read for its full time)."""
import os
import re
import socket
import threading
import time

from lowphp_test import Backend, PHP_FPM_BIN, check, check_eq, check_in, fcgi, run, test, util, wait_for

NO_PTRACE = ["setpriv", "--bounding-set", "-sys_ptrace", "--"]

SLOW_PHP = """<?php
function inner() { usleep(2500000); }
function outer() { inner(); }
class K { static function m() { outer(); } }
K::m();
echo "done";
"""

READ_PHP = """<?php
$s = stream_socket_client('tcp://127.0.0.1:' . $_GET['port'], $errno, $errstr, 5);
stream_set_timeout($s, 3);
function wait_for_peer($s) { return fread($s, 10); }
echo 'read:' . var_export(wait_for_peer($s), true);
"""

FINISH_PHP = """<?php
echo "answered";
fastcgi_finish_request();
usleep(2500000);
"""


def backend(pool, binary=None, prefix_cmd=None):
    b = Backend(binary, pool=pool)
    for name, text in (("slow.php", SLOW_PHP), ("read.php", READ_PHP), ("finish.php", FINISH_PHP)):
        util.write_file(b.tmp.join(name), text)
        os.chmod(b.tmp.join(name), 0o644)
    if prefix_cmd:
        plain = b.command
        b.command = lambda: prefix_cmd + plain()
    return b


def request(b, script, query=""):
    path = b.tmp.join(script)
    params = {"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": path, "SCRIPT_NAME": "/" + script,
              "REQUEST_URI": "/" + script + ("?" + query if query else ""), "QUERY_STRING": query}
    t0 = time.monotonic()
    with fcgi.Connection(b.address, timeout=15) as c:
        r = c.request(params)
    return r, time.monotonic() - t0


SLOW_POOL = {"user": "nobody", "pm.max_children": "1", "slowlog": "SLOW", "request_slowlog_timeout": "1",
             "pm.status_path": "/status"}


@test
def slowlog_backtrace_without_ptrace():
    b = backend(SLOW_POOL, prefix_cmd=NO_PTRACE)
    b.start()
    try:
        caps = util.read_text(f"/proc/{b.pid}/status")
        check(re.search(r"CapBnd:\s*0*[0-9a-f]*$", caps, re.M), "bounding set readable")
        bnd = int(re.search(r"CapBnd:\s*([0-9a-f]+)", caps).group(1), 16)
        check_eq(bnd & (1 << 19), 0, "CAP_SYS_PTRACE is out of the master's bounding set")
        r, took = request(b, "slow.php", "a=b")
        check(r.complete and r.body == b"done", f"script finished undisturbed: {r!r}")
        check(took >= 2.4, f"usleep ran its full 2.5 s ({took:.2f}s)")
        slow = wait_for(lambda: util.read_text(b.tmp.join("SLOW")).count("\n") >= 7 and
                        util.read_text(b.tmp.join("SLOW")), 5, what="slowlog")
        rx = (r"\n\[\d\d-\w\w\w-\d{4} \d\d:\d\d:\d\d\]  \[pool www\] pid (\d+)\n"
              r"script_filename = " + re.escape(b.tmp.join("slow.php")) + r"\n"
              r"\[0x[0-9a-f]{16}\] usleep\(\) " + re.escape(b.tmp.join("slow.php")) + r":2\n"
              r"\[0x[0-9a-f]{16}\] inner\(\) .*slow.php:3\n"
              r"\[0x[0-9a-f]{16}\] outer\(\) .*slow.php:4\n"
              r"\[0x[0-9a-f]{16}\] m\(\) .*slow.php:5\n$")
        m = re.fullmatch(rx, slow)
        check(m, f"php-fpm's slowlog format:\n{slow}")
        check(int(m.group(1)) in b.worker_pids(), "pid of the worker")
        check(re.search(r"WARNING: \[pool www\] child \d+, script '.*slow.php' \(request: \"GET /slow.php\?a=b\"\) "
                        r"executing too slow \(1\.\d{6} sec\), logging", b.log()), f"warning line\n{b.log()}")
        r, _ = request(b, "status")
        check_in(b"slow requests:        1\n", r.body, "status page counts it")
    finally:
        b.stop()
        b.close()
    # php-fpm8.2 under the same restriction, recorded for the reader
    ref = backend(SLOW_POOL, binary=PHP_FPM_BIN, prefix_cmd=NO_PTRACE)
    ref.start()
    try:
        request(ref, "slow.php")
        time.sleep(0.3)
        errors = [l for l in ref.log().split("\n") if "ptrace" in l]
        print(f"  php-fpm8.2 without CAP_SYS_PTRACE: slowlog {len(util.read_text(ref.tmp.join('SLOW')))} bytes;"
              f" {errors[0] if errors else 'no ptrace error'}")
    finally:
        ref.stop()
        ref.close()


@test
def slowlog_while_blocked_in_a_socket_read():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    held = []
    threading.Thread(target=lambda: held.append(srv.accept()), daemon=True).start()
    b = backend(SLOW_POOL)
    b.start()
    try:
        r, took = request(b, "read.php", f"port={port}")
        check(r.complete and r.body in (b"read:false", b"read:''"), f"read gave up after its 3 s: {r!r}")
        check(took >= 2.9, f"fread was not interrupted ({took:.2f}s)")
        slow = wait_for(lambda: "fread()" in util.read_text(b.tmp.join("SLOW")) and
                        util.read_text(b.tmp.join("SLOW")), 5, what="slowlog")
        check(re.search(r"\] fread\(\) .*read.php:4\n\[0x[0-9a-f]+\] wait_for_peer\(\) .*read.php:5\n", slow),
              f"trace of the blocked read:\n{slow}")
    finally:
        b.stop()
        b.close()
        srv.close()


@test
def a_slowlog_that_cannot_be_written_stays_out_of_the_response():
    """slowlog = /dev/full: the slowlog thread's failure goes to the error log
    (catch_workers_output), never into the FastCGI connection the worker is
    serving: the answer is the script's output and no FCGI_STDERR record, as
    under php8.2-fpm (which logs nothing about it)."""
    for binary in (PHP_FPM_BIN, None):
        b = backend({"pm.max_children": "1", "slowlog": "/dev/full", "request_slowlog_timeout": "1",
                     "catch_workers_output": "yes"}, binary=binary)
        b.start()
        try:
            r, _ = request(b, "slow.php")
            check(r.complete and r.body == b"done", f"{b.name}: the script's output: {r!r}")
            check_eq(r.stderr, b"", f"{b.name}: FCGI_STDERR")
            b.wait_log(r"executing too slow \(1\.\d{6} sec\), logging")
            if binary is None:
                b.wait_log(r"WARNING: \[pool www\] child \d+ said into stderr: \"ERROR: unable to write the "
                           r"slowlog of pool www: No space left on device \(28\)\"")
        finally:
            b.stop()
            b.close()


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def stepped_clock_backend(pool):
    """A backend whose wall clock (CLOCK_REALTIME, time(), gettimeofday) the
    test steps: libfaketime (Debian's libfaketime) reads the offset from a
    file at each call and leaves the monotonic clocks alone, as an NTP step or
    an operator's `date -s` does."""
    b = backend(pool)
    offset = b.tmp.join("clock-offset")
    util.write_file(offset, "+0\n")
    env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": offset, "FAKETIME_NO_CACHE": "1",
           "FAKETIME_DONT_FAKE_MONOTONIC": "1",
           # the ASan build wants its runtime first; libfaketime only wraps clock calls
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
    plain = b.command
    b.command = lambda: ["env"] + [f"{k}={v}" for k, v in env.items()] + plain()
    return b, offset


def step_clock_while(b, offset, step, after):
    """Runs slow.php; `after` seconds in, steps the wall clock by `step`."""
    def later():
        time.sleep(after)
        util.write_file(offset, step + "\n")
    t = threading.Thread(target=later)
    t.start()
    try:
        return request(b, "slow.php")
    finally:
        t.join()


@test
def a_clock_step_forward_does_not_time_a_request_out():
    """The wall clock jumps two hours ahead while a 2.5 s script runs under
    request_terminate_timeout = 4: the request is answered (timed on the
    monotonic clock, it has run for 2.5 s, not two hours)."""
    # 4 s: the master checks every 1.33 s, twice after the step, and a slow
    # (sanitizer) build's 2.5 s request stays well inside it
    b, offset = stepped_clock_backend({"pm.max_children": "1", "request_terminate_timeout": "4",
                                       "request_slowlog_timeout": "4", "slowlog": "SLOW"})
    b.start()
    try:
        r, took = step_clock_while(b, offset, "+2h", 0.8)
        check(r.complete and r.body == b"done", f"answered despite the step: {r!r} ({took:.2f}s)")
        time.sleep(1.2)  # the master's check runs every second or so
        check("timed out" not in b.log() and "too slow" not in b.log(), f"no timeout, no slowlog:\n{b.log()}")
    finally:
        b.stop()
        b.close()


@test
def a_clock_step_back_does_not_stop_the_timeout():
    """The wall clock jumps two hours back while a 2.5 s script runs under
    request_terminate_timeout = 1: the worker is still ended about 1 s in."""
    b, offset = stepped_clock_backend({"pm.max_children": "1", "request_terminate_timeout": "1"})
    b.start()
    try:
        r, took = step_clock_while(b, offset, "-2h", 0.3)
        check(not r.complete, f"ended by the timeout: {r!r}")
        check(took < 2.3, f"ended by the timeout, not by the script ({took:.2f}s)")
        b.wait_log(r"WARNING: \[pool www\] child \d+, script '.*slow.php' \(request: \"GET /slow.php\"\) "
                   r"execution timed out \(1\.\d{6} sec\), terminating")
    finally:
        b.stop()
        b.close()


@test
def request_terminate_timeout_ends_the_worker():
    b = backend({"pm.max_children": "1", "request_terminate_timeout": "1"})
    b.start()
    try:
        victim = b.worker_pids()
        r, took = request(b, "slow.php")
        check(not r.complete, f"the connection ends without a response: {r!r}")
        # The master checks every third of the timeout: the end comes 1.0-1.4 s
        # in, well before the script's own 2.5 s.
        check(took < 2.3, f"ended by the timeout, not by the script ({took:.2f}s)")
        log = b.wait_log(r"WARNING: \[pool www\] child (\d+), script '.*slow.php' \(request: \"GET /slow.php\"\) "
                         r"execution timed out \(1\.\d{6} sec\), terminating")
        b.wait_log(r"WARNING: \[pool www\] child %s exited on signal 15 \(SIGTERM\) after \d+\.\d+ seconds from start"
                   % log.group(1))
        b.wait_log(r"NOTICE: \[pool www\] child \d+ started")
        r, _ = request(b, "finish.php")
        check(r.complete and r.body == b"answered", "the replacement worker serves")
        check(int(log.group(1)) in victim, "the timed-out child was a worker")
    finally:
        b.stop()
        b.close()


@test
def terminate_timeout_and_fastcgi_finish_request():
    for track, killed in (("no", False), ("yes", True)):
        b = backend({"pm.max_children": "1", "request_terminate_timeout": "1",
                     "request_terminate_timeout_track_finished": track})
        b.start()
        try:
            r, took = request(b, "finish.php")
            check(r.complete and r.body == b"answered", f"answer before the sleep ({track}): {r!r}")
            time.sleep(2.8)
            timed_out = "execution timed out" in b.log()
            check_eq(timed_out, killed, f"track_finished={track}: killed after fastcgi_finish_request\n{b.log()}")
        finally:
            b.stop()
            b.close()


if __name__ == "__main__":
    run()
