"""A pool's process set-up as php-fpm does it: env[] (with $VAR) and clear_env,
chdir and chroot of the workers, and pm = dynamic's warnings when it runs short
of workers ('seems busy', 'server reached pm.max_children setting')."""
import os
import re
import shutil
import threading
import time

from lowphp_test import Backend, check, check_eq, check_in, fcgi, run, test, util, wait_for


def request(b, script_path, script_name="/x.php", timeout=15):
    with fcgi.Connection(b.address, timeout=timeout) as c:
        return c.request({"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": script_path, "SCRIPT_NAME": script_name})


def pool_workers(b):
    return [p for p in b.worker_pids() if "pool " in util.proc_cmdline(p)]


ENV_PHP = "<?php echo json_encode([getenv('FROM_POOL'), getenv('FROM_MASTER'), getenv('COPIED'), getenv('USER')]);"


@test
def env_and_clear_env():
    os.environ["LOWPHP_TEST_MASTER_VAR"] = "master-value"
    try:
        for clear, master_seen in (("yes", False), ("no", True)):
            b = Backend(pool={"pm.max_children": "1", "clear_env": clear, "env[FROM_POOL]": "pool-value",
                              "env[COPIED]": "$LOWPHP_TEST_MASTER_VAR"})
            b.start()
            try:
                script = b.tmp.join("env.php")
                util.write_file(script, ENV_PHP.replace("FROM_MASTER", "LOWPHP_TEST_MASTER_VAR"))
                import json
                got = json.loads(request(b, script).body)
                check_eq(got[0], "pool-value", f"env[] (clear_env={clear})")
                check_eq(got[1], "master-value" if master_seen else False, f"master's environment (clear_env={clear})")
                check_eq(got[2], "master-value", "env[X] = $VAR takes the master's value")
            finally:
                b.stop()
                b.close()
    finally:
        del os.environ["LOWPHP_TEST_MASTER_VAR"]


@test
def chdir_of_the_workers():
    tmp = util.TempDir(prefix="lowphp-chdir-")
    try:
        b = Backend(pool={"pm.max_children": "1", "chdir": tmp.path})
        b.start()
        try:
            worker = wait_for(lambda: pool_workers(b), 5, what="worker")[0]
            check_eq(os.readlink(f"/proc/{worker}/cwd"), tmp.path, "worker's working directory")
        finally:
            b.stop()
            b.close()
    finally:
        tmp.cleanup()


@test
def chroot_of_the_workers():
    root = util.TempDir(prefix="lowphp-chroot-")
    try:
        os.makedirs(root.join("www"))
        util.write_file(root.join("www", "in.php"), "<?php echo __FILE__, ' ', is_dir('/www') ? 'www' : '-';")
        b = Backend(pool={"pm.max_children": "1", "chroot": root.path, "user": "nobody"})
        b.start()
        try:
            worker = wait_for(lambda: pool_workers(b), 5, what="worker")[0]
            check_eq(os.readlink(f"/proc/{worker}/root"), root.path, "worker's root directory")
            r = request(b, "/www/in.php", "/in.php")
            check_eq(r.body, b"/www/in.php www", "a script seen from inside the chroot")
        finally:
            b.stop()
            b.close()
    finally:
        root.cleanup()


@test
def dynamic_seems_busy_and_max_children_warnings():
    b = Backend(pool={"pm": "dynamic", "pm.max_children": "8", "pm.start_servers": "2",
                      "pm.min_spare_servers": "2", "pm.max_spare_servers": "3"})
    b.start()
    try:
        sleeper = b.tmp.join("sleep.php")
        util.write_file(sleeper, "<?php usleep(6000000);")
        # 12 long requests: every worker the pm adds is taken at once, so it keeps
        # spawning at 1, 2, 4, then 8 per second, then hits max_children
        threads = [threading.Thread(target=lambda: request(b, sleeper, timeout=40)) for _ in range(12)]
        for t in threads:
            t.start()
        b.wait_log(r"WARNING: \[pool www\] seems busy \(you may need to increase pm\.start_servers, or "
                   r"pm\.min/max_spare_servers\), spawning \d+ children, there are 0 idle, and \d+ total children",
                   timeout=10)
        b.wait_log(r"WARNING: \[pool www\] server reached pm\.max_children setting \(8\), consider raising it",
                   timeout=10)
        check_eq(len(pool_workers(b)), 8, "never more than max_children")
        time.sleep(1.5)
        check_eq(b.log().count("server reached pm.max_children"), 1, "said once while it lasts")
        for t in threads:
            t.join()
    finally:
        b.stop()
        b.close()


MARK_PHP = "<?php file_put_contents('php://stderr', 'served by ' . getmypid() . \"\\n\"); echo 'ok';"


@test
def workers_leave_symbol_binding_to_the_zygote():
    """libc and libstdc++ bind their own calls lazily (Debian builds them without
    BIND_NOW): a worker that makes such a call first looks the symbol up in every
    loaded library and maps pages of their symbol tables, ~110 KB of PSS per
    worker. The zygote makes those first calls (a thread, new[]) before it clones
    workers. LD_DEBUG=bindings prints each lookup on the process's stderr, which
    catch_workers_output brings to the error log."""
    os.environ["LD_DEBUG"] = "bindings"
    try:
        b = Backend(pool={"pm.max_children": "1", "catch_workers_output": "yes"})
        b.start()
    finally:
        del os.environ["LD_DEBUG"]
    try:
        script = b.tmp.join("mark.php")
        util.write_file(script, MARK_PHP)
        params = {"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": script, "SCRIPT_NAME": "/mark.php"}
        with fcgi.Connection(b.address) as c:  # a kept connection, then a fresh one
            for _ in range(2):
                check_eq(c.request(params, keep_conn=True).body, b"ok")
        check_eq(request(b, script, "/mark.php").body, b"ok")
        worker = pool_workers(b)[0]
        # The worker's stderr is one pipe: once its last line is logged, all is.
        said = f'child {worker} said into stderr: "served by {worker}"'
        wait_for(lambda: b.log().count(said) == 3, 10, what="the worker's three lines in the log")
        # The sanitizer build's runtime (libasan, libubsan) binds its own hooks
        # lazily on their first use: not lowphp-fpm's, and absent from the package.
        lookups = [line for line in b.log().splitlines()
                   if f"child {worker} said into stderr" in line and "binding file" in line
                   and not re.search(r"binding file \S*/lib(asan|ubsan)\.so", line)]
        check_eq(lookups, [], "symbol lookups made by the worker")
    finally:
        b.stop()
        b.close()


if __name__ == "__main__":
    run()
