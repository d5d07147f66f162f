"""The same requests through nginx to php-fpm8.2 and $LOWPHP_BIN with one
access.format using every specifier whose value does not depend on the clock,
the pid or the memory allocator: the access logs must be identical."""
import os

from lowphp_test import check, compat, http, run, test, util, wait_for

FORMAT = ('"%%|%f|%l|%m|%n|%{HTTP_X_A}e|%{X-Powered-By}o|%{X-Missing}o|%q|%Q|%r|%R|%s|%u|'
          '%{%Y}t|%{%Y}T"')
POOL = dict(compat.COMPAT_POOL)
POOL.update({"pm.max_children": "1", "access.log": "ACCESS", "access.format": FORMAT})

REQUESTS = [
    ("GET", "/hello.php", None, {}),
    ("GET", "/dump.php?a=1&b=2", None, {"X-A": "trace-1"}),
    ("POST", "/post.php", b"k=v&x=yy", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("GET", "/raw/missing.php/extra", None, {}),
    ("GET", "/code.php?c=503", None, {"Authorization": "Basic dXNlcjpwYXNz"}),
    ("GET", "/redirect.php", None, {}),
    ("HEAD", "/hello.php", None, {}),
    ("GET", "/dump.php/path/info?q=%20x", None, {}),
]


@test
def access_logs_are_identical():
    pair = compat.Pair(pool=POOL)
    try:
        for method, path, body, headers in REQUESTS:
            for _name, _b, port in pair.backends:
                http.request(port, method, path, body=body, headers=dict(headers, Host="localhost"))
        logs = []
        for b in (pair.ref, pair.sub):
            path = os.path.join(b.dir, "ACCESS")
            wait_for(lambda: util.read_text(path).count("\n") >= len(REQUESTS), 5, what=f"{b.name} access log")
            logs.append(util.read_text(path))
        d = compat.diff(logs[0].split("\n"), logs[1].split("\n"))
        check(d == "", f"access logs differ:\n{d}")
    finally:
        pair.close()


if __name__ == "__main__":
    run()
