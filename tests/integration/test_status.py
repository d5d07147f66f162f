"""pm.status_path, ping.path and fpm_get_status() through nginx, as an operator
and a monitoring system read them: the five formats parse, the counters move."""
import json
import os
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

from lowphp_test import Stack, check, check_eq, check_in, http, run, test, wait_for

S = None

POOL = {"pm": "static", "pm.max_children": "2", "pm.status_path": "/status",
        "ping.path": "/ping", "ping.response": "pong from www"}

NO_CACHE = "no-cache, no-store, must-revalidate, max-age=0"


def get(path, method="GET"):
    return http.request(S.port, method, path)


def text_fields(body):
    """'key:   value' lines of the text format, one dict per block."""
    blocks = body.decode().split("\n************************\n")
    out = []
    for b in blocks:
        d = {}
        for line in b.strip("\n").split("\n"):
            k, _, v = line.partition(":")
            d[k] = v.strip()
        out.append(d)
    return out


def setup():
    global S
    S = Stack(pool=POOL)
    with open(os.path.join(S.root, "sleep.php"), "w") as f:
        f.write("<?php usleep((int)($_GET['ms'] ?? 500) * 1000); echo 'slept';")
    with open(os.path.join(S.root, "getstatus.php"), "w") as f:
        f.write("<?php header('Content-Type: application/json'); echo json_encode(fpm_get_status());")


def teardown(_ctx=None):
    if S:
        S.close()


@test
def ping_answers_the_configured_response():
    r = get("/ping")
    check_eq(r.status, 200, "status")
    check_eq(r.body, b"pong from www", "body")
    check_eq(r.header("Content-Type"), "text/plain;charset=UTF-8", "Content-Type")
    check_eq(r.header("Cache-Control"), NO_CACHE, "Cache-Control")
    check_eq(r.header("Expires"), "Thu, 01 Jan 1970 00:00:00 GMT", "Expires")
    check_eq(get("/ping", "HEAD").body, b"", "HEAD body")


@test
def text_status_counts_requests():
    before = text_fields(get("/status").body)[0]
    for _ in range(5):
        check_eq(get("/hello.php").status, 200, "hello")
    # the worker that sent the last hello may still be finishing it: ask until
    # the status request is the only active one
    polls = []

    def poll():
        polls.append(1)
        r = get("/status")
        return text_fields(r.body)[0]["active processes"] == "1" and r
    r = wait_for(poll, 5, what="the status request alone active")
    check_eq(r.status, 200, "status")
    check_eq(r.header("Content-Type"), "text/plain;charset=UTF-8", "Content-Type")
    check_eq(r.header("Cache-Control"), NO_CACHE, "Cache-Control")
    after = text_fields(r.body)[0]
    check_eq(list(after), ["pool", "process manager", "start time", "start since", "accepted conn",
                           "listen queue", "max listen queue", "listen queue len", "idle processes",
                           "active processes", "total processes", "max active processes",
                           "max children reached", "slow requests"], "fields in php-fpm's order")
    check_eq(after["pool"], "www", "pool")
    check_eq(after["process manager"], "static", "pm")
    # the 5 hellos and the status requests themselves
    check_eq(int(after["accepted conn"]) - int(before["accepted conn"]), 5 + len(polls), "accepted conn delta")
    check_eq(after["total processes"], "2", "total")
    check_eq(after["active processes"], "1", "active (the status request itself)")
    check_eq(after["idle processes"], "1", "idle")


@test
def full_text_shows_a_running_request():
    t = threading.Thread(target=lambda: get("/sleep.php?ms=1500"))
    t.start()
    try:
        def running_sleep():
            procs = text_fields(get("/status?full").body)[1:]
            return [p for p in procs if p.get("script", "").endswith("/sleep.php")
                    and p["state"] == "Running"]
        wait_for(lambda: running_sleep(), 5, what="sleep.php shown as Running")
        time.sleep(0.3)
        p = running_sleep()[0]
        check_eq(p["request method"], "GET", "method")
        check_eq(p["request URI"], "/sleep.php?ms=1500", "uri with query")
        check(int(p["request duration"]) >= 300000, f"request duration grows: {p['request duration']}")
        check_eq(p["last request memory"], "0", "memory shown only when idle")
    finally:
        t.join()


@test
def json_status_parses():
    r = get("/status?json&full")
    check_eq(r.header("Content-Type"), "application/json", "Content-Type")
    d = json.loads(r.body)
    check_eq(d["pool"], "www", "pool")
    check_eq(len(d["processes"]), 2, "processes")
    me = [p for p in d["processes"] if p["state"] == "Running"]
    check_eq(len(me), 1, f"one running process: {d['processes']}")
    check_eq(me[0]["request uri"], "/status?json&full", "own request")
    check_eq(me[0]["pid"] in S.backend.worker_pids(), True, "pid is a worker of the pool")
    short = json.loads(get("/status?json").body)
    check("processes" not in short, "no processes without full")


@test
def xml_status_parses():
    r = get("/status?xml&full")
    check_eq(r.header("Content-Type"), "text/xml;charset=UTF-8", "Content-Type")
    root = ET.fromstring(r.body)
    check_eq(root.tag, "status", "root")
    check_eq(root.findtext("pool"), "www", "pool")
    procs = root.find("processes").findall("process")
    check_eq(len(procs), 2, "processes")
    uris = sorted(p.findtext("request-uri") for p in procs if p.findtext("state") == "Running")
    check_eq(uris, ["/status?xml&full"], "escaped & decoded by the parser")


@test
def html_status_is_a_table():
    r = get("/status?html&full")
    check_eq(r.header("Content-Type"), "text/html;charset=UTF-8", "Content-Type")
    body = r.body.decode()
    check_in("<tr><th>pool</th><td>www</td></tr>", body, "pool row")
    check_in("<td>/status?html&amp;full</td>", body, "escaped uri")
    check(body.endswith("</table></body></html>"), "document end")


@test
def openmetrics_passes_promtool():
    r = get("/status?openmetrics")
    check_eq(r.header("Content-Type"), "application/openmetrics-text; version=1.0.0; charset=utf-8",
             "Content-Type")
    check(r.body.endswith(b"# EOF\n"), "ends with # EOF")
    check_in(b"phpfpm_up 1\n", r.body, "up")
    check_in(b"phpfpm_total_processes 2\n", r.body, "total")
    p = subprocess.run(["promtool", "check", "metrics"], input=r.body, capture_output=True)
    out = (p.stdout + p.stderr).decode()
    # 0 = clean, 3 = lint advice only (php-fpm's own names lack _total); 1 = parse error
    check(p.returncode in (0, 3) and "error" not in out, f"promtool rc {p.returncode}: {out}")


@test
def head_status_has_no_body():
    r = get("/status", "HEAD")
    check_eq(r.status, 200, "status")
    check_eq(r.body, b"", "body")
    check_eq(r.header("Cache-Control"), NO_CACHE, "Cache-Control")


@test
def fpm_get_status_for_scripts():
    d = json.loads(get("/getstatus.php").body)
    check_eq(list(d)[:3], ["pool", "process-manager", "start-time"], "hyphenated keys")
    check_eq(d["pool"], "www", "pool")
    check_eq(d["total-processes"], 2, "total")
    me = [p for p in d["procs"] if p["state"] == "Running"]
    check_eq(len(me), 1, "the calling process runs")
    check(me[0]["script"].endswith("/getstatus.php"), f"script {me[0]}")
    check_eq(sorted(me[0]), sorted(["pid", "state", "start-time", "start-since", "requests",
                                    "request-duration", "request-method", "request-uri",
                                    "query-string", "request-length", "user", "script",
                                    "last-request-cpu", "last-request-memory"]), "proc keys")


@test
def status_listen_answers_while_every_worker_is_busy():
    from lowphp_test import Backend, fcgi
    b = Backend(pool={"pm": "static", "pm.max_children": "2", "pm.status_path": "/status",
                      "pm.status_listen": "STATUS.sock"})
    b.start()
    try:
        util_sleep = os.path.join(b.dir, "sleep.php")
        with open(util_sleep, "w") as f:
            f.write("<?php usleep(1500000); echo 'slept';")
        status_sock = os.path.join(b.dir, "STATUS.sock")
        check_eq(oct(os.stat(status_sock).st_mode & 0o777), "0o660", "status socket mode as listen's")

        def status(query="full"):
            with fcgi.Connection(status_sock) as c:
                r = c.request({"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": util_sleep, "SCRIPT_NAME": "/status",
                               "QUERY_STRING": query})
            return text_fields(r.body)

        def sleep_req():
            with fcgi.Connection(b.address) as c:
                c.request({"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": util_sleep, "SCRIPT_NAME": "/sleep.php"})
        threads = [threading.Thread(target=sleep_req) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            busy = wait_for(lambda: (lambda f: f[0]["active processes"] == "2" and
                                     [p["state"] for p in f[1:]] == ["Running", "Running"] and f)(status()), 5,
                            what="both workers running, seen through pm.status_listen")
            check_eq(busy[0]["total processes"], "2", "the status worker is not counted")
            check_eq(sorted(p["state"] for p in busy[1:]), ["Running", "Running"], "both pool workers run")
        finally:
            for t in threads:
                t.join()
        done = wait_for(lambda: (lambda f: f[0]["idle processes"] == "2" and f)(status()), 5,
                        what="both workers idle again")
        for p in done[1:]:
            check_eq(p["request URI"], "/sleep.php", "last request stays on the line")
            check(int(p["request duration"]) >= 1500000, f"its duration {p}")
            check(int(p["last request memory"]) > 0, f"its peak memory {p}")
    finally:
        b.stop()
        b.close()


@test
def status_path_not_set_is_a_normal_request():
    # a pool without pm.status_path: /status is just a missing script
    st = Stack(pool={"pm": "static", "pm.max_children": "1"})
    try:
        r = http.get(st.port, "/status")
        check_eq(r.status, 404, "status")
    finally:
        st.close()


if __name__ == "__main__":
    run(setup, teardown)
