"""$LOWPHP_BIN driven directly over FastCGI (no nginx): records, keep-conn,
GET_VALUES, multiplexing attempts, aborts, malformed input."""
from lowphp_test import Backend, TempDir, fcgi_checks, run, shut_down, site, test

CTX = {}


def make_test(check_fn, key):
    def t():
        obs = check_fn(CTX[key], CTX["root"])
        print(f"  {check_fn.__name__}: {obs}")
    t.__name__ = check_fn.__name__ + ("" if key == "unix" else "_tcp")
    return t


for fn in fcgi_checks.ALL:
    test(make_test(fn, "unix"))
for fn in (fcgi_checks.simple_request, fcgi_checks.keep_conn_multiple, fcgi_checks.malformed_records):
    test(make_test(fn, "tcp"))


def setup():
    CTX["tmp"] = TempDir()
    CTX["root"] = site.make_docroot(CTX["tmp"].join("www"))
    for k in ("unix", "tcp"):
        CTX[k] = Backend(pool={"pm.max_children": "3"}, listen=k)
        CTX[k].start()
    return None


def teardown(_):
    shut_down([CTX[k] for k in ("unix", "tcp") if k in CTX], CTX.get("tmp"))

if __name__ == "__main__":
    run(setup, teardown)
