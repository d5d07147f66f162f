"""Process managers: static starts max_children, dynamic starts start_servers,
ondemand starts none, forks on the first connection and retires idle workers."""
import os
import threading
import time

from lowphp_test import Backend, check, check_eq, fcgi, run, test, wait_for
from lowphp_test.backend import lowphp_bin, phpfpm_bin


def workers(b):
    return b.worker_pids()


def hello(b):
    path = os.path.join(b.dir, "hi.php")
    with open(path, "w") as f:
        f.write("<?php echo 'hi';")
    with fcgi.Connection(b.address) as c:
        r = c.request({"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": path, "SCRIPT_NAME": "/hi.php"})
    check(r.complete and r.body == b"hi", f"response {r!r}")


def pool_workers(b):
    # the zygote is a child of the master too: count only "pool" processes
    out = []
    for pid in b.worker_pids():
        try:
            title = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ")
        except OSError:
            continue
        if b"pool www" in title:
            out.append(pid)
    return out


@test
def dynamic_starts_start_servers():
    b = Backend(pool={"pm": "dynamic", "pm.max_children": "5", "pm.start_servers": "2",
                      "pm.min_spare_servers": "1", "pm.max_spare_servers": "3"})
    b.start()
    try:
        wait_for(lambda: len(pool_workers(b)) == 2, 5, what="2 workers")
        hello(b)
    finally:
        b.stop()


@test
def ondemand_forks_on_demand_and_retires_idle():
    b = Backend(pool={"pm": "ondemand", "pm.max_children": "2", "pm.process_idle_timeout": "1s"})
    b.start()
    try:
        time.sleep(0.5)
        check_eq(len(pool_workers(b)), 0, "workers before any request")
        hello(b)
        check_eq(len(pool_workers(b)), 1, "workers after one request")
        wait_for(lambda: len(pool_workers(b)) == 0, 5, what="idle worker retired")
        hello(b)
    finally:
        b.stop()


def pids_serving_at_once(binary, warm):
    """Two connections 5 ms apart to an ondemand pool (a first one before
    them when `warm`, so PHP is up): the pids of the workers that answered."""
    b = Backend(binary, pool={"pm": "ondemand", "pm.max_children": "3",
                              "pm.process_idle_timeout": "10s"})
    path = os.path.join(b.dir, "nap.php")
    with open(path, "w") as f:
        f.write("<?php usleep(400000); echo getmypid();")
    params = {"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": path, "SCRIPT_NAME": "/nap.php"}
    b.start()
    try:
        if warm:  # then its worker is idle: the two below need one more
            with fcgi.Connection(b.address) as c:
                check(c.request(params).complete, "first request answered")
        pids = []

        def one():
            with fcgi.Connection(b.address, timeout=10) as c:
                pids.append(c.request(params).body)

        threads = [threading.Thread(target=one) for _ in range(2 + warm)]
        for t in threads:
            t.start()
            time.sleep(0.005)
        for t in threads:
            t.join()
        return sorted(pids)
    finally:
        b.stop()


@test
def ondemand_connections_at_once_get_a_worker_each():
    """php-fpm forks a worker for every connection event that finds no idle
    worker, counting one still being forked as busy: connections that come
    together run side by side, also while PHP starts (the first connections).
    Checked on php-fpm8.2 too. lowphp-fpm used to fork one at a time and left
    the second connection to the first worker (or to the next tick)."""
    for warm in (False, True):
        for binary in (phpfpm_bin(), lowphp_bin()):
            pids = pids_serving_at_once(binary, warm)
            print(f"  {os.path.basename(binary)} warm={warm}: pids {pids}")
            check(len(set(pids)) == len(pids) == 2 + warm,
                  f"{binary} (warm={warm}): each connection its own worker, got {pids}")


if __name__ == "__main__":
    run()
