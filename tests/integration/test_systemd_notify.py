"""systemd's notification protocol (Type=notify) without systemd: the test owns
the $NOTIFY_SOCKET datagram socket and checks what the master sends. READY=1
(with MAINPID) arrives only once the pools serve, STATUS= every
systemd_interval, WATCHDOG=1 every half WATCHDOG_USEC, RELOADING=1 then READY=1
again on SIGUSR2 (same pid), STOPPING=1 on SIGQUIT; an abstract socket
("@name") works too."""
import os
import signal
import socket
import time

from lowphp_test import Backend, check, check_eq, check_in, fcgi, run, test, TempDir


class Listener:
    """A SOCK_DGRAM socket playing systemd's part."""

    def __init__(self, abstract=False):
        self.tmp = TempDir(prefix="lowphp-notify-")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"lowphp-notify-test-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.address = self.tmp.join("notify.sock")
            self.sock.bind(self.address)
        self.messages = []

    def receive(self, timeout):
        """Next datagram as a dict of KEY=value lines, None after timeout."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        msg = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
        self.messages.append(msg)
        return msg

    def wait_for(self, key, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.receive(max(0.01, deadline - time.monotonic()))
            if msg is not None and key in msg:
                return msg
        raise AssertionError(f"no {key} within {timeout}s; received {self.messages}")

    def close(self):
        self.sock.close()
        self.tmp.cleanup()


def start(listener, env=None, **kw):
    """A backend started with NOTIFY_SOCKET (and `env`) in its environment."""
    saved = dict(os.environ)
    os.environ["NOTIFY_SOCKET"] = listener.address
    os.environ.update(env or {})
    try:
        be = Backend(**kw)
        be.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return be


def serves(be):
    script = os.path.join(be.dir, "ok.php")
    if not os.path.exists(script):
        with open(script, "w") as f:
            f.write("<?php echo 'ok';\n")
        os.chmod(script, 0o644)
    with fcgi.Connection(be.address) as c:
        r = c.request({"REQUEST_METHOD": "GET", "SCRIPT_FILENAME": script, "SCRIPT_NAME": "/ok.php",
                       "DOCUMENT_ROOT": be.dir})
    return r.complete and r.body == b"ok"


@test
def ready_after_pools_are_up():
    ln = Listener()
    be = None
    try:
        be = start(ln, pool={"pm": "static", "pm.max_children": "3"})
        msg = ln.wait_for("READY")
        check_eq(msg["READY"], "1", "READY value")
        check_eq(msg.get("MAINPID"), str(be.pid), "MAINPID")
        # by the time READY=1 was sent, the log said ready and workers run
        check_in("ready to handle connections", be.log(), "log when READY=1 arrived")
        check(serves(be), "the pool serves right after READY=1")
        check_eq(sum(1 for m in ln.messages if "READY" in m), 1, f"READY sent once: {ln.messages}")
        be.stop(signal.SIGQUIT)
        msg = ln.wait_for("STOPPING", 5)
        check_eq(msg["STOPPING"], "1", "STOPPING value")
    finally:
        if be:
            be.stop(check=False)
        ln.close()


@test
def ready_waits_for_every_pool():
    # two pools: READY=1 arrives once, after both are up
    ln = Listener()
    be = None
    try:
        tmp = TempDir(prefix="lowphp-notify-be-")
        other = tmp.join("shop.sock")
        extra = f"\n[shop]\nlisten = {other}\npm = static\npm.max_children = 2\n"
        be = start(ln, tmp=tmp, extra_conf=extra)
        ln.wait_for("READY")
        check(os.path.exists(other), "second pool's socket exists at READY=1")
        log = be.log()
        check(log.count("ready to handle connections") == 1, f"one ready line:\n{log}")
    finally:
        if be:
            be.stop(check=False)
        ln.close()


@test
def status_every_systemd_interval():
    ln = Listener()
    be = None
    try:
        be = start(ln, global_conf={"systemd_interval": "1"})
        ln.wait_for("READY")
        # timed between two STATUS messages: not from READY, which the test sees late when slow
        ln.wait_for("STATUS", 5)
        t0 = time.monotonic()
        msg = ln.wait_for("STATUS", 3)
        dt = time.monotonic() - t0
        check(0.5 < dt < 1.5, f"STATUS every systemd_interval (1 s): {dt:.2f} s apart")
        check(msg["STATUS"].startswith("Processes active: 0, idle: 4, Requests: "), f"STATUS: {msg}")
        check("WATCHDOG" not in msg, "no WATCHDOG=1 without WATCHDOG_USEC")
    finally:
        if be:
            be.stop(check=False)
        ln.close()


@test
def watchdog_every_half_period():
    ln = Listener()
    be = None
    try:
        be = start(ln, env={"WATCHDOG_USEC": "600000"})  # 0.6 s: a ping every 0.3 s
        ln.wait_for("READY")
        t0 = time.monotonic()
        pings = 0
        while pings < 3:
            msg = ln.wait_for("WATCHDOG", 2)
            check_eq(msg["WATCHDOG"], "1", "WATCHDOG value")
            pings += 1
        check(time.monotonic() - t0 < 1.6, "three WATCHDOG=1 within 1.6 s")
    finally:
        if be:
            be.stop(check=False)
        ln.close()


@test
def reload_sends_reloading_then_ready():
    ln = Listener()
    be = None
    try:
        be = start(ln)
        ln.wait_for("READY")
        be.send_signal(signal.SIGUSR2)
        msg = ln.wait_for("RELOADING", 5)
        check_eq(msg["RELOADING"], "1", "RELOADING value")
        check(int(msg.get("MONOTONIC_USEC", "0")) > 0, f"MONOTONIC_USEC with RELOADING=1: {msg}")
        msg = ln.wait_for("READY", 15)
        check_eq(msg.get("MAINPID"), str(be.pid), "same MAINPID after the reload")
        check(serves(be), "serves after the reload")
    finally:
        if be:
            be.stop(check=False)
        ln.close()


@test
def abstract_socket():
    ln = Listener(abstract=True)
    be = None
    try:
        be = start(ln)
        check_eq(ln.wait_for("READY")["READY"], "1", "READY over an abstract socket")
    finally:
        if be:
            be.stop(check=False)
        ln.close()


if __name__ == "__main__":
    run()
