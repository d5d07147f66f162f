"""Operations an operator runs: emergency restart on crashing children,
pm.max_memory recycling, and SIGUSR2 taking a changed configuration (pools
added and removed, listen and pm changed) while the same master keeps its pid."""
import os
import signal
import time

from lowphp_test import Backend, check, check_eq, check_in, fcgi, run, test, util, wait_for


def hello(address, script):
    with fcgi.Connection(address) as c:
        return c.request({"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": script, "SCRIPT_NAME": "/x.php"})


def pool_workers(b):
    return [p for p in b.worker_pids() if "pool " in util.proc_cmdline(p)]


@test
def emergency_restart_after_crashing_children():
    b = Backend(pool={"pm.max_children": "2"},
                global_conf={"emergency_restart_threshold": "3", "emergency_restart_interval": "10s"})
    b.start()
    try:
        mark = b.log_mark()
        # php-fpm counts crashes only (SIGSEGV, SIGBUS): killed workers are replaced, no more
        for sig in (signal.SIGKILL, signal.SIGKILL, signal.SIGKILL, signal.SIGSEGV, signal.SIGSEGV):
            victim = wait_for(lambda: pool_workers(b), 5, what="a worker")[0]
            os.kill(victim, sig)
            wait_for(lambda: victim not in pool_workers(b), 5, what="killed worker reaped")
        check("threshold" not in b.log_since(mark), "five failures but two crashes: no reload yet")
        victim = wait_for(lambda: pool_workers(b), 5, what="a worker")[0]
        os.kill(victim, signal.SIGSEGV)
        b.wait_log(r"WARNING: failed processes threshold \(3 in 10 sec\) is reached, initiating reload", mark)
        b.wait_log(r"initiating reload[^\n]*\n(.*\n)*.*ready to handle connections", mark)
        # "Reloading in progress ..." announces a SIGUSR2 only (fpm_got_signal)
        check("Reloading in progress" not in b.log_since(mark), "no SIGUSR2 announcement")
        script = b.tmp.join("x.php")
        util.write_file(script, "<?php echo 'alive';")
        r = wait_for(lambda: hello(b.address, script), 10, what="answer after the reload")
        check_eq(r.body, b"alive", "serves after the emergency reload")
        check(b.running(), "same master")
    finally:
        b.stop()
        b.close()


def resident_bytes(pid):
    """Once the worker is done with the request: the response leaves before
    PHP's request shutdown frees what the script allocated."""
    def now():
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no VmRSS for {pid}")
    last = now()
    for _ in range(50):
        time.sleep(0.2)
        size = now()
        if size == last:
            return size
        last = size
    raise AssertionError(f"worker {pid}'s size does not settle")


THIN = "<?php echo getmypid();"
# many small values: PHP's allocator keeps their chunks mapped after the
# request (a huge single string would be unmapped at once); ~70 MB more
FAT = "<?php $a = []; for ($i = 0; $i < 1500000; $i++) { $a[] = \"x$i\"; } echo count($a);"


def worker_sizes():
    """A worker's resident size after a thin request, then after the fat one
    (what PHP's allocator keeps mapped), measured on this host: they depend on
    the PHP extensions installed and on the build (ASan's are larger)."""
    b = Backend(pool={"pm.max_children": "1"}, ini={"memory_limit": "512M"})
    b.start()
    try:
        thin, fat = b.tmp.join("thin.php"), b.tmp.join("fat.php")
        util.write_file(thin, THIN)
        util.write_file(fat, FAT)
        pid = int(hello(b.address, thin).body)
        sizes = [resident_bytes(pid)]
        check_eq(hello(b.address, fat).body, b"1500000", "fat request answered")
        return sizes + [resident_bytes(pid)]
    finally:
        b.stop()
        b.close()


@test
def max_memory_recycles_a_fat_worker():
    thin_size, fat_size = worker_sizes()
    check(fat_size > thin_size + (16 << 20), f"the fat request leaves the worker larger ({thin_size} -> {fat_size})")
    limit = (thin_size + fat_size) // 2 // 4096 * 4096  # between a thin and a fat worker
    b = Backend(pool={"pm.max_children": "1", "pm.max_memory": str(limit), "pm.status_path": "/status"},
                ini={"memory_limit": "512M"})
    b.start()
    try:
        fat = b.tmp.join("fat.php")
        util.write_file(fat, FAT)
        thin = b.tmp.join("thin.php")
        util.write_file(thin, THIN)
        first = int(hello(b.address, thin).body)
        mark = b.log_mark()
        check_eq(hello(b.address, fat).body, b"1500000", "fat request answered")
        line = b.wait_log(rf"NOTICE: \[pool www\] child (\d+) exceeded pm.max_memory \((\d+) > {limit} bytes\) "
                          r"after its request, recycling", mark)
        check_eq(int(line.group(1)), first, "the worker that served it")
        check(int(line.group(2)) > limit, "its resident size")
        second = int(wait_for(lambda: hello(b.address, thin), 5, what="replacement").body)
        check(second != first, "a new worker serves")
        # a thin request does not recycle
        check_eq(int(hello(b.address, thin).body), second, "thin requests keep the worker")
        with fcgi.Connection(b.address) as c:
            st = c.request({"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": thin, "SCRIPT_NAME": "/status",
                            "QUERY_STRING": "json"})
        import json
        body = st.body.split(b"\r\n\r\n", 1)[-1]
        d = json.loads(body)
        check_eq((d["max memory"], d["memory recycles"]), (limit, 1), "status page")
    finally:
        b.stop()
        b.close()


@test
def reload_applies_a_changed_configuration():
    b = Backend(pool={"pm.max_children": "2"})
    b.start()
    try:
        script = b.tmp.join("x.php")
        util.write_file(script, "<?php echo $_SERVER['POOL_NAME'] ?? getenv('POOL_NAME');")
        pid = b.pid
        new_sock = b.tmp.join("moved.sock")
        shop_sock = b.tmp.join("shop.sock")
        conf = util.read_text(b.conf_file)
        conf = conf.replace(f"listen = {b.socket_path}", f"listen = {new_sock}")
        conf = conf.replace("pm.max_children = 2", "pm.max_children = 3\nenv[POOL_NAME] = www")
        conf += f"\n[shop]\nlisten = {shop_sock}\npm = static\npm.max_children = 1\nenv[POOL_NAME] = shop\n"
        util.write_file(b.conf_file, conf)
        mark = b.log_mark()
        b.send_signal(signal.SIGUSR2)
        b.wait_log(r"ready to handle connections", mark)
        check_eq(b.pid, pid, "same master pid")
        check_eq(hello(new_sock, script).body, b"www", "www on its new socket")
        check_eq(hello(shop_sock, script).body, b"shop", "the added pool")
        check(not os.path.exists(b.socket_path), "the old socket is gone")
        wait_for(lambda: len(pool_workers(b)) == 4, 5, what="3 www + 1 shop workers")
        # and back: remove shop
        util.write_file(b.conf_file, conf.split("\n[shop]")[0] + "\n")
        mark = b.log_mark()
        b.send_signal(signal.SIGUSR2)
        b.wait_log(r"ready to handle connections", mark)
        wait_for(lambda: len(pool_workers(b)) == 3, 5, what="shop's worker gone")
        check(not os.path.exists(shop_sock), "removed pool's socket is gone")
    finally:
        b.socket_path = None
        b.stop()
        b.close()


def nice_of(pid):
    return int(util.read_text(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[16])


def open_files_limit(pid):
    for line in util.read_text(f"/proc/{pid}/limits").split("\n"):
        if line.startswith("Max open files"):
            return int(line.split()[3])
    return None


@test
def priorities_and_rlimits_of_master_and_workers():
    b = Backend(pool={"pm.max_children": "1", "process.priority": "7", "rlimit_files": "1500"},
                global_conf={"process.priority": "3", "rlimit_files": "2048"})
    b.start()
    try:
        worker = wait_for(lambda: pool_workers(b), 5, what="worker")[0]
        check_eq(nice_of(b.pid), 3, "master nice ([global] process.priority)")
        check_eq(nice_of(worker), 7, "worker nice (pool process.priority)")
        check_eq(open_files_limit(b.pid), 2048, "master rlimit_files")
        check_eq(open_files_limit(worker), 1500, "worker rlimit_files")
    finally:
        b.stop()
        b.close()


@test
def process_max_caps_all_pools():
    b = Backend(pool={"pm.max_children": "2"}, global_conf={"process.max": "3"},
                extra_conf="[shop]\nlisten = SHOP.sock\npm = static\npm.max_children = 2\n")
    b.start()
    try:
        b.wait_log(r"WARNING: The maximum number of processes has been reached\. Please review your configuration "
                   r"and consider raising 'process\.max'")
        wait_for(lambda: len(pool_workers(b)) >= 3, 5, what="3 workers")
        time.sleep(0.3)  # and no fourth
        check_eq(len(pool_workers(b)), 3, "workers across both pools")
    finally:
        b.stop()
        b.close()


if __name__ == "__main__":
    run()
