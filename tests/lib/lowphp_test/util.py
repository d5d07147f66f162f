"""Small helpers: ports, temp dirs, waiting, process inspection."""
import os
import shutil
import signal
import socket
import tempfile
import time


def free_port():
    """A free TCP port on 127.0.0.1 (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempDir:
    """A temporary directory, removed on cleanup() / context exit.
    LOWPHP_TEST_KEEP=1 keeps it for post-mortem."""

    def __init__(self, prefix="lowphp-test-"):
        self.path = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.path, 0o755)

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def cleanup(self):
        if os.environ.get("LOWPHP_TEST_KEEP"):
            return
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Poll predicate() until it returns a truthy value; return it.
    Raises TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read_text(path):
    try:
        with open(path, "r", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def write_file(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st["state"] != "Z"


def proc_stat(pid):
    """Parsed /proc/<pid>/stat: state, ppid, pgrp, session; None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "r") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm may contain spaces/parens: split after the last ')'
    rest = data[data.rindex(")") + 2:].split()
    return {"state": rest[0], "ppid": int(rest[1]), "pgrp": int(rest[2]), "session": int(rest[3])}


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def children_of(pid):
    return [p for p in all_pids() if (proc_stat(p) or {}).get("ppid") == pid]


def descendants_of(pid):
    """All live descendants of pid (children, grandchildren...)."""
    table = {}
    for p in all_pids():
        st = proc_stat(p)
        if st:
            table.setdefault(st["ppid"], []).append(p)
    out, todo = [], [pid]
    while todo:
        cur = todo.pop()
        for c in table.get(cur, []):
            out.append(c)
            todo.append(c)
    return out


def session_members(sid):
    """Live (non-zombie) processes whose session id is sid."""
    out = []
    for p in all_pids():
        st = proc_stat(p)
        if st and st["session"] == sid and st["state"] != "Z":
            out.append(p)
    return out


def kill_quiet(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# lowphp-fpm gives each pool that does not set session.save_path its own
# directory under this base (see README, "Isolation").
SESSION_BASE = "/var/lib/php/sessions/lowphp"


class SessionDirsSnapshot:
    """What exists under SESSION_BASE now; cleanup() removes the pool
    directories made since, when empty (a test that stores sessions removes
    its own), and the base itself if it did not exist and is empty."""

    def __init__(self, base=SESSION_BASE):
        self.base = base
        self.existed = os.path.isdir(base)
        self.entries = set(os.listdir(base)) if self.existed else set()

    def cleanup(self):
        if not os.path.isdir(self.base):
            return
        for name in set(os.listdir(self.base)) - self.entries:
            try:
                os.rmdir(os.path.join(self.base, name))
            except OSError:
                pass
        if not self.existed:
            try:
                os.rmdir(self.base)
            except OSError:
                pass


_CONNECT_AS = """
import os, socket
os.setgid({gid}); os.setgroups([]); os.setuid({uid})
s = socket.socket(socket.AF_UNIX)
try:
    s.connect({path!r}); print("connected")
except PermissionError:
    print("denied")
"""


# Prefix of a command run as uid/gid 65534 (nobody / nogroup), no supplementary groups.
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def connect_as(user, path):
    """Try to connect to unix socket `path` as `user`: "connected" or "denied"."""
    import pwd
    import subprocess
    pw = pwd.getpwnam(user)
    code = _CONNECT_AS.format(uid=pw.pw_uid, gid=pw.pw_gid, path=path)
    return subprocess.run(["python3", "-c", code], capture_output=True, text=True, timeout=10).stdout.strip()


class SyslogSink:
    """The test is the syslog daemon: a datagram socket on /dev/log, or, when
    the machine runs a daemon of its own, a socket in `tmp` that wrap()ped
    commands see as /dev/log (bind-mounted in a private mount namespace), so
    the real daemon is left alone. Without it syslog(3) writes to the console."""

    def __init__(self, tmp):
        self.own_dev_log = not os.path.exists("/dev/log")
        self.path = "/dev/log" if self.own_dev_log else tmp.join("log.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.3)

    def wrap(self, cmd):
        if self.own_dev_log:
            return cmd
        return ["unshare", "-m", "--", "sh", "-c",
                f'mount --bind {self.path} /dev/log && exec "$@"', "sh"] + cmd

    def drain(self):
        """The datagrams received so far (raw bytes), waiting 0.3 s for more."""
        out = []
        while True:
            try:
                out.append(self.sock.recv(8192))
            except socket.timeout:
                return out

    def close(self):
        self.sock.close()
        if self.own_dev_log:
            os.unlink(self.path)
