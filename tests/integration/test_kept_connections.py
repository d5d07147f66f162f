"""Kept-alive FastCGI connections (FCGI_KEEP_CONN) under load: a request on a
kept connection that the worker had to give up is not overtaken by requests on
connections opened after it."""
import contextlib
import os
import select
import signal
import time
import types

from lowphp_test import Backend, TempDir, check, check_eq, fcgi, run, site, test, wait_for


@contextlib.contextmanager
def static_pool(workers, pool=None):
    """A docroot and a backend with `workers` static workers (and the `pool`
    settings given). Yields `env`:
    env.tmp, env.root, env.backend, env.params(script, query) and env.conns,
    where connections go to be closed at the end."""
    tmp = TempDir()
    root = site.make_docroot(tmp.join("www"))
    settings = {"pm": "static", "pm.max_children": str(workers)}
    settings.update(pool or {})
    b = Backend(pool=settings)
    b.start()
    env = types.SimpleNamespace(tmp=tmp, root=root, backend=b, conns=[])
    env.params = lambda script, query="": fcgi.php_params(
        os.path.join(root, script), document_root=root, query=query)
    try:
        yield env
    finally:
        for c in env.conns:
            c.close()
        b.stop(check=True)
        b.close()
        tmp.cleanup()


def open_kept(env, timeout=10):
    """A connection with one answered FCGI_KEEP_CONN request: a worker keeps it."""
    kept = fcgi.Connection(env.backend.address, timeout=timeout)
    env.conns.append(kept)
    r = kept.request(env.params("hello.php"), keep_conn=True)
    check(r.complete and r.body == b"Hello, world!\n", f"first request on the kept connection: {r!r}")
    return kept


def send_sleeps(env, count, ms):
    """`count` new connections, each sending a request for sleep.php (ms)."""
    conns = []
    for _ in range(count):
        c = fcgi.Connection(env.backend.address)
        env.conns.append(c)
        c.send_request(env.params("sleep.php", f"ms={ms}"))
        conns.append(c)
    return conns


def read_until_stdout(conn):
    """Wait for the first STDOUT record: the worker is running the request."""
    while True:
        rec = conn.read_record()
        check(rec is not None, "connection closed before any output")
        if rec[0] == fcgi.STDOUT and rec[2]:
            return


def finishing_order(conns):
    """Names of `conns` in the order their END_REQUEST arrived."""
    pending, order = dict(conns), []
    while pending:
        buffered = any(c.buf for c in pending.values())
        ready, _, _ = select.select([c.sock for c in pending.values()], [], [], 0 if buffered else 10)
        check(ready or buffered, f"no answer within 10 s from {sorted(pending)}")
        for name, c in list(pending.items()):
            if c.sock not in ready and not c.buf:
                continue
            rec = c.read_record()
            check(rec is not None, f"{name}: connection closed before END_REQUEST")
            if rec[0] == fcgi.END_REQUEST:
                order.append(name)
                del pending[name]
    return order


@test
def kept_connection_not_overtaken_by_new_ones():
    with static_pool(1) as env:
        params = env.params
        kept = open_kept(env)
        # The only worker takes a long request on a new connection: it gives up
        # the idle kept connection (its thread watches it meanwhile).
        [busy] = send_sleeps(env, 1, 1500)  # long: a stalled test process still queues all in time
        read_until_stdout(busy)
        # Two more new connections queue in the backlog, then nginx-like reuse
        # of the kept connection: its request comes last but its connection is older.
        later = send_sleeps(env, 2, 300)
        time.sleep(0.1)
        kept.send_request(params("hello.php"), keep_conn=True)

        check_eq(busy.read_response().complete, True, "the long request completed")
        order = finishing_order({"kept": kept, "new 1": later[0], "new 2": later[1]})
        # One worker serves them one after the other; in turn means the kept
        # connection's request right after the long one, before both newer
        # connections (before this fix: after the first newer one, 300 ms later).
        check_eq(order, ["kept", "new 1", "new 2"], "order in which the requests finished")


@test
def waiting_kept_connections_take_turns_with_new_ones():
    """Requests that came on a busy worker's kept connections wait with that
    worker (no other is idle) and take turns with the connections waiting in
    the backlog: served all first, they left new connections waiting for a
    second under load (keep-alive bootstrap p99 1.3 s in the bench)."""
    with static_pool(1) as env:
        params = env.params
        kept = [open_kept(env), open_kept(env)]  # the only worker keeps both
        [busy] = send_sleeps(env, 1, 1500)
        read_until_stdout(busy)
        later = send_sleeps(env, 2, 100)
        for k in kept:  # as long as the others: they finish 100 ms apart
            k.send_request(params("sleep.php", "ms=100"), keep_conn=True)
        check_eq(busy.read_response().complete, True, "the long request completed")
        order = finishing_order({"kept 1": kept[0], "kept 2": kept[1],
                                 "new 1": later[0], "new 2": later[1]})
        kinds = [name.split()[0] for name in order]
        check_eq(kinds, ["kept", "new", "kept", "new"],
                 f"kinds of connection in the order served ({order})")


@test
def finish_request_releases_the_kept_connection():
    """fastcgi_finish_request() answers nginx, which puts the connection back in
    its keepalive cache and may send its next request on it at once. php-fpm
    leaves that request waiting until the script ends (2 s here); lowphp-fpm
    sets the connection aside at once, so the other worker serves it now."""
    with static_pool(2) as env:
        b, params = env.backend, env.params
        side = env.tmp.join("side-effect")
        conn = fcgi.Connection(b.address)
        env.conns.append(conn)
        r = conn.request(params("finish.php", "f=" + side), keep_conn=True)
        check(r.complete and r.body == b"finished early\n", f"finish.php: {r!r}")
        started = time.time()
        r = conn.request(params("hello.php"), keep_conn=True)
        took = time.time() - started
        check(r.complete and r.body == b"Hello, world!\n", f"next request on the connection: {r!r}")
        check(took < 1.5, f"the next request on the connection waited {took:.2f} s for the script")
        # ...and the script still ran to its end in its own worker.
        wait_for(lambda: os.path.exists(side), timeout=5, what="finish.php's side effect")
        pid = open(side).read().split()[-1]
        r = conn.request(params("hello.php"), keep_conn=True)
        check(r.complete, f"third request on the connection: {r!r}")
        check(pid.isdigit(), f"side effect: {open(side).read()!r}")


@test
def silent_connection_does_not_hold_the_worker():
    """A connection that sends nothing after connecting (a slow or stuck web
    server) must not hold the only worker: php-fpm blocks its worker reading
    it; lowphp-fpm waits 100 ms at most, then leaves it in epoll (set aside
    once the worker takes other work) and serves the next
    connection. When the silent connection finally sends its request, it is
    answered too."""
    with static_pool(1) as env:
        b, conns = env.backend, env.conns
        params = env.params("hello.php")
        silent = fcgi.Connection(b.address)
        conns.append(silent)
        time.sleep(0.3)  # the worker has accepted it by now
        other = fcgi.Connection(b.address, timeout=3)
        conns.append(other)
        started = time.time()
        r = other.request(params)
        took = time.time() - started
        check(r.complete and r.body == b"Hello, world!\n", f"request on the second connection: {r!r}")
        check(took < 2.0, f"the second connection waited {took:.2f} s behind a silent one")
        r = silent.request(params)
        check(r.complete and r.body == b"Hello, world!\n", f"the silent connection, served late: {r!r}")


@test
def kept_connections_flow_while_the_master_is_stopped():
    """The master is not on a request's path: a kept connection that a busy
    worker gave up is handed to the next free worker by the worker's own
    thread. With the master stopped (SIGSTOP), its request is still answered
    once a worker is free (it used to wait for the master)."""
    with static_pool(2) as env:
        b, params = env.backend, env.params
        kept = open_kept(env, timeout=5)
        # Both workers take a long request: the one keeping `kept` gives it up.
        busy = send_sleeps(env, 2, 600)
        for c in busy:
            read_until_stdout(c)
        b.send_signal(signal.SIGSTOP)
        try:
            started = time.time()
            r = kept.request(params("hello.php"), keep_conn=True)
            took = time.time() - started
            check(r.complete and r.body == b"Hello, world!\n", f"request on the kept connection: {r!r}")
            check(took < 2.0, f"the kept connection's request waited {took:.2f} s")
        finally:
            b.send_signal(signal.SIGCONT)
        for c in busy:
            check_eq(c.read_response().complete, True, "long request completed")


@test
def exiting_worker_leaves_idle_connections_open():
    """A worker that ends (pm.max_requests here; a reload retires workers the
    same way) gives the idle kept connections it holds to the master, which
    hands them to its successor: nginx's cached connection keeps working."""
    with static_pool(1, {"pm.max_requests": "2"}) as env:
        b, conns, params = env.backend, env.conns, env.params
        kept = open_kept(env, timeout=5)
        before = set(b.worker_pids())
        other = fcgi.Connection(b.address, timeout=5)
        conns.append(other)
        r = other.request(params("hello.php"))  # the worker's last request
        check(r.complete, f"request on the second connection: {r!r}")
        wait_for(lambda: set(b.worker_pids()) - before, timeout=5,
                 what="the worker replaced after pm.max_requests")
        r = kept.request(params("hello.php"), keep_conn=True)
        check(r.complete and r.body == b"Hello, world!\n", f"the kept connection after the exit: {r!r}")


def cpu_seconds(pid):
    """User + system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def overload_the_only_worker(env):
    """400 kept connections, more than the pool's handoff queue holds (its
    socket buffer, 212992 bytes by default, takes a few hundred descriptors in
    flight), and the only worker busy with a long request. Returns (busy, kept)."""
    kept = [open_kept(env) for _ in range(400)]
    [busy] = send_sleeps(env, 1, 1500)
    read_until_stdout(busy)
    return busy, kept


def check_all_answered(busy, kept):
    check_eq(busy.read_response().complete, True, "the long request completed")
    for i, k in enumerate(kept):
        r = k.read_response()
        check(r.complete and r.body == b"Hello, world!\n", f"kept connection {i}: {r!r}")


@test
def full_handoff_queue_leaves_the_master_idle():
    """More kept connections wait for a free worker than the pool's handoff
    queue holds: the others wait with the master, which must wait for room in
    the queue, not retry at once (it spun at 100% CPU for as long as the workers
    stayed busy, taking the CPU the workers needed). Every request is answered
    once the worker is free."""
    with static_pool(1) as env:
        busy, kept = overload_the_only_worker(env)
        master = env.backend.pid
        before = cpu_seconds(master)
        for k in kept:
            k.send_request(env.params("hello.php"), keep_conn=True)
        time.sleep(1.0)
        used = cpu_seconds(master) - before
        check(used < 0.3, f"the master used {used:.2f} s of CPU in 1 s while the queue was full")
        check_all_answered(busy, kept)


@test
def connections_waiting_for_room_survive_a_reload():
    """The same overload, then SIGUSR2: the connections waiting with the master
    for room in the queue go to the next generation of the master with the
    other parked ones, and every request is answered."""
    with static_pool(1) as env:
        b = env.backend
        busy, kept = overload_the_only_worker(env)
        for k in kept:
            k.send_request(env.params("hello.php"), keep_conn=True)
        time.sleep(0.3)
        mark = b.log_mark()
        b.send_signal(signal.SIGUSR2)
        b.wait_log(r"ready to handle connections", mark, timeout=15)
        check_all_answered(busy, kept)

if __name__ == "__main__":
    run()
