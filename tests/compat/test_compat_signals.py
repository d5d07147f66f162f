"""A graceful stop or reload while a script runs, against php-fpm8.2.

php-fpm's master passes SIGQUIT on to its children (QUIT, USR2, and USR1
when an access log is reopened); a child's handler interrupts whatever the
script is blocked in: sleep() returns early with the seconds left, the script
finishes and its answer goes out before the child exits (lowphp-fpm's
previous generation gets its SIGQUIT once the next one is up, a moment later). With
process_control_timeout set, a script sleeping longer than the timeout is
therefore answered, not killed. Both backends get the same pool, a script
that sleeps 3 s, and the signal 0.5 s into it."""
import os
import signal
import time

from lowphp_test import check, fcgi, run, test, util
from lowphp_test.backend import Backend, lowphp_bin, phpfpm_bin

SCRIPT = """<?php
$left = sleep(3);
printf("sleep returned %d", $left);
"""


def sleep_through(binary, signo, tmp):
    """What the client of a sleeping script gets when the master receives `signo`."""
    root = os.path.join(tmp, "www")
    os.makedirs(root, exist_ok=True)
    util.write_file(os.path.join(root, "sleep.php"), SCRIPT)
    be = Backend(binary, global_conf={"process_control_timeout": "10s"},
                 pool={"pm": "static", "pm.max_children": "1"})
    with be:
        workers = set(be.worker_pids())
        params = fcgi.php_params(os.path.join(root, "sleep.php"), document_root=root)
        with fcgi.Connection(be.address, timeout=8) as conn:
            conn.send_request(params)
            time.sleep(0.5)
            mark = be.log_mark()
            started = time.time()
            be.send_signal(signo)
            try:
                resp = conn.read_response()
                answer = (resp.complete, resp.body.decode(errors="replace"))
            except (OSError, EOFError) as e:
                answer = (False, f"no answer: {e!r}")
            took = time.time() - started
        outcome = {"complete": answer[0], "body": answer[1], "answered within 1.5 s": took < 1.5}
        if signo == signal.SIGUSR2:
            be.wait_log(r"ready to handle connections", mark=mark)
            # lowphp-fpm's previous generation ends once the next one is up
            outcome["workers replaced"] = replaced(be, workers)
            be.stop()
        else:
            outcome["master exited"] = be.wait_exit(5) is not None
    return outcome


def replaced(be, old, timeout=5.0):
    deadline = time.monotonic() + timeout
    while set(be.worker_pids()) & old:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def make(signo):
    def t():
        with util.TempDir(prefix="lowphp-compat-sig-") as tmp:
            ref = sleep_through(phpfpm_bin(), signo, tmp.join("ref"))
            sub = sleep_through(lowphp_bin(), signo, tmp.join("sub"))
        print(f"  php-fpm8.2: {ref}\n  lowphp-fpm: {sub}")
        check(ref["complete"] and ref["body"] == "sleep returned 2",
              f"php-fpm8.2 no longer cuts the sleep short: {ref}")
        check(ref == sub, f"lowphp-fpm differs: {sub}")
    t.__name__ = f"{signal.Signals(signo).name} while a script sleeps: answered at once"
    return t


for s in (signal.SIGQUIT, signal.SIGUSR2):
    test(make(s))

if __name__ == "__main__":
    run()
