"""Run a private nginx on 127.0.0.1:<free port> in front of a backend."""
import os
import signal
import socket
import subprocess
import time

from . import util

NGINX_BIN = "/usr/sbin/nginx"
FASTCGI_PARAMS = "/etc/nginx/fastcgi_params"


def location_blocks(fastcgi_pass, keepalive=False, php_value=None):
    """The server's locations, all passing to `fastcgi_pass`.

    /snippet/...  Debian's snippets/fastcgi-php.conf verbatim (split_path_info +
                  try_files: nginx itself answers 404 for a missing script)
    /raw/...      no split and no try_files: SCRIPT_FILENAME is the whole
                  $uri, so the backend does the PATH_INFO mapping itself
                  (cgi.fix_pathinfo) and answers 404 for missing scripts
    /txt/*.txt    .txt routed to php (security.limit_extensions -> 403)
    /phpvalue/    like the default location plus fastcgi_param PHP_VALUE
    /status /ping pm.status_path and ping.path, as an operator routes them
    *.php(/...)   default: split_path_info without try_files
    """
    keep = "fastcgi_keep_conn on;" if keepalive else ""
    pv = php_value if php_value is not None else "precision=7\nserialize_precision=5"
    return f"""
        location ^~ /snippet/ {{
            location ~ [^/]\\.php(/|$) {{
                # --- Debian /etc/nginx/snippets/fastcgi-php.conf ---
                fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
                try_files $fastcgi_script_name =404;
                set $path_info $fastcgi_path_info;
                fastcgi_param PATH_INFO $path_info;
                fastcgi_index index.php;
                include /etc/nginx/fastcgi.conf;
                # ---
                {keep}
                fastcgi_param TEST_PARAM "from-nginx";
                fastcgi_pass {fastcgi_pass};
            }}
        }}
        location ^~ /raw/ {{
            fastcgi_index index.php;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            {keep}
                fastcgi_param TEST_PARAM "from-nginx";
            fastcgi_pass {fastcgi_pass};
        }}
        location ~ ^/txt/.*\\.txt$ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            {keep}
                fastcgi_param TEST_PARAM "from-nginx";
            fastcgi_pass {fastcgi_pass};
        }}
        location ^~ /phpvalue/ {{
            fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
            set $path_info $fastcgi_path_info;
            fastcgi_param PATH_INFO $path_info;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_param PHP_VALUE "{pv}";
            {keep}
                fastcgi_param TEST_PARAM "from-nginx";
            fastcgi_pass {fastcgi_pass};
        }}
        location ~ ^/(status|ping)$ {{
            # pm.status_path / ping.path as operators route them
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            {keep}
            fastcgi_pass {fastcgi_pass};
        }}
        location ~ [^/]\\.php(/|$) {{
            fastcgi_split_path_info ^(.+?\\.php)(/.*)$;
            set $path_info $fastcgi_path_info;
            fastcgi_param PATH_INFO $path_info;
            fastcgi_index index.php;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            {keep}
                fastcgi_param TEST_PARAM "from-nginx";
            fastcgi_pass {fastcgi_pass};
        }}
"""


class Nginx:
    """nginx with one server per backend.

    backends: list of (docroot, fastcgi_pass) - one server (own port) each.
    keepalive: pass through an upstream with `keepalive` + fastcgi_keep_conn on.
    Ports are in self.ports, in the same order.
    """

    def __init__(self, backends, keepalive=False, php_value=None, tmp=None, start_timeout=10.0):
        if not os.access(NGINX_BIN, os.X_OK):
            raise AssertionError(f"{NGINX_BIN} missing: install nginx (needed by the tests)")
        self.own_tmp = tmp is None
        self.tmp = tmp or util.TempDir(prefix="lowphp-nginx-")
        self.dir = self.tmp.path
        for sub in ("logs", "client_body", "fastcgi", "proxy", "uwsgi", "scgi"):
            os.makedirs(self.tmp.join(sub), exist_ok=True)
        self.error_log = self.tmp.join("logs", "error.log")
        self.access_log = self.tmp.join("logs", "access.log")
        self.pid_file = self.tmp.join("nginx.pid")
        self.conf_file = self.tmp.join("nginx.conf")
        self.start_timeout = start_timeout
        self.ports = []
        servers, upstreams = [], []
        for i, (docroot, fastcgi_pass) in enumerate(backends):
            port = util.free_port()
            self.ports.append(port)
            target = fastcgi_pass
            if keepalive:
                upstreams.append(f"    upstream php{i} {{ server {fastcgi_pass}; keepalive 8; }}\n")
                target = f"php{i}"
            servers.append(f"""
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {docroot};
        index index.php index.html;
{location_blocks(target, keepalive, php_value)}
    }}
""")
        user = "user root root;\n" if os.geteuid() == 0 else ""
        self.conf_text = f"""{user}daemon off;
master_process on;
worker_processes 1;
pid {self.pid_file};
error_log {self.error_log} info;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {self.access_log};
    client_body_temp_path {self.tmp.join('client_body')};
    fastcgi_temp_path {self.tmp.join('fastcgi')};
    proxy_temp_path {self.tmp.join('proxy')};
    uwsgi_temp_path {self.tmp.join('uwsgi')};
    scgi_temp_path {self.tmp.join('scgi')};
    client_max_body_size 64m;
    fastcgi_read_timeout 30s;
    keepalive_timeout 10s;
    sendfile off;
{''.join(upstreams)}{''.join(servers)}
}}
"""
        util.write_file(self.conf_file, self.conf_text)
        self.proc = None

    @property
    def port(self):
        return self.ports[0]

    def url(self, path, i=0):
        return f"http://127.0.0.1:{self.ports[i]}{path}"

    def start(self):
        out = open(self.tmp.join("logs", "stdout.log"), "ab")
        self.proc = subprocess.Popen(
            [NGINX_BIN, "-p", self.dir, "-c", self.conf_file, "-e", self.error_log],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        deadline = time.monotonic() + self.start_timeout
        pending = list(self.ports)
        while pending:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited ({self.proc.returncode}) at start\n{self.diagnostics()}")
            try:
                with socket.create_connection(("127.0.0.1", pending[0]), timeout=0.5):
                    pending.pop(0)
                    continue
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"nginx did not listen on {pending} within {self.start_timeout}s\n{self.diagnostics()}")
            time.sleep(0.05)
        return self

    def diagnostics(self):
        return (f"--- nginx error log ---\n{util.read_text(self.error_log)}"
                f"--- nginx stdout ---\n{util.read_text(self.tmp.join('logs', 'stdout.log'))}"
                f"--- {self.conf_file} ---\n{self.conf_text}")

    def stop(self, timeout=5.0):
        if self.proc is None:
            return
        pid = self.proc.pid
        if self.proc.poll() is None:
            util.kill_quiet(pid, signal.SIGQUIT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                util.kill_quiet(pid, signal.SIGKILL)
        for p in util.session_members(pid):
            util.kill_quiet(p, signal.SIGKILL)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def close(self):
        self.stop()
        if self.own_tmp:
            self.tmp.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
