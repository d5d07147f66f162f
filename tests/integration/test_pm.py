"""Process managers: static starts max_children, dynamic starts start_servers,
ondemand starts none, forks on the first connection and retires idle workers."""
import os
import time

from lowphp_test import Backend, check, check_eq, fcgi, run, test, wait_for


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


if __name__ == "__main__":
    run()
