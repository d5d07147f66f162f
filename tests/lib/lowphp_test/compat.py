"""Side-by-side runs: php-fpm8.2 (reference) and $LOWPHP_BIN (subject)
with the same pool directives, the same php.ini and the same document root,
behind one nginx (one server per backend)."""
import difflib
import json
import os

from . import http, site, util
from .backend import Backend, lowphp_bin, phpfpm_bin, write_ini
from .nginx import Nginx

# The pool both backends get (only `listen` and the log/pid paths differ).
COMPAT_POOL = {
    # one worker: both backends see the same sequence of requests on the
    # same worker, so per-worker state (PHP_VALUE leaks, opcache) compares
    "pm": "static",
    "pm.max_children": "1",
    "catch_workers_output": "yes",
    "clear_env": "yes",
    "env[POOL_ENV]": "from-pool",
    "php_admin_value[memory_limit]": "100M",
    "php_value[max_input_vars]": "321",
    "php_admin_flag[short_open_tag]": "on",
    "security.limit_extensions": ".php",
}


class Pair:
    def __init__(self, pool=None, ini=None, keepalive=False):
        self.tmp = util.TempDir(prefix="lowphp-compat-")
        self.root = site.make_docroot(self.tmp.join("www"))
        self.upload_dir = self.tmp.join("uploads")
        os.makedirs(self.upload_dir, exist_ok=True)
        self.ini_file = write_ini(self.tmp.join("php.ini"), self.upload_dir, ini)
        pool = dict(COMPAT_POOL if pool is None else pool)
        self.ref = self.sub = self.nginx = None
        try:
            ref_bin, sub_bin = phpfpm_bin(), lowphp_bin()
            self.ref = Backend(ref_bin, name="php-fpm8.2", pool=pool, ini_file=self.ini_file,
                               upload_dir=self.upload_dir)
            self.ref.start()
            self.sub = Backend(sub_bin, name="lowphp-fpm", pool=pool, ini_file=self.ini_file,
                               upload_dir=self.upload_dir)
            self.sub.start()
            self.nginx = Nginx([(self.root, self.ref.fastcgi_pass), (self.root, self.sub.fastcgi_pass)],
                               keepalive=keepalive).start()
        except BaseException:
            self.close(check=False)
            raise

    @property
    def backends(self):
        return [("php-fpm8.2", self.ref, self.nginx.ports[0]), ("lowphp-fpm", self.sub, self.nginx.ports[1])]

    def close(self, check=True):
        errs = []
        try:
            if self.nginx:
                self.nginx.close()
            for b in (self.ref, self.sub):
                if b is not None and b.proc is not None:
                    try:
                        b.stop(check=check)
                    except AssertionError as e:
                        errs.append(f"{b.name}: {e}")
        finally:
            for b in (self.ref, self.sub):
                if b is not None:
                    b.close()
            self.tmp.cleanup()
        if errs:
            raise AssertionError("\n".join(errs))


# --- normalisation --------------------------------------------------------
# Only what must differ between two servers answering the same request:
#  - Date: wall clock.
#  - REQUEST_TIME, REQUEST_TIME_FLOAT: wall clock.
#  - SERVER_PORT: each backend sits behind its own nginx server port.
#  - REMOTE_PORT: the client's ephemeral port.
# Not normalised (must be equal): Server (same nginx), X-Powered-By (same
# libphp), every path (same document root), SERVER_SOFTWARE (from nginx),
# HTTP_HOST (the test sends the same Host header to both).
SERVER_VOLATILE = {"REQUEST_TIME", "REQUEST_TIME_FLOAT", "SERVER_PORT", "REMOTE_PORT"}
HEADER_VOLATILE = {"date"}


def normalise_reply(reply):
    out = {"status": reply.status, "reason": reply.reason,
           "headers": [(k, v) for k, v in reply.headers if k.lower() not in HEADER_VOLATILE]}
    ctype = reply.header("Content-Type") or ""
    body = reply.body
    if ctype.startswith("application/json"):
        try:
            out["json"] = normalise_json(json.loads(body))
            return out
        except ValueError:
            pass
    if len(body) > 4096:
        import hashlib
        out["body_len"] = len(body)
        out["body_md5"] = hashlib.md5(body).hexdigest()
    else:
        out["body"] = body.decode(errors="replace")
    return out


def normalise_json(d):
    # $_ENV under fpm holds the FastCGI params too, so it gets the same treatment
    if isinstance(d, dict):
        d = dict(d)
        for key in ("server", "env"):
            if isinstance(d.get(key), dict):
                d[key] = {k: ("<volatile>" if k in SERVER_VOLATILE else v) for k, v in d[key].items()}
    return d


def diff(ref, sub, ref_name="php-fpm8.2", sub_name="lowphp-fpm"):
    """'' if equal, else a unified diff of the pretty JSON of both."""
    if ref == sub:
        return ""
    a = json.dumps(ref, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    b = json.dumps(sub, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    return "\n".join(difflib.unified_diff(a, b, ref_name, sub_name, lineterm="", n=3))


def fetch_both(pair, method, path, body=None, headers=None):
    """The same request to both; returns (ref_normalised, sub_normalised)."""
    hdrs = {"Host": "localhost"}
    hdrs.update(headers or {})
    res = []
    for _name, _backend, port in pair.backends:
        r = http.request(port, method, path, body=body, headers=hdrs, timeout=15)
        res.append(normalise_reply(r))
    return res[0], res[1]
