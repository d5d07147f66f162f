"""catch_workers_output: what a worker writes to stderr reaches the error log,
decorated as php-fpm decorates it, or raw with decorate_workers_output = no."""
import os
import re

from lowphp_test import Backend, check, fcgi, run, test

SCRIPT = '<?php file_put_contents("php://stderr", "raw line one\\n"); error_log("via error_log");'


def request(b):
    path = os.path.join(b.dir, "se.php")
    with open(path, "w") as f:
        f.write(SCRIPT)
    with fcgi.Connection(b.address) as c:
        r = c.request({"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": path, "SCRIPT_NAME": "/se.php"})
    check(r.complete, f"response: {r!r}")


@test
def decorated_output():
    b = Backend(pool={"catch_workers_output": "yes", "pm.max_children": "1"})
    b.start()
    try:
        mark = b.log_mark()
        request(b)
        b.wait_log(r'\] WARNING: \[pool www\] child \d+ said into stderr: "raw line one"\n', mark)
        b.wait_log(r'\] WARNING: \[pool www\] child \d+ said into stderr: '
                   r'"NOTICE: PHP message: via error_log"\n', mark)
    finally:
        b.stop()


@test
def undecorated_output_is_raw():
    b = Backend(pool={"catch_workers_output": "yes", "decorate_workers_output": "no",
                      "pm.max_children": "1"})
    b.start()
    try:
        mark = b.log_mark()
        request(b)
        b.wait_log(r"(?m)^raw line one\n", mark)
        b.wait_log(r"(?m)^NOTICE: PHP message: via error_log\n", mark)
    finally:
        b.stop()


if __name__ == "__main__":
    run()
