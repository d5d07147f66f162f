"""A shared extension loaded by a pool's php_admin_value[extension], and pool
values that cannot be set, compared with php8.2-fpm under
catch_workers_output = yes: the extension's start-up (MINIT) runs in each
worker, its RINIT and RSHUTDOWN at each request, and what they print reaches
the error log as "child N said into stderr" lines, as do the "Unable to set"
errors, in the pool's order."""
import os
import re
import subprocess
import time

from lowphp_test import Backend, check, compat, fcgi, run, test, util
from lowphp_test.backend import lowphp_bin, phpfpm_bin

HERE = os.path.dirname(os.path.abspath(__file__))


def build_extension(tmp):
    out = tmp.join("loud.so")
    includes = subprocess.run(["php-config8.2", "--includes"], check=True, capture_output=True,
                              text=True).stdout.split()
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-DCOMPILE_DL_LOUD", *includes,
                    os.path.join(HERE, "ext", "loud.c"), "-o", out], check=True)
    return out


def worker_lines(b, requests):
    path = b.tmp.join("x.php")
    util.write_file(path, "<?php echo extension_loaded('loud') ? 'loaded' : 'not loaded';")
    os.chmod(path, 0o644)
    b.start()
    bodies = []
    try:
        for _ in range(requests):
            with fcgi.Connection(b.address, timeout=15) as c:
                r = c.request([("REQUEST_METHOD", "GET"), ("SCRIPT_FILENAME", path), ("SCRIPT_NAME", "/x.php"),
                               ("REQUEST_URI", "/x.php"), ("QUERY_STRING", "")])
            bodies.append(r.body)
        time.sleep(0.5)  # the master logs what the worker wrote
    finally:
        b.stop()
    lines = [re.sub(r"^\[[^]]+\] ", "", l) for l in b.log().splitlines() if "said into stderr" in l]
    return bodies, [re.sub(r"child \d+", "child N", l) for l in lines]


@test(timeout=120)
def extension_start_up_and_request_hooks_in_the_worker():
    tmp = util.TempDir(prefix="lowphp-ext-")
    try:
        ext = build_extension(tmp)
        pool = [("pm", "static"), ("pm.max_children", "1"), ("catch_workers_output", "yes"),
                ("php_value[no.such.directive]", "1"), ("php_admin_value[extension]", ext),
                ("php_admin_value[extension]", tmp.join("missing.so")), ("php_admin_value[also.missing]", "2"),
                ("php_value[second.missing]", "3")]
        seen = {}
        for name, binary in (("php-fpm8.2", phpfpm_bin()), ("lowphp-fpm", lowphp_bin())):
            b = Backend(binary, name=name, pool=pool)
            try:
                seen[name] = worker_lines(b, 2)
            finally:
                b.close()
            print(f"  {name}: {seen[name][0]}\n    " + "\n    ".join(seen[name][1]), flush=True)
        check(seen["lowphp-fpm"][0] == [b"loaded", b"loaded"], f"the extension is loaded: {seen['lowphp-fpm'][0]}")
        check(any("loud: MINIT" in l for l in seen["lowphp-fpm"][1]), "MINIT's line in the error log")
        d = compat.diff(seen["php-fpm8.2"][1], seen["lowphp-fpm"][1])
        check(not d, f"the workers' stderr lines differ from php8.2-fpm's:\n{d}")
    finally:
        tmp.cleanup()


if __name__ == "__main__":
    run()
