"""The same HTTP request matrix through nginx to php-fpm8.2 and to
$LOWPHP_BIN (same pool, same php.ini, same document root); status lines,
headers, bodies and a normalised $_SERVER dump must match.
See lowphp_test/compat.py for what is normalised and why."""
import os

from lowphp_test import check, compat, http, run, test

P = None


def multipart_body():
    data1 = bytes(range(256)) * 40
    body, ctype = http.multipart(
        fields=[("title", "hello"), ("arr[]", "a"), ("arr[]", "b"), ("nested[x][y]", "z")],
        files=[("upload", "one.bin", "application/octet-stream", data1),
               ("many[]", "a.txt", "text/plain", b"first file\n"),
               ("many[]", "b.txt", "text/plain", b"second file\n"),
               ("empty", "", "application/octet-stream", b"")])
    return body, ctype


MP_BODY, MP_CTYPE = None, None

# (name, method, path, body, headers)
MATRIX = [
    ("plain get", "GET", "/hello.php", None, None),
    ("index of /", "GET", "/raw/", None, None),
    ("sapi", "GET", "/sapi.php", None, None),
    ("dump plain", "GET", "/dump.php", None, None),
    ("query string", "GET", "/dump.php?a=1&b[]=2&b[]=3&c=%20x+y&d", None, None),
    ("odd query", "GET", "/dump.php?%00=nul&a[b][c]=d&&=x&e=%ff&f=a%3Db", None, None),
    ("long query", "GET", "/dump.php?" + "&".join(f"k{i}=v{i}" for i in range(400)), None, None),
    ("path info split by nginx", "GET", "/dump.php/foo/bar?x=1", None, None),
    ("path info snippet", "GET", "/snippet/dump.php/p/q", None, None),
    ("path info raw (fix_pathinfo)", "GET", "/raw/dump.php/p/q?z=9", None, None),
    ("path info encoded", "GET", "/dump.php/a%20b/%C3%A9", None, None),
    ("trailing slash after script", "GET", "/raw/dump.php/", None, None),
    ("trailing slash dir index", "GET", "/raw/sub/", None, None),
    ("server vars raw", "GET", "/raw/server.php/x/y/", None, None),
    ("server vars default", "GET", "/server.php/x/y/", None, None),
    ("missing script", "GET", "/missing.php", None, None),
    ("missing script raw with path", "GET", "/raw/missing.php/a/b", None, None),
    ("missing script snippet (nginx 404)", "GET", "/snippet/missing.php", None, None),
    ("limit_extensions", "GET", "/txt/notes.txt", None, None),
    ("post urlencoded", "POST", "/dump.php", b"a=1&b[]=x&b[]=y&c=%C3%A9&d=a+b", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("post multipart", "POST", "/dump.php", "MULTIPART", None),
    ("post json", "POST", "/dump.php?q=1", b'{"k": [1, 2, 3]}', {"Content-Type": "application/json"}),
    ("post empty", "POST", "/dump.php", b"", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("put body", "PUT", "/dump.php", b"put body bytes", {"Content-Type": "text/plain"}),
    ("delete", "DELETE", "/dump.php?id=3", None, None),
    ("head", "HEAD", "/hello.php", None, None),
    ("cookies", "GET", "/dump.php", None, {"Cookie": "a=1; b=two%20words; c; d[x]=y; a=dup"}),
    ("set-cookie", "GET", "/cookie.php", None, {"Cookie": "session=old"}),
    ("httpoxy Proxy header", "GET", "/dump.php", None, {"Proxy": "http://evil.example:8080"}),
    ("custom headers", "GET", "/dump.php", None,
     {"X-Custom-Header": "one", "Accept-Language": "fr-CH, fr;q=0.9", "X-Empty": "", "Authorization": "Basic dXNlcjpwYXNz",
      "If-None-Match": '"abc"', "X-Forwarded-For": "10.0.0.1"}),
    ("redirect", "GET", "/redirect.php", None, None),
    ("redirect 301", "GET", "/redirect301.php", None, None),
    ("http_response_code 404", "GET", "/code.php?c=404", None, None),
    ("http_response_code 503", "GET", "/code.php?c=503", None, None),
    ("Status header", "GET", "/status.php", None, None),
    ("header_remove", "GET", "/header_remove.php", None, None),
    ("header() after flush()", "GET", "/flush_then_header.php", None, None),
    ("PHP_VALUE param", "GET", "/phpvalue/dump.php", None, None),
    # php-fpm 8.2 keeps PHP_VALUE settings in the worker for its later requests;
    # lowphp-fpm deliberately scopes them to the request that carries them (see
    # README and integration/test_http.py: php_value_param_is_request_scoped).
    ("warning", "GET", "/error.php", None, None),
    ("fatal", "GET", "/fatal.php", None, None),
    ("large response", "GET", "/big.php?n=1000000", None, None),
    ("query.php", "GET", "/query.php?x[]=1&x[]=2", None, None),
    ("post.php", "POST", "/post.php", b"k=v", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("static file (nginx)", "GET", "/static.html", None, None),
]


def make(name, method, path, body, headers):
    def t():
        b = body
        h = dict(headers or {})
        if b == "MULTIPART":
            b = MP_BODY
            h["Content-Type"] = MP_CTYPE
        ref, sub = compat.fetch_both(P, method, path, body=b, headers=h)
        d = compat.diff(ref, sub)
        check(not d, f"{method} {path}: responses differ\n{d}")
    t.__name__ = "compat " + name
    return t


for row in MATRIX:
    test(make(*row))


@test
def compat_uploads_cleaned():
    check(os.listdir(P.upload_dir) == [], f"upload tmp files left: {os.listdir(P.upload_dir)}")


@test
def compat_httpoxy_verdict():
    """Record what php-fpm does with a Proxy: request header (httpoxy)."""
    import json
    for name, _b, port in P.backends:
        r = http.get(port, "/dump.php", headers={"Host": "localhost", "Proxy": "http://evil.example:8080"})
        d = json.loads(r.body)
        print(f"  {name}: $_SERVER['HTTP_PROXY']={d['server'].get('HTTP_PROXY')!r} "
              f"getenv('HTTP_PROXY')={d['getenv']['HTTP_PROXY']!r} "
              f"getallheaders()['Proxy']={d['getallheaders'].get('Proxy')!r}")
        # php-fpm drops HTTP_PROXY from the request environment (httpoxy fix):
        # neither $_SERVER nor getenv() has it; getallheaders() still shows it
        check("HTTP_PROXY" not in d["server"], f"{name}: $_SERVER has HTTP_PROXY (httpoxy)")
        check(d["getenv"]["HTTP_PROXY"] is False, f"{name}: getenv('HTTP_PROXY') is set (httpoxy)")
        check("HTTP_PROXY" not in d["env"], f"{name}: $_ENV has HTTP_PROXY (httpoxy)")


@test
def compat_script_deleted_after_use():
    """A script removed after a worker ran it: php-fpm asks PHP's realpath cache
    whether SCRIPT_FILENAME exists (still yes, within realpath_cache_ttl) and
    then fails to open it: 404 "No input file specified.", not "File not found."."""
    path = os.path.join(P.root, "gone.php")
    with open(path, "w") as f:
        f.write("<?php echo 'here';\n")
    ref, sub = compat.fetch_both(P, "GET", "/gone.php")
    check(ref.get("body") == "here" and not compat.diff(ref, sub), f"first request:\n{ref}\n{compat.diff(ref, sub)}")
    os.unlink(path)
    ref, sub = compat.fetch_both(P, "GET", "/gone.php")
    print(f"  after unlink: php-fpm {ref['status']} {ref.get('body')!r}, lowphp-fpm {sub['status']} {sub.get('body')!r}")
    d = compat.diff(ref, sub)
    check(not d, f"responses differ after the script was removed\n{d}")


def setup():
    global P, MP_BODY, MP_CTYPE
    MP_BODY, MP_CTYPE = multipart_body()
    P = compat.Pair()
    return None


def teardown(_):
    if P is not None:
        P.close(check=True)


if __name__ == "__main__":
    run(setup, teardown)
