"""pm.status_path, ping.path and fpm_get_status() side by side: php-fpm8.2 and
$LOWPHP_BIN with the same pool (one worker, so the status request is the only
process listed) must print the same page in every format once the numbers
(pids, times, counters, durations, memory) are masked."""
import json
import re
import subprocess

from lowphp_test import check, check_eq, compat, http, run, test

P = None
POOL = {"pm": "static", "pm.max_children": "1", "pm.status_path": "/status",
        "ping.path": "/ping", "ping.response": "alive"}

NUMBER = re.compile(rb"\d+(\.\d+)?")
DATE = re.compile(rb"\d\d/[A-Z][a-z][a-z]/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}")


def masked(reply):
    body = NUMBER.sub(b"N", DATE.sub(b"DATE", reply.body))
    headers = [(k, v) for k, v in reply.headers if k.lower() != "date"]
    return {"status": reply.status, "headers": headers, "body": body.decode(errors="replace")}


def both(method, path):
    out = []
    for _name, _b, port in P.backends:
        out.append(http.request(port, method, path, headers={"Host": "localhost"}))
    return out


def setup():
    global P
    P = compat.Pair(pool=POOL)
    with open(P.root + "/getstatus.php", "w") as f:
        f.write("<?php $s = fpm_get_status(); foreach ($s['procs'] as &$p) ksort($p);"
                " echo json_encode(['keys' => array_keys($s), 'types' => array_map('gettype', $s),"
                " 'proc' => array_map('gettype', $s['procs'][0])]);")


def teardown(_ctx=None):
    if P:
        P.close()


def same_page(path, method="GET"):
    ref, sub = both(method, path)
    d = compat.diff(masked(ref), masked(sub))
    check(d == "", f"{method} {path} differs from php-fpm8.2:\n{d}")
    return ref, sub


for fmt in ["", "?full", "?json", "?json&full", "?xml", "?xml&full", "?html", "?html&full",
            "?openmetrics", "?openmetrics&full"]:
    def t(fmt=fmt):
        same_page("/status" + fmt)
    t.__name__ = "status" + (fmt.replace("?", "_").replace("&", "_") or "_text")
    test(t)


@test
def status_head():
    same_page("/status", "HEAD")


@test
def ping_get_and_head():
    same_page("/ping")
    same_page("/ping", "HEAD")


@test
def fpm_get_status_shape():
    ref, sub = both("GET", "/getstatus.php")
    check_eq(json.loads(sub.body), json.loads(ref.body), "fpm_get_status() keys and types")


@test
def openmetrics_promtool_says_the_same():
    ref, sub = both("GET", "/status?openmetrics")
    outs = []
    for r in (ref, sub):
        p = subprocess.run(["promtool", "check", "metrics"], input=r.body, capture_output=True)
        outs.append((p.returncode, (p.stdout + p.stderr).decode()))
    check_eq(outs[1], outs[0], "promtool verdict (php-fpm8.2's own names draw lint advice)")


if __name__ == "__main__":
    run(setup, teardown)
