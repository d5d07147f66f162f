"""access.log as an operator uses it: php-fpm's default line, every
access.format specifier through nginx, access.suppress_path, SIGUSR1 for
logrotate, and a broken format refused at start-up with php-fpm's words."""
import os
import re
import signal

from lowphp_test import Backend, Nginx, Stack, check, check_eq, check_in, http, run, test, util, wait_for


def lines(path):
    return [l for l in util.read_text(path).split("\n") if l]


def wait_lines(path, n):
    return wait_for(lambda: len(lines(path)) >= n and lines(path), 5, what=f"{n} access log lines in {path}")


@test
def default_format_is_php_fpms():
    st = Stack(pool={"pm.max_children": "1", "access.log": "ACCESS"})
    log = st.backend.tmp.join("ACCESS")
    try:
        check_eq(http.get(st.port, "/hello.php?x=1").status, 200, "hello")
        check_eq(http.get(st.port, "/raw/missing.php").status, 404, "missing")
        got = wait_lines(log, 2)
        # %R - %u %t "%m %r" %s ; unix socket: no client address, no user
        check(re.fullmatch(r'- -  \d\d/\w\w\w/\d{4}:\d\d:\d\d:\d\d [+-]\d{4} "GET /hello.php" 200', got[0]),
              f"line 1: {got[0]!r}")
        check(got[1].endswith('"GET /raw/missing.php" 404'), f"line 2: {got[1]!r}")
        check_eq(oct(os.stat(log).st_mode & 0o777), "0o600", "access log mode (php-fpm's 0600)")
    finally:
        st.close()


FORMAT = ("%% C=%C U=%{user}C S=%{system}C d=%d ms=%{milliseconds}d us=%{micro}d "
          "e=%{HTTP_X_TRACE}e none=%{NOPE}e f=%f l=%l m=%m M=%M kb=%{kilo}M mb=%{mega}M n=%n "
          "o=%{X-App}o onone=%{X-None}o p=%p P=%P q=%q Q=%Q r=%r R=%R s=%s "
          "t=%{%Y-%m-%d}t T=%{%H:%M}T u=%u")


@test
def every_specifier_over_tcp():
    b = Backend(pool={"pm.max_children": "1", "access.log": "ACCESS", "access.format": f'"{FORMAT}"'},
                listen="tcp")
    b.start()
    ng = None
    try:
        from lowphp_test import site
        root = site.make_docroot(b.tmp.join("www"))
        util.write_file(os.path.join(root, "app.php"),
                        "<?php header('X-App: yes'); echo str_repeat('a', 1000);")
        ng = Nginx([(root, b.fastcgi_pass)]).start()
        r = http.request(ng.port, "POST", "/app.php?k=v", body=b"12345",
                         headers={"X-Trace": "abc", "Content-Type": "text/plain",
                                  "Authorization": "Basic dXNlcjpwYXNz"})
        check_eq(r.status, 200, "app")
        line = wait_lines(b.tmp.join("ACCESS"), 1)[0]
        f = dict(kv.split("=", 1) for kv in line.split(" ")[1:])
        check(line.startswith("% "), f"%% -> %: {line!r}")
        for k in ("C", "U", "S"):
            check(re.fullmatch(r"\d+\.\d\d", f[k]), f"%C {k}={f[k]}")
        check(re.fullmatch(r"\d+\.\d{3}", f["d"]) and re.fullmatch(r"\d+\.\d{3}", f["ms"]), f"durations {f}")
        check(abs(float(f["ms"]) * 1000 - int(f["us"])) <= 1, f"ms and us agree {f}")
        check_eq((f["e"], f["none"]), ("abc", "-"), "%e")
        check_eq(f["f"], os.path.join(root, "app.php"), "%f")
        check_eq((f["l"], f["m"]), ("5", "POST"), "%l %m")
        check(int(f["M"]) > 0 and f["kb"] == str(int(f["M"]) // 1024) and f["mb"] == str(int(f["M"]) // 1048576),
              f"%M {f}")
        check_eq(f["n"], "www", "%n")
        check_eq((f["o"], f["onone"]), ("yes", "-"), "%o")
        check_eq(int(f["p"]) in b.worker_pids(), True, "%p is the worker")
        check_eq(f["P"], str(b.pid), "%P is the master")
        check_eq((f["q"], f["Q"], f["r"]), ("k=v", "?", "/app.php"), "%q %Q %r")
        check_eq(f["R"], "127.0.0.1", "%R (nginx's address on a tcp listener)")
        check_eq(f["s"], "200", "%s")
        check(re.fullmatch(r"\d{4}-\d\d-\d\d", f["t"]) and re.fullmatch(r"\d\d:\d\d", f["T"]), f"times {f}")
        check_eq(f["u"], "user", "%u from Basic auth")
    finally:
        if ng:
            ng.close()
        b.stop()
        b.close()


@test
def suppress_path_hides_successful_requests_only():
    st = Stack(pool={"pm.max_children": "1", "access.log": "ACCESS", "access.format": '"%r%Q%q %s"',
                     "access.suppress_path[]": "/hello.php", "ping.path": "/ping"},
               extra_conf="access.suppress_path[] = /ping\naccess.suppress_path[] = /raw/missing.php\n")
    log = st.backend.tmp.join("ACCESS")
    try:
        for path in ("/hello.php", "/ping", "/raw/missing.php", "/hello.php?x=1", "/query.php"):
            http.get(st.port, path)
        got = wait_lines(log, 3)
        check_eq(got, ["/raw/missing.php 404", "/hello.php?x=1 200", "/query.php 200"],
                 "logged: the 404, the URI with a query, the unlisted script")
    finally:
        st.close()


@test
def sigusr1_reopens_for_logrotate():
    st = Stack(pool={"pm.max_children": "2", "access.log": "ACCESS", "access.format": '"%r"'})
    log = st.backend.tmp.join("ACCESS")
    try:
        http.get(st.port, "/hello.php")
        wait_lines(log, 1)
        os.rename(log, log + ".1")
        old = set(st.backend.worker_pids())
        st.backend.send_signal(signal.SIGUSR1)
        wait_for(lambda: os.path.exists(log), 5, what="access log re-created")
        check_in("NOTICE: error log file re-opened", util.read_text(st.backend.error_log), "error log")
        # workers holding the old file are replaced (gracefully, as php-fpm does);
        # every request after that lands in the new file
        wait_for(lambda: len(set(st.backend.worker_pids()) - old) == 2, 5, what="2 new workers")
        for _ in range(6):
            check_eq(http.get(st.port, "/query.php").status, 200, "after USR1")
        wait_lines(log, 6)
        check_eq(lines(log + ".1"), ["/hello.php"], "rotated file keeps the old line only")
        check_eq(set(lines(log)), {"/query.php"}, "new file")
    finally:
        st.close()


@test
def wrong_format_refused_at_start():
    b = Backend(pool={"access.log": "ACCESS", "access.format": '"%{x}s"'})
    import subprocess
    p = subprocess.run(b.command() + ["-t"], capture_output=True, text=True, timeout=20)
    out = p.stdout + p.stderr + util.read_text(b.error_log)
    check_eq(p.returncode, 78, f"exit status\n{out}")
    check_in("WARNING: embrace is not allowed for modifier %s", out, "warning")
    check_in("ERROR: [pool www] wrong format for access.format '%{x}s'", out, "error")
    b.close()


if __name__ == "__main__":
    run()
