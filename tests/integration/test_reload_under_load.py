"""Zero-drop reload without a stall: wrk through nginx at full load on a
script that takes 200 ms while the master receives 20 SIGUSR2 (default
process_control_timeout), with and without fastcgi_keep_conn. lowphp-fpm must
answer every request with 2xx and no socket error, serve at least 95% of what
the same run serves without reloads (the next generation starts while the
previous one serves), keep the process count near pm.max_children, and leave
no process of an old generation behind; php-fpm8.2 in the same run is
measured and printed for comparison (it stops serving at each reload). A
reload also picks up a binary replaced on disk, as a package upgrade does."""
import os
import re
import shutil
import signal
import subprocess
import threading
import time

from lowphp_test import PHP_FPM_BIN, Backend, Nginx, Stack, check, check_eq, http, run, test, util, wait_for

RELOADS = 20


MAX_CHILDREN = 4


def wrk_under_reloads(binary, keepalive, reloads=RELOADS):
    st = Stack(binary, pool={"pm.max_children": str(MAX_CHILDREN)}, keepalive=keepalive)
    peak = [0]
    sampling = [True]

    def sample():  # processes below the master: workers of every generation, zygotes
        while sampling[0]:
            peak[0] = max(peak[0], len(st.backend.worker_pids()))
            time.sleep(0.02)
    try:
        util.write_file(os.path.join(st.root, "s200.php"), "<?php usleep(200000); echo 'ok';")
        mark = st.backend.log_mark()
        w = subprocess.Popen(["wrk", "-t2", "-c16", "-d14s", "--timeout", "10s",
                              f"http://127.0.0.1:{st.port}/s200.php"], stdout=subprocess.PIPE, text=True)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        time.sleep(1.5)
        for _ in range(reloads):
            # each reload is complete (the new image is ready) before the next
            # signal: a USR2 during start-up is ignored, as php-fpm does
            done = st.backend.log_mark()
            st.backend.send_signal(signal.SIGUSR2)
            st.backend.wait_log(r"ready to handle connections", done, timeout=10)
            time.sleep(0.3)
        out = w.communicate(timeout=60)[0]
        sampling[0] = False
        sampler.join()
        # the old generations are gone: the pool's workers and its zygote remain
        settled = util.wait_for(lambda: len(st.backend.worker_pids()) == MAX_CHILDREN + 1 or None,
                                5, what="old generations gone") if binary is None else None
        reloads = st.backend.log_since(mark).count("Reloading in progress")
        total = int(re.search(r"(\d+) requests in", out).group(1))
        non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", out) or [0, 0])[1])
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        sock_errors = sum(int(x) for x in sock.groups()) if sock else 0
        alive = st.backend.running()
        return {"requests": total, "non2xx": non2xx, "socket_errors": sock_errors, "reloads": reloads,
                "alive": alive, "peak_processes": peak[0], "settled": settled}
    finally:
        st.close(check=False)


def compare(keepalive):
    mode = "keep-alive" if keepalive else "no keep-alive"
    ref = wrk_under_reloads(PHP_FPM_BIN, keepalive)
    quiet = wrk_under_reloads(None, keepalive, reloads=0)
    low = wrk_under_reloads(None, keepalive)
    for name, r in (("php-fpm8.2", ref), ("lowphp-fpm", low), ("no reloads", quiet)):
        print(f"  {mode:14} {name:11} {r['requests']} requests, {r['non2xx']} non-2xx, "
              f"{r['socket_errors']} socket errors, {r['reloads']} reloads logged, "
              f"at most {r['peak_processes']} processes below the master")
    check(low["alive"], "master still running")
    check_eq(low["reloads"], RELOADS, "every SIGUSR2 became a reload")
    check(low["requests"] >= 0.95 * quiet["requests"],
          f"{mode}: {low['requests']} requests under reloads, {quiet['requests']} without")
    check_eq((low["non2xx"], low["socket_errors"]), (0, 0), f"{mode}: dropped requests")
    # two generations at most: the next one's workers and zygote, the
    # previous one's workers finishing their request, its zygote leaving
    check(low["peak_processes"] <= 2 * MAX_CHILDREN + 2, f"{mode}: process count {low}")


@test
def reload_drops_nothing_without_keepalive():
    compare(False)


@test
def reload_drops_nothing_with_keepalive():
    compare(True)


@test
def reload_executes_a_replaced_binary():
    tmp = util.TempDir(prefix="lowphp-upgrade-")
    try:
        exe = tmp.join("lowphp-fpm")
        shutil.copy2(os.environ["LOWPHP_BIN"], exe)
        st = Stack(exe, pool={"pm.max_children": "2"})
        try:
            before = os.stat(f"/proc/{st.backend.pid}/exe").st_ino
            # a package upgrade: the new file is renamed over the old path
            shutil.copy2(os.environ["LOWPHP_BIN"], exe + ".new")
            os.rename(exe + ".new", exe)
            check(os.readlink(f"/proc/{st.backend.pid}/exe").endswith("(deleted)"), "old binary replaced")
            mark = st.backend.log_mark()
            st.backend.send_signal(signal.SIGUSR2)
            st.backend.wait_log(r"ready to handle connections", mark)
            link = os.readlink(f"/proc/{st.backend.pid}/exe")
            check_eq(link, exe, "the master runs the new file (same pid)")
            check_eq(os.stat(f"/proc/{st.backend.pid}/exe").st_ino == before, False, "new inode")
            check_eq(http.get(st.port, "/hello.php").status, 200, "serves after the upgrade")
        finally:
            st.close()
    finally:
        tmp.cleanup()


if __name__ == "__main__":
    run()
