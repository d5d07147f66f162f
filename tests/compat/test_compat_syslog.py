"""error_log = syslog: php-fpm8.2 and $LOWPHP_BIN send the same messages with
the same ident, facility and priority ("[LEVEL] text", no date: syslog adds
its own). The test is the syslog daemon: it listens on /dev/log itself (or, if
the machine runs one, on a socket bind-mounted over /dev/log in a private
mount namespace, so the real daemon is left alone)."""
import os
import re
import signal
import socket
import subprocess
import time

from lowphp_test import PHP_FPM_BIN, check, check_eq, lowphp_bin, run, test, util


def receive_until(srv, lines, pattern, timeout=15.0):
    """Appends what arrives to `lines` until a new message matches `pattern`."""
    deadline = time.monotonic() + timeout
    first = len(lines)
    while not any(re.search(pattern, l) for l in lines[first:]):
        check(time.monotonic() < deadline, f"no syslog message matching {pattern!r} in {lines}")
        try:
            lines.append(normalise(srv.recv(8192)))
        except socket.timeout:
            pass


def collect(binary, tmp, sink):
    """Start, kill the worker (a child exit and restart, logged at WARNING and
    NOTICE), stop: each step waits for the message of the one before, so a
    slow start (ASan, a loaded machine) cannot change what is logged."""
    conf = os.path.join(tmp.path, "fpm.conf")
    util.write_file(conf, "[global]\nerror_log = syslog\nsyslog.ident = my-fpm\nsyslog.facility = local3\n"
                          f"[www]\nlisten = {tmp.path}/www.sock\npm = static\npm.max_children = 1\n")
    p = subprocess.Popen(sink.wrap([binary, "-y", conf, "-R", "-F"]), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    srv = sink.sock
    lines = []
    try:
        receive_until(srv, lines, r"ready to handle connections")
        workers = util.wait_for(
            lambda: [c for c in util.descendants_of(p.pid) if "pool www" in util.proc_cmdline(c)],
            what=f"{binary}: a worker")
        os.kill(workers[0], signal.SIGKILL)
        receive_until(srv, lines, r"child N started")
        os.kill(p.pid, signal.SIGQUIT)
        p.wait(10)
        while True:  # the stop's messages
            try:
                lines.append(normalise(srv.recv(8192)))
            except socket.timeout:
                return lines
    finally:
        if p.poll() is None:
            p.kill()


def normalise(datagram):
    # <PRI>Mmm dd hh:mm:ss ident[pid]: text  ->  <PRI>ident: text, numbers masked
    m = re.fullmatch(rb"<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d ([^\[]+)\[\d+\]: (.*)", datagram, re.S)
    check(m, f"syslog datagram shape: {datagram!r}")
    return f"<{m.group(1).decode()}>{m.group(2).decode()}: " + re.sub(r"\d+(\.\d+)?", "N", m.group(3).decode())


@test
def syslog_lines_match_php_fpm():
    tmp = util.TempDir(prefix="lowphp-syslog-")
    sink = util.SyslogSink(tmp)
    try:
        got = []
        for binary in (PHP_FPM_BIN, lowphp_bin()):
            got.append(collect(binary, tmp, sink))
        print("  php-fpm8.2 syslog:\n    " + "\n    ".join(got[0]))
        check(any("[NOTICE] ready to handle connections" in l for l in got[0]), "the reference logged to syslog")
        check_eq(got[1], got[0], "syslog messages (numbers masked)")
        check(all(l.startswith("<15") for l in got[1]), "facility local3 (19 * 8 = 152 + severity)")
    finally:
        sink.close()
        tmp.cleanup()


if __name__ == "__main__":
    run()
