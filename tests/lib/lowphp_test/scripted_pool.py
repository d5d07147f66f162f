"""A lowphp-fpm pool with its own document root, driven over FastCGI: the
tests of backends and connection reuse write PHP scripts into it by name,
request them as nginx would, and read the pool's JSON status page."""
import json
import os

from . import fcgi, util
from .backend import Backend
from .runner import check_eq
from .util import TempDir


class ScriptedPool:
    """`pool`: directives added to a static pool of `children` workers with
    catch_workers_output and pm.status_path = /status. `script_prefix` goes
    before every script's code (after "<?php\\n")."""

    def __init__(self, pool, children, prefix="lowphp-pool-", script_prefix="", ini=None):
        self.tmp = TempDir(prefix=prefix)
        self.root = self.tmp.join("www")
        self.script_prefix = script_prefix
        os.makedirs(self.root, exist_ok=True)
        directives = {"pm": "static", "pm.max_children": str(children), "catch_workers_output": "yes",
                      "pm.status_path": "/status"}
        directives.update(pool)
        self.b = Backend(pool=directives, tmp=self.tmp, ini=ini)

    def start(self):
        self.b.start()
        return self

    def close(self):
        self.b.stop()
        self.tmp.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def script(self, name, code):
        util.write_file(os.path.join(self.root, name), "<?php\n" + self.script_prefix + code)

    def get(self, name, query="", timeout=30.0):
        with fcgi.Connection(self.b.address, timeout=timeout) as c:
            return c.request(fcgi.php_params(os.path.join(self.root, name), document_root=self.root,
                                             query=query))

    def json(self, name, query=""):
        r = self.get(name, query)
        check_eq(r.status, 200, f"status of {name}?{query} (body {r.body[:400]!r}, stderr {r.stderr[:500]!r})")
        try:
            return json.loads(r.body)
        except ValueError:
            raise AssertionError(f"{name}?{query}: not JSON: {r.body[:600]!r}")

    def status(self):
        with fcgi.Connection(self.b.address) as c:
            p = fcgi.php_params(os.path.join(self.root, "status"), document_root=self.root, query="json")
            p.update({"SCRIPT_NAME": "/status", "REQUEST_URI": "/status?json", "DOCUMENT_URI": "/status"})
            return json.loads(c.request(p).body)

    def log(self):
        return util.read_text(self.b.error_log)
