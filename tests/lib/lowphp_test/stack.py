"""nginx + one backend + the test site, started and stopped together."""
from . import site, util
from .backend import Backend
from .nginx import Nginx


class Stack:
    def __init__(self, binary=None, *, pool=None, ini=None, listen="unix", keepalive=False,
                 php_value=None, **backend_kw):
        self.tmp = util.TempDir(prefix="lowphp-stack-")
        self.root = site.make_docroot(self.tmp.join("www"))
        self.backend = None
        self.nginx = None
        try:
            self.backend = Backend(binary, pool=pool, ini=ini, listen=listen, **backend_kw)
            self.backend.start()
            self.nginx = Nginx([(self.root, self.backend.fastcgi_pass)], keepalive=keepalive,
                               php_value=php_value).start()
        except BaseException:
            self.close()
            raise

    @property
    def port(self):
        return self.nginx.port

    def close(self, check=True):
        """Stop nginx and the backend; with check, raise if the backend
        needed SIGKILL or left processes behind."""
        err = None
        try:
            if self.nginx:
                self.nginx.close()
            if self.backend and self.backend.proc is not None:
                try:
                    self.backend.stop(check=check)
                except AssertionError as e:
                    err = e
        finally:
            if self.backend:
                self.backend.close()
            self.tmp.cleanup()
        if err:
            raise err
