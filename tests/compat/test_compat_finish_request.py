"""What a script may still do after fastcgi_finish_request(), against
php-fpm8.2, with nginx closing the connection and with fastcgi_keep_conn.

php-fpm keeps taking output into its 8 KB FastCGI buffer once the connection
is closed: a little output (or a few log messages) lets the script go on, a
write that does not fit or a flush() aborts it unless ignore_user_abort is set.
On a kept connection nothing fails. Each case records how far the script got
(and the connection status its shutdown function saw) in a file; both
backends must get exactly as far."""
import os
import time

from lowphp_test import check, compat, http, run, test

# name -> PHP run after fastcgi_finish_request(); step() records progress
CASES = {
    "echo a little": "echo 'after';",
    "echo just under 8 KB": "echo str_repeat('x', 8150);",
    "echo over 8 KB": "echo str_repeat('x', 8200);",
    "two writes adding up": "echo str_repeat('x', 5000); step('a'); echo str_repeat('y', 3500);",
    "flush() with nothing written": "flush();",
    "echo then flush()": "echo 'z'; flush();",
    "log messages": "for ($i = 0; $i < 100; $i++) { error_log(str_repeat('m', 100)); step($i); }",
    "ignore_user_abort": "ignore_user_abort(true); echo str_repeat('x', 20000); step('c'); flush();",
    "ob_flush()": "ob_start(); echo 'q'; ob_flush(); step('o'); ob_end_flush();",
    "header()": "header('X-After: 1'); setcookie('z', '1');",
}

# On a kept connection php-fpm writes what overflows its buffer to nginx, which
# closes that connection when it sees the stray records: a second overflow
# then races nginx's close (EPIPE sets the aborted status, or not). Cases that
# overflow twice are only compared on closed connections.
RACY_WHEN_KEPT = {"log messages", "ignore_user_abort"}

PAIRS = {}


def script(code):
    return f"""<?php
$m = $_GET['m']; @unlink($m);
function step($s) {{ global $m; file_put_contents($m, " $s", FILE_APPEND); }}
register_shutdown_function(function () {{ step('shutdown:' . connection_status()); }});
echo 'before'; fastcgi_finish_request(); step('finished');
{code}
step('end');
"""


def progress(pair, port, name, index):
    mark = os.path.join(pair.tmp.join("marks"), f"{port}-{index}.txt")
    r = http.get(port, f"/finish_{index}.php?m={mark}", headers={"Host": "localhost"})
    check(r.status == 200 and r.body == b"before", f"{name}: answer {r.status} {r.body[:80]!r}")
    deadline = time.time() + 5
    while time.time() < deadline:  # the script runs on after the answer
        if os.path.exists(mark) and "shutdown:" in open(mark).read():
            break
        time.sleep(0.05)
    return open(mark).read().split() if os.path.exists(mark) else None


def make(mode, index, name):
    def t():
        pair = PAIRS[mode]
        ref, sub = (progress(pair, port, name, index) for _n, _b, port in pair.backends)
        print(f"  php-fpm8.2: {' '.join(ref or [])[:120]}")
        check(ref is not None and ref[-1].startswith("shutdown:"), f"php-fpm8.2 did not finish: {ref}")
        check(ref == sub, f"lowphp-fpm got elsewhere: {' '.join(sub or ['nothing'])[:300]}")
    t.__name__ = f"after fastcgi_finish_request, {mode}: {name}"
    return t


for mode in ("closed", "kept"):
    for i, name in enumerate(CASES):
        if mode == "closed" or name not in RACY_WHEN_KEPT:
            test(make(mode, i, name))


@test
def aborts_as_php_fpm_does():
    """The cases above must show both outcomes, or they prove nothing."""
    for _n, _b, port in PAIRS["closed"].backends:
        big = progress(PAIRS["closed"], port, "echo over 8 KB", list(CASES).index("echo over 8 KB"))
        small = progress(PAIRS["closed"], port, "echo a little", 0)
        check(big == ["finished", "shutdown:1"], f"over 8 KB on a closed connection: {big}")
        check(small == ["finished", "end", "shutdown:0"], f"a little output: {small}")


def setup():
    for mode in ("closed", "kept"):
        pair = PAIRS[mode] = compat.Pair(keepalive=mode == "kept")
        os.makedirs(pair.tmp.join("marks"), exist_ok=True)
        for i, code in enumerate(CASES.values()):
            with open(os.path.join(pair.root, f"finish_{i}.php"), "w") as f:
                f.write(script(code))


def teardown(_):
    for pair in PAIRS.values():
        pair.close(check=True)


if __name__ == "__main__":
    run(setup, teardown)
