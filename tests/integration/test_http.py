"""HTTP behaviour of $LOWPHP_BIN behind a real nginx (fastcgi_pass to a unix socket)."""
import hashlib
import json
import os
import time

from lowphp_test import Stack, check, check_eq, check_in, http, run, test, wait_for

S = None  # the Stack, set in setup()


def get(path, **kw):
    return http.get(S.port, path, **kw)


def js(reply):
    check_eq(reply.status, 200, f"status (body {reply.body[:300]!r})")
    try:
        return json.loads(reply.body)
    except ValueError:
        raise AssertionError(f"not JSON: {reply.body[:500]!r}")


@test
def get_hello():
    r = get("/hello.php")
    check_eq(r.status, 200, "status")
    check_eq(r.body, b"Hello, world!\n", "body")
    check_eq(r.header("Content-Type"), "text/html; charset=UTF-8", "Content-Type")
    check(r.header("X-Powered-By", ) and r.header("X-Powered-By").startswith("PHP/8.2"), f"X-Powered-By {r.headers}")


@test
def get_with_query():
    d = js(get("/query.php?a=1&b[]=x&b[]=y&c=%C3%A9t%C3%A9+ok&empty="))
    check_eq(d["get"], {"a": "1", "b": ["x", "y"], "c": "été ok", "empty": ""}, "$_GET")
    check_eq(d["qs"], "a=1&b[]=x&b[]=y&c=%C3%A9t%C3%A9+ok&empty=", "QUERY_STRING")


@test
def php_sapi_is_fpm_fcgi():
    check_eq(get("/sapi.php").body, b"fpm-fcgi\n", "PHP_SAPI")


@test
def php_binary_is_the_running_binary():
    # php-fpm's PHP_BINARY is its own executable (argv[0], resolved)
    from lowphp_test.backend import lowphp_bin
    check_eq(get("/binary.php").body.decode().strip(), os.path.realpath(lowphp_bin()), "PHP_BINARY")


@test
def post_urlencoded():
    d = js(http.post(S.port, "/post.php", b"name=J%C3%BCrgen&list[a]=1&list[b]=2&plus=a+b"))
    check_eq(d["method"], "POST", "method")
    check_eq(d["post"], {"name": "Jürgen", "list": {"a": "1", "b": "2"}, "plus": "a b"}, "$_POST")
    check_eq(d["ctype"], "application/x-www-form-urlencoded", "CONTENT_TYPE")


@test
def php_value_param_is_request_scoped():
    # The PHP_VALUE FastCGI param applies to its own request only: later requests
    # served by the same worker see php.ini's values again (php-fpm leaks them).
    base = js(get("/dump.php"))
    d = js(get("/phpvalue/dump.php"))
    check_eq(d["ini"]["precision"] if "ini" in d else d["precision"], "7", "precision with PHP_VALUE")
    for _ in range(8):
        after = js(get("/dump.php"))
        got = after["ini"]["precision"] if "ini" in after else after["precision"]
        want = base["ini"]["precision"] if "ini" in base else base["precision"]
        check_eq(got, want, "precision on a later request without PHP_VALUE")


@test
def multipart_upload():
    data = os.urandom(300_000)
    body, ctype = http.multipart(fields=[("title", "hello"), ("n", "42")],
                                 files=[("file", "data.bin", "application/octet-stream", data)])
    d = js(http.post(S.port, "/upload.php", body, content_type=ctype))
    f = d["files"].get("file")
    check(f is not None, f"no $_FILES['file']: {d}")
    check_eq(f["error"], 0, "upload error")
    check_eq(f["size"], len(data), "size")
    check_eq(f["name"], "data.bin", "name")
    check_eq(f["type"], "application/octet-stream", "type")
    check_eq(f["md5"], hashlib.md5(data).hexdigest(), "md5 of the uploaded tmp file")
    check(f["exists"], "tmp file exists during the request")
    check_eq(d["post"], {"title": "hello", "n": "42"}, "$_POST beside the file")
    tmp_name = f["tmp_name"]
    check(tmp_name.startswith(S.backend.upload_dir + "/"), f"tmp file {tmp_name} in upload_tmp_dir {S.backend.upload_dir}")
    # PHP removes the upload tmp file at request shutdown
    try:
        wait_for(lambda: not os.path.exists(tmp_name), 5, what="upload tmp file removal")
    except TimeoutError:
        raise AssertionError(f"upload tmp file {tmp_name} still exists after the request")
    check_eq(os.listdir(S.backend.upload_dir), [], "upload_tmp_dir empty after the request")


@test
def cookies_in_and_set_cookie_out():
    r = get("/cookie.php", headers={"Cookie": "a=1; b=two%20words; c"})
    d = js(r)
    check_eq(d, {"a": "1", "b": "two words", "c": ""}, "$_COOKIE")
    cookies = r.header_all("Set-Cookie")
    check_eq(cookies, ["session=abc123; path=/; HttpOnly; SameSite=Lax", "second=two%20words"], "Set-Cookie headers")


@test
def redirect_location():
    r = get("/redirect.php")
    check_eq(r.status, 302, "status")
    check_eq(r.header("Location"), "/hello.php", "Location")
    r = get("/redirect301.php")
    check_eq(r.status, 301, "status with explicit code")
    check_eq(r.header("Location"), "/hello.php", "Location")


@test
def missing_script_404():
    # try_files-less location: the backend itself must answer the 404
    mark = len(open(S.nginx.error_log).read())
    r = get("/no-such-script.php")
    check_eq(r.status, 404, "status")
    check_eq(r.body, b"File not found.\n", "body")
    # php-fpm writes "Primary script unknown" to the FastCGI stderr stream,
    # so it shows up in nginx's error log (not in php-fpm's own error_log).
    def seen():
        return 'FastCGI sent in stderr: "Primary script unknown"' in open(S.nginx.error_log).read()[mark:]
    try:
        wait_for(seen, 3, what="nginx error log line")
    except TimeoutError:
        raise AssertionError("no 'FastCGI sent in stderr: \"Primary script unknown\"' in nginx error log:\n"
                             + open(S.nginx.error_log).read()[mark:])


@test
def missing_script_with_path_info_404():
    r = get("/raw/nothing-here.php/some/path")
    check_eq(r.status, 404, "status")
    check_eq(r.body, b"File not found.\n", "body")


@test
def limit_extensions_403():
    r = get("/txt/notes.txt")
    check_eq(r.status, 403, "status")
    check_eq(r.body, b"Access denied.\n", "body")
    check(b"must not run" not in r.body, "the .txt was executed")


@test
def large_request_body():
    data = os.urandom(8 * 1024 * 1024)
    d = js(http.post(S.port, "/input.php", data, content_type="application/octet-stream", timeout=60))
    check_eq(d["len"], len(data), "php://input length")
    check_eq(d["md5"], hashlib.md5(data).hexdigest(), "php://input md5")
    check_eq(d["content_length"], str(len(data)), "CONTENT_LENGTH")


@test
def large_response():
    n = 4 * 1024 * 1024
    r = get(f"/big.php?n={n}", timeout=60)
    check_eq(r.status, 200, "status")
    check_eq(len(r.body), n, "body length")
    block = bytes(i % 251 for i in range(251 * 256))
    expected = hashlib.md5((block * (n // len(block) + 1))[:n]).hexdigest()
    check_eq(hashlib.md5(r.body).hexdigest(), expected, "body md5")


@test
def flush_streams_first_chunk():
    raw, chunks = http.timed_get(S.port, "/flush.php", timeout=15)
    check(raw.startswith(b"HTTP/1.1 200"), f"status line: {raw[:100]!r}")
    first = next((t for t, _ in _body_progress(chunks, b"first chunk")), None)
    total = chunks[-1][0] if chunks else None
    check(first is not None, f"'first chunk' never arrived: {raw!r}")
    check(b"second chunk" in raw, f"'second chunk' missing: {raw!r}")
    check(total >= 0.9, f"script sleeps 1 s but the response ended after {total:.3f}s")
    # measured against the end, not the start: a slow start delays both
    check(total - first >= 0.5, f"first chunk arrived after {first:.3f}s (total {total:.3f}s): flush() did not stream")


def _body_progress(chunks, needle):
    seen = b""
    for t, c in chunks:
        seen += c
        if needle in seen:
            yield t, seen
            return


@test
def fastcgi_finish_request_returns_early():
    marker = S.tmp.join("finish-marker")
    t0 = time.monotonic()
    r = get(f"/finish.php?f={marker}", timeout=15)
    elapsed = time.monotonic() - t0
    check_eq(r.status, 200, "status")
    check_eq(r.body, b"finished early\n", "body")
    check(elapsed < 1.5, f"response took {elapsed:.3f}s; the script sleeps 2 s after fastcgi_finish_request()")
    check(not os.path.exists(marker), "side effect already there: the script did not keep running after the response?")
    try:
        wait_for(lambda: os.path.exists(marker) and open(marker).read().startswith("side effect"), 6,
                 what="post-finish side effect")
    except TimeoutError:
        raise AssertionError("the script's work after fastcgi_finish_request() never happened")


@test
def http_response_code_and_status_header():
    for c in (201, 404, 410, 500, 503):
        r = get(f"/code.php?c={c}")
        check_eq(r.status, c, f"http_response_code({c})")
        check_eq(r.body, b"code\n", "body")
    r = get("/status.php")
    check_eq(r.status, 418, "Status: header")
    check_eq(r.reason, "I'm a teapot", "reason phrase from the Status header")
    check(r.header("Status") is None, "Status must not be passed on as a header")


@test
def header_remove_works():
    r = get("/header_remove.php")
    check_eq(r.status, 200, "status")
    check_eq(r.header("X-Keep"), "1", "X-Keep")
    check(r.header("X-Drop") is None, f"X-Drop removed: {r.headers}")
    check(r.header("X-Powered-By") is None, f"X-Powered-By removed: {r.headers}")
    check_eq(r.header_all("X-Multi"), ["a", "b"], "repeated header")


@test
def path_info_mapping():
    d = js(get("/server.php/foo/bar?x=1"))
    check_eq(d["SCRIPT_NAME"], "/server.php", "SCRIPT_NAME")
    check_eq(d["PATH_INFO"], "/foo/bar", "PATH_INFO")
    check_eq(d["PHP_SELF"], "/server.php/foo/bar", "PHP_SELF")
    check_eq(d["SCRIPT_FILENAME"], S.root + "/server.php", "SCRIPT_FILENAME")
    check_eq(d["REQUEST_URI"], "/server.php/foo/bar?x=1", "REQUEST_URI")
    check_eq(d["QUERY_STRING"], "x=1", "QUERY_STRING")
    # Debian's snippets/fastcgi-php.conf
    d = js(get("/snippet/server.php/a/b"))
    check_eq(d["SCRIPT_NAME"], "/snippet/server.php", "snippet SCRIPT_NAME")
    check_eq(d["PATH_INFO"], "/a/b", "snippet PATH_INFO")
    # no split in nginx: the backend finds the script (cgi.fix_pathinfo=1)
    d = js(get("/raw/server.php/a/b"))
    check_eq(d["SCRIPT_FILENAME"], S.root + "/raw/server.php", "raw SCRIPT_FILENAME (fix_pathinfo)")
    check_eq(d["ORIG_SCRIPT_FILENAME"], S.root + "/raw/server.php/a/b", "raw ORIG_SCRIPT_FILENAME")


@test
def directory_index_trailing_slash():
    r = get("/raw/sub/")
    check_eq(r.status, 200, "status")
    check_eq(r.body, b"sub index\n", "body")


@test
def opcache_enabled_and_hits_grow():
    first = js(get("/opcache.php"))
    check(first["enabled"] is True, f"opcache not enabled: {first}")
    for _ in range(6):
        check_eq(get("/hello.php").status, 200, "hello")
    later = js(get("/opcache.php"))
    check(later["hits"] > first["hits"], f"opcache hits did not grow: {first} -> {later}")
    check(later["cached"] >= 2, f"cached scripts: {later}")


@test
def keepalive_http_connection_many_requests():
    import http.client as hc
    conn = hc.HTTPConnection("127.0.0.1", S.port, timeout=10)
    try:
        for i in range(20):
            conn.request("GET", f"/query.php?i={i}")
            r = conn.getresponse()
            body = r.read()
            check_eq(r.status, 200, f"request {i}")
            check_eq(json.loads(body)["get"], {"i": str(i)}, f"request {i} body")
    finally:
        conn.close()


@test
def php_warning_does_not_break_response():
    r = get("/error.php")
    check_eq(r.status, 200, "status")
    check_eq(r.body, b"after warning\n", "body")
    r = get("/fatal.php")
    check_eq(r.status, 500, "uncaught error -> 500")
    check_eq(r.body, b"before\n", "output before the fatal error")
    check_eq(get("/hello.php").status, 200, "next request")


@test
def nginx_upstream_keepalive_over_tcp():
    """upstream { keepalive } + fastcgi_keep_conn on, backend on 127.0.0.1:port."""
    import concurrent.futures as cf
    k = Stack(listen="tcp", keepalive=True, pool={"pm.max_children": "4"})
    try:
        def one(i):
            r = http.get(k.port, f"/query.php?i={i}", timeout=20)
            return r.status, json.loads(r.body)["get"] if r.status == 200 else r.body
        with cf.ThreadPoolExecutor(4) as ex:
            results = list(ex.map(one, range(40)))
        for i, (status, body) in enumerate(results):
            check_eq(status, 200, f"request {i}")
            check_eq(body, {"i": str(i)}, f"request {i} body")
        d = js(http.post(k.port, "/input.php", b"x" * 100000, content_type="application/octet-stream"))
        check_eq(d["len"], 100000, "POST over a kept connection")
        check_eq(http.get(k.port, "/no-such.php").status, 404, "404 over a kept connection")
        check_eq(http.get(k.port, "/hello.php").body, b"Hello, world!\n", "after the 404")
    finally:
        k.close(check=True)


def setup():
    global S
    S = Stack(pool={"pm.max_children": "4", "catch_workers_output": "yes"})
    return None


def teardown(_):
    if S is not None:
        S.close(check=True)


if __name__ == "__main__":
    run(setup, teardown)
