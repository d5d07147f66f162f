"""Start/stop a php-fpm compatible backend (lowphp-fpm or php-fpm8.2).

Both binaries take php-fpm's command line and log php-fpm's lines to the
[global] error_log, so the same class drives either one.
"""
import os
import re
import signal
import subprocess
import time

from . import util

PHP_FPM_BIN = "/usr/sbin/php-fpm8.2"

# php.ini used by default: explicit values for everything the tests depend
# on, so neither binary falls back to a different compiled-in default.
# Extensions (opcache, posix, ...) still come from Debian's conf.d scan dir
# (/etc/php/8.2/fpm/conf.d), which both binaries use.
DEFAULT_INI = {
    "error_reporting": "E_ALL",
    "display_errors": "Off",
    "log_errors": "On",
    "html_errors": "Off",
    "date.timezone": "UTC",
    "output_buffering": "4096",
    "post_max_size": "64M",
    "upload_max_filesize": "32M",
    "memory_limit": "256M",
    "max_execution_time": "30",
    "variables_order": "EGPCS",
    "request_order": "GP",
    "expose_php": "On",
    "cgi.fix_pathinfo": "1",
    "opcache.enable": "1",
    "opcache.enable_cli": "0",
    "opcache.validate_timestamps": "1",
    "opcache.revalidate_freq": "0",
    "opcache.jit": "off",
}


def lowphp_bin():
    """Path of the binary under test ($LOWPHP_BIN). Missing -> failure."""
    path = os.environ.get("LOWPHP_BIN")
    if not path:
        raise AssertionError("LOWPHP_BIN is not set (path of the lowphp-fpm binary under test)")
    if not os.access(path, os.X_OK):
        raise AssertionError(f"LOWPHP_BIN={path} is not an executable file")
    return path


def phpfpm_bin():
    if not os.access(PHP_FPM_BIN, os.X_OK):
        raise AssertionError(f"{PHP_FPM_BIN} missing: install php8.2-fpm (needed as the reference)")
    return PHP_FPM_BIN


def _fmt_value(v):
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


class Backend:
    """A php-fpm style master with one pool.

    pool: dict or list of (directive, value) for the pool section (listen
          and the pm defaults are added unless given).
    listen: "unix" (socket in the temp dir) or "tcp" (127.0.0.1:<free port>).
    ini: dict of php.ini settings merged over DEFAULT_INI (value None deletes),
         written to <tmp>/php.ini and passed with -c. ini=False passes -n.
    defines: list of "k=v" passed as -d.
    """

    def __init__(self, binary=None, *, name=None, pool=None, pool_name="www",
                 global_conf=None, listen="unix", ini=None, defines=(),
                 extra_args=(), extra_conf="", tmp=None, ready_timeout=10.0,
                 ini_file=None, upload_dir=None):
        self.binary = binary or lowphp_bin()
        self.name = name or os.path.basename(self.binary)
        self.own_tmp = tmp is None
        self.tmp = tmp or util.TempDir(prefix=f"lowphp-be-{self.name}-")
        self.dir = self.tmp.path
        self.pool_name = pool_name
        self.error_log = self.tmp.join("error.log")
        self.pid_file = self.tmp.join("fpm.pid")
        self.conf_file = self.tmp.join("php-fpm.conf")
        self.ini_file = self.tmp.join("php.ini")
        self.stdout_file = self.tmp.join("stdout.log")
        self.upload_dir = upload_dir or self.tmp.join("uploads")
        os.makedirs(self.upload_dir, exist_ok=True)
        self.ready_timeout = ready_timeout
        self.proc = None
        self.pid = None
        self.known_pids = set()
        if listen == "unix":
            self.socket_path = self.tmp.join("php.sock")
            self.listen = self.socket_path
            self.address = self.socket_path
            self.fastcgi_pass = "unix:" + self.socket_path
        elif listen == "tcp":
            self.socket_path = None
            port = util.free_port()
            self.listen = f"127.0.0.1:{port}"
            self.address = ("127.0.0.1", port)
            self.fastcgi_pass = self.listen
        else:
            raise ValueError(listen)

        g = [("error_log", self.error_log), ("pid", self.pid_file), ("daemonize", "no")]
        g += list((global_conf or {}).items() if isinstance(global_conf, dict) else (global_conf or []))
        p = list(pool.items() if isinstance(pool, dict) else (pool or []))
        keys = {k for k, _ in p}
        defaults = [("listen", self.listen), ("pm", "static"), ("pm.max_children", "4")]
        if "pm" in keys and dict(p)["pm"] != "static":
            defaults = [("listen", self.listen)]
        p = [(k, v) for k, v in defaults if k not in keys] + p
        self.pool_settings = dict(p)
        lines = ["[global]"] + [f"{k} = {_fmt_value(v)}" for k, v in g]
        lines += ["", f"[{pool_name}]"] + [f"{k} = {_fmt_value(v)}" for k, v in p]
        self.conf_text = "\n".join(lines) + "\n" + extra_conf
        util.write_file(self.conf_file, self.conf_text)

        self.ini_args = []
        if ini_file is not None:
            # a shared php.ini (compat: both binaries read the same file)
            self.ini_file = ini_file
            self.ini_args = ["-c", ini_file]
        elif ini is False:
            self.ini_args = ["-n"]
        else:
            settings = dict(DEFAULT_INI)
            settings["upload_tmp_dir"] = self.upload_dir
            for k, v in (ini or {}).items():
                if v is None:
                    settings.pop(k, None)
                else:
                    settings[k] = v
            text = "".join(f"{k} = {v}\n" for k, v in settings.items())
            util.write_file(self.ini_file, text)
            self.ini_args = ["-c", self.ini_file]
        self.extra_args = list(extra_args)
        for d in defines:
            self.extra_args += ["-d", d]

    # ------------------------------------------------------------------ run
    def command(self):
        return [self.binary, "-F", "-R", "-y", self.conf_file, "-p", self.dir] + self.ini_args + self.extra_args

    def start(self):
        if self.socket_path and os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        out = open(self.stdout_file, "ab")
        # New session: every process the master creates stays in session
        # <master pid> (php-fpm -F calls setsid itself, lowphp may not), which
        # lets stop() prove that nothing was left behind.
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=self.dir)
        out.close()
        self.pid = self.proc.pid
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if "ready to handle connections" in util.read_text(self.error_log):
                break
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with status {self.proc.returncode} before ready\n"
                    f"command: {' '.join(self.command())}\n{self.diagnostics()}")
            if time.monotonic() > deadline:
                self.kill_all()
                raise AssertionError(
                    f"{self.name} not ready after {self.ready_timeout}s "
                    f"(no 'ready to handle connections' in {self.error_log})\n"
                    f"command: {' '.join(self.command())}\n{self.diagnostics()}")
            time.sleep(0.05)
        # The listening socket must be there too.
        if self.socket_path:
            util.wait_for(lambda: os.path.exists(self.socket_path), 5, what=f"socket {self.socket_path}")
        self.remember_pids()
        return self

    def remember_pids(self):
        if self.pid:
            self.known_pids.update(util.descendants_of(self.pid))
            self.known_pids.update(util.session_members(self.pid))
            self.known_pids.discard(self.pid)

    def diagnostics(self):
        return (f"--- {self.error_log} ---\n{util.read_text(self.error_log)}"
                f"--- stdout/stderr ---\n{util.read_text(self.stdout_file)}"
                f"--- {self.conf_file} ---\n{self.conf_text}")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def leftovers(self):
        """Processes of this backend still alive (non-zombie)."""
        left = set(util.session_members(self.pid)) if self.pid else set()
        left |= {p for p in self.known_pids if util.pid_alive(p)
                 and util.proc_cmdline(p) and self._looks_ours(p)}
        left.discard(os.getpid())
        return sorted(left)

    def _looks_ours(self, pid):
        # a recycled pid belongs to someone else: only count our session or
        # processes whose command line names a php-fpm/lowphp process
        st = util.proc_stat(pid)
        if st and st["session"] == self.pid:
            return True
        cmd = util.proc_cmdline(pid)
        return "php-fpm" in cmd or "lowphp" in cmd or self.binary in cmd

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGQUIT, timeout=10.0, check=True):
        """Stop the master with `sig`; SIGKILL everything after `timeout`.
        With check, raise if it needed SIGKILL or left processes behind.
        Returns the exit status."""
        if self.proc is None:
            return None
        problems = []
        if self.proc.poll() is None:
            self.remember_pids()
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            rc = self.wait_exit(timeout)
            if rc is None:
                problems.append(f"master {self.pid} still running {timeout}s after {signal.Signals(sig).name}; killed")
                self.kill_all()
        rc = self.proc.returncode
        # workers may take a moment to disappear after the master is gone
        try:
            util.wait_for(lambda: not self.leftovers(), 3, what="children to exit")
        except TimeoutError:
            left = self.leftovers()
            problems.append("processes left behind: " + ", ".join(f"{p} ({util.proc_cmdline(p)})" for p in left))
            for p in left:
                util.kill_quiet(p)
        self.proc = None
        if check and problems:
            raise AssertionError("; ".join(problems) + "\n" + self.diagnostics())
        return rc

    def kill_all(self):
        if self.pid:
            for p in set(util.session_members(self.pid)) | {self.pid}:
                util.kill_quiet(p)
            for p in self.known_pids:
                if util.pid_alive(p) and self._looks_ours(p):
                    util.kill_quiet(p)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def close(self):
        """Stop (without checks) and remove the temp dir. Safe to call twice."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.stop(check=False)
        finally:
            if self.proc is not None:
                self.kill_all()
            if self.own_tmp:
                self.tmp.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ logs
    def log(self):
        return util.read_text(self.error_log)

    def log_mark(self):
        """Position in the error log; pass to log_since()."""
        return len(self.log())

    def log_since(self, mark):
        return self.log()[mark:]

    def wait_log(self, pattern, mark=0, timeout=10.0):
        """Wait until the log (after `mark`) matches regex `pattern`; return the match."""
        rx = re.compile(pattern)
        try:
            return util.wait_for(lambda: rx.search(self.log_since(mark)), timeout,
                                 what=f"log line matching {pattern!r}")
        except TimeoutError:
            raise AssertionError(f"no log line matching {pattern!r} within {timeout}s\n"
                                 f"--- log since mark ---\n{self.log_since(mark)}")

    def worker_pids(self):
        return [p for p in util.descendants_of(self.pid) if util.pid_alive(p)]


def shut_down(backends, tmp=None, check=True):
    """Stops every backend still running (with check, each must leave nothing
    behind), closes them all and removes `tmp`; raises once with every
    backend's complaint."""
    errs = []
    try:
        for b in backends:
            if b.proc is not None:
                try:
                    b.stop(check=check)
                except AssertionError as e:
                    errs.append(f"{b.name}: {e}")
    finally:
        for b in backends:
            b.close()
        if tmp is not None:
            tmp.cleanup()
    if errs:
        raise AssertionError("\n".join(errs))


def write_ini(path, upload_dir, overrides=None):
    """Write DEFAULT_INI (+ overrides, None deletes) to path."""
    settings = dict(DEFAULT_INI)
    settings["upload_tmp_dir"] = upload_dir
    for k, v in (overrides or {}).items():
        if v is None:
            settings.pop(k, None)
        else:
            settings[k] = v
    util.write_file(path, "".join(f"{k} = {v}\n" for k, v in settings.items()))
    return path


def run_cli(binary, args, timeout=20, cwd=None):
    """Run the binary with args (e.g. -t); return (status, stdout, stderr)."""
    p = subprocess.run([binary] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout, cwd=cwd)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


# php-fpm's log line prefix: "[23-Nov-2026 06:36:43] NOTICE: "
LOG_PREFIX = r"\[\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2}:\d{2}\] "
