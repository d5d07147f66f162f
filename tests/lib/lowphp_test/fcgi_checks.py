"""Raw FastCGI checks, usable against any backend (integration tests run
them against $LOWPHP_BIN, compat tests against both binaries).

Each check(backend, root) returns an observation (plain data, printed by
compat and compared where the two backends must agree) and raises
AssertionError when an invariant that both php-fpm and lowphp-fpm must
honour is broken.
"""
import hashlib
import os
import re
import socket
import time

from . import fcgi
from .runner import check, check_eq


def params(root, script, **kw):
    return fcgi.php_params(os.path.join(root, script), document_root=root, **kw)


def conn(backend, timeout=10.0):
    return fcgi.Connection(backend.address, timeout=timeout)


def _crash_lines(backend, mark):
    return [l for l in backend.log_since(mark).splitlines() if "exited on signal" in l]


def simple_request(backend, root):
    with conn(backend) as c:
        r = c.request(params(root, "hello.php"))
        check(r.complete, f"no END_REQUEST: {r!r}")
        check_eq(r.protocol_status, fcgi.REQUEST_COMPLETE, "protocolStatus")
        check_eq(r.app_status, 0, "appStatus")
        check_eq(r.body, b"Hello, world!\n", "body")
        check_eq(r.stderr, b"", "stderr")
        closed = c.closed_by_peer(3)
        check(closed, "without FCGI_KEEP_CONN the backend must close the connection after END_REQUEST")
        types = [fcgi.TYPE_NAMES[t] for t, _, _ in r.records]
        check_eq(types[-1], "END_REQUEST", "last record")
        check(all(t == "STDOUT" for t in types[:-1]), f"records before END_REQUEST: {types}")
        # The spec ends the STDOUT stream with an empty STDOUT record; php-fpm
        # 8.2 does not send it (nginx does not need it): only observed.
        terminated = len(r.records) >= 2 and r.records[-2] == (fcgi.STDOUT, 1, b"")
        return {"stdout_terminator": terminated, "status": r.status, "headers": r.split()[1], "body": r.body.decode(),
                "app_status": r.app_status, "protocol_status": r.protocol_status, "closed_after": closed}


def keep_conn_multiple(backend, root):
    out = []
    with conn(backend) as c:
        for i, (rid, script) in enumerate([(1, "hello.php"), (2, "query.php"), (1, "pid.php"), (7, "hello.php")]):
            r = c.request(params(root, script, query=f"n={i}"), req_id=rid, keep_conn=True)
            check(r.complete, f"request {i} (id {rid}) got no END_REQUEST: {r!r}")
            check_eq(r.protocol_status, fcgi.REQUEST_COMPLETE, f"request {i} protocolStatus")
            check_eq(r.status, 200, f"request {i} status")
            out.append((rid, script, r.status, len(r.body)))
        pids = set()
        for _ in range(3):
            pids.add(c.request(params(root, "pid.php"), req_id=3, keep_conn=True).body)
        check_eq(len(pids), 1, "one kept connection is served by one worker")
        check(not c.closed_by_peer(0.5), "with FCGI_KEEP_CONN the connection must stay open")
    return {"requests": [(rid, s, st) for rid, s, st, _ in out]}


def stdin_in_many_records(backend, root):
    data = os.urandom(200_000)
    with conn(backend) as c:
        c.send(fcgi.record(fcgi.BEGIN_REQUEST, 1, fcgi.begin_body()))
        c.params(1, params(root, "input.php", method="POST", content_type="application/octet-stream",
                           content_length=len(data)))
        # odd record sizes, with padding
        i = 0
        for size in [1, 7, 8, 4096, 65535, 1000, 65535]:
            c.send(fcgi.record(fcgi.STDIN, 1, data[i:i + size]))
            i += size
        c.send(fcgi.stream_records(fcgi.STDIN, 1, data[i:], chunk=30000))
        r = c.read_response(1)
        check(r.complete, f"no END_REQUEST: {r!r}")
        check_eq(r.status, 200, "status")
        import json
        d = json.loads(r.body)
        check_eq(d["len"], len(data), "php://input length")
        check_eq(d["md5"], hashlib.md5(data).hexdigest(), "php://input md5")
    return {"len": d["len"]}


def late_end_of_body(backend, root):
    """The web server's empty STDIN record (end of the body) arrives after PHP
    has read CONTENT_LENGTH bytes. A backend that closes with it unread resets
    the connection, and nginx, reading on after END_REQUEST, drops the response
    body it holds ("readv() failed (104: Connection reset by peer)"): a 200 with
    an empty body. php-fpm shuts its side down and reads until nginx closes."""
    with conn(backend) as c:
        c.send(fcgi.record(fcgi.BEGIN_REQUEST, 1, fcgi.begin_body()))
        c.params(1, params(root, "input_then_wait.php", method="POST",
                           content_type="application/octet-stream", content_length=5))
        c.send(fcgi.record(fcgi.STDIN, 1, b"hello"))
        time.sleep(0.1)                     # PHP has the body and waits 300 ms
        c.stdin(1)
        r = c.read_response(1)
        check(r.complete, f"no END_REQUEST: {r!r}")
        check_eq(r.body, b"5\n", "body")
        c.sock.settimeout(5)
        try:
            end = "eof" if c.sock.recv(4096) == b"" else "more data"
        except ConnectionResetError:
            end = "reset"
        check_eq(end, "eof", "after END_REQUEST")
    return {"end": end}


def nul_in_param_values(backend, root):
    """php-fpm hands param values to PHP as C strings: a NUL byte ends them
    (nginx refuses %00 in a path, other FastCGI clients may send one)."""
    p = params(root, "nul.php", extra={"HTTP_X_NUL": "a\x00b", "PATH_INFO": "/p\x00q"})
    with conn(backend) as c:
        r = c.request(p)
        check(r.complete, f"no END_REQUEST: {r!r}")
    seen = r.body.decode(errors="replace")
    check_eq(seen, '["a","a","\\/p","\\/nul.php\\/p"]', "values as PHP sees them")
    return {"seen": seen}


def finish_request_twice(backend, root):
    """fastcgi_finish_request() called again: on a kept connection php-fpm
    still has the fd (fcgi_close without force) and answers true each time;
    on a closed one the second call returns false."""
    out = {}
    for keep in (False, True):
        mark = os.path.join(root, f"finish-{backend.name}-{keep}.json")
        if os.path.exists(mark):
            os.unlink(mark)
        with conn(backend) as c:
            r = c.request(params(root, "finish_thrice.php", query=f"m={mark}"), keep_conn=keep)
            check_eq(r.body, b"answered", "answer")
        deadline = time.time() + 5
        while not os.path.exists(mark) and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.05)
        out["kept" if keep else "closed"] = open(mark).read() if os.path.exists(mark) else None
    check_eq(out["closed"], "[true,false,false]", "closed connection")
    check_eq(out["kept"], "[true,true,true]", "kept connection")
    return out


def request_body_file(backend, root):
    """REQUEST_BODY_FILE (nginx: client_body_in_file_only, fastcgi_pass_request_body
    off): the body is read from that file; a file that cannot be opened gives
    PHP's warning and no body."""
    path = os.path.join(root, "request-body.txt")
    with open(path, "wb") as f:
        f.write(b"a=1&b=from_file")
    out = {}
    for name, file in (("file", path), ("missing", path + ".nope")):
        p = params(root, "post_echo.php", method="POST", content_type="application/x-www-form-urlencoded",
                   content_length=15, extra={"REQUEST_BODY_FILE": file})
        with conn(backend) as c:
            r = c.request(p)
            check(r.complete, f"no END_REQUEST: {r!r}")
        out[name] = {"body": r.body.decode(), "stderr": r.stderr.decode().replace(root, "ROOT")}
    check_eq(out["file"]["body"], '{"post":{"a":"1","b":"from_file"},"input":"a=1&b=from_file"}',
             "body read from the file")
    check("REQUEST_BODY_FILE: open(" in out["missing"]["stderr"], f"warning: {out['missing']}")
    return out


def big_params(backend, root):
    """Long names/values (4-byte length encoding) and many PARAMS records.
    php-fpm parses each PARAMS record on its own, so a name-value pair must
    not be split across records (nginx never does): pairs are packed whole."""
    big = "v" * 60_000
    p = params(root, "dump.php", extra={"HTTP_X_BIG": big, "HTTP_X_SMALL": "s" * 127, "HTTP_X_EDGE": "e" * 128,
                                        "HTTP_X_" + "N" * 200: "long name"})
    with conn(backend) as c:
        c.send(fcgi.record(fcgi.BEGIN_REQUEST, 1, fcgi.begin_body()))
        for k, v in p.items():  # one record per pair
            c.send(fcgi.record(fcgi.PARAMS, 1, fcgi.encode_pairs({k: v})))
        c.send(fcgi.record(fcgi.PARAMS, 1, b""))
        c.send(fcgi.record(fcgi.STDIN, 1, b""))
        r = c.read_response(1)
        check(r.complete, f"no END_REQUEST: {r!r}")
        check_eq(r.status, 200, "status")
        import json
        server = json.loads(r.body)["server"]
        check_eq(len(server.get("HTTP_X_BIG", "")), 60_000, "60 KB param value")
        check_eq(server.get("HTTP_X_SMALL"), "s" * 127, "127-byte value")
        check_eq(server.get("HTTP_X_EDGE"), "e" * 128, "128-byte value")
        check_eq(server.get("HTTP_X_" + "N" * 200), "long name", "200-byte name")
    return {"big_len": 60_000}


def get_values(backend, root):
    """php-fpm 8.2 answers only FCGI_MPXS_CONNS=0 (requestId 0) and keeps the connection."""
    with conn(backend) as c:
        vals, rec = c.get_values(("FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"))
        check(vals is not None, "connection closed instead of a GET_VALUES_RESULT")
        rtype, rid, content, version = rec
        check_eq(rid, 0, "GET_VALUES_RESULT requestId")
        check_eq(version, 1, "record version")
        check_eq(vals.get("FCGI_MPXS_CONNS"), "0", "FCGI_MPXS_CONNS (no multiplexing)")
        for k, v in vals.items():
            check(k in ("FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"), f"unexpected key {k!r} in {vals}")
            check(re.fullmatch(r"\d+", v), f"value of {k} not a number: {v!r}")
        # the connection still serves a request afterwards
        r = c.request(params(root, "hello.php"))
        check(r.complete and r.body == b"Hello, world!\n", f"request after GET_VALUES: {r!r}")
    return {"values": vals, "raw": content.hex()}


def second_request_id_in_flight(backend, root):
    """BEGIN_REQUEST for id 2 while id 1 is still receiving its STDIN.
    php-fpm 8.2 ends id 1's body there (php://input is empty: the read that
    met the foreign record returns nothing), answers id 1 and closes the
    connection; id 2 is never served."""
    mark = backend.log_mark()
    import json
    with conn(backend, timeout=10) as c:
        c.send(fcgi.record(fcgi.BEGIN_REQUEST, 1, fcgi.begin_body(flags=fcgi.KEEP_CONN)))
        c.params(1, params(root, "input.php", method="POST", content_type="application/octet-stream",
                           content_length=10))
        c.send(fcgi.record(fcgi.STDIN, 1, b"12345"))
        time.sleep(0.2)
        try:
            c.send_request(params(root, "hello.php"), req_id=2, keep_conn=True)
            time.sleep(0.1)
            c.send(fcgi.record(fcgi.STDIN, 1, b"67890") + fcgi.record(fcgi.STDIN, 1, b""))
        except (BrokenPipeError, ConnectionResetError):
            pass
        recs, eof = [], False
        try:
            while True:
                rec = c.read_record()
                if rec is None:
                    eof = True
                    break
                recs.append(rec)
                ends = [r for r in recs if r[0] == fcgi.END_REQUEST]
                if any(r[1] == 1 for r in ends) and (any(r[1] == 2 for r in ends)):
                    break
        except (socket.timeout, TimeoutError):
            pass
    ends = {rid: content for t, rid, content, _ in recs if t == fcgi.END_REQUEST}
    out2 = b"".join(content for t, rid, content, _ in recs if t == fcgi.STDOUT and rid == 2)
    out1 = b"".join(content for t, rid, content, _ in recs if t == fcgi.STDOUT and rid == 1)
    check_eq(out2, b"", "id 2 must not be served while id 1 is in flight")
    check(2 not in ends and eof, f"id 2 answered or the connection left open: {recs}")
    check(1 in ends, f"id 1 got no END_REQUEST: {recs}")
    check_eq(ends[1][4], fcgi.REQUEST_COMPLETE, "END_REQUEST(id 1) protocolStatus")
    body = out1.partition(b"\r\n\r\n")[2]
    d = json.loads(body)
    check_eq(d["len"], 0, f"id 1 input length ({d})")
    check_eq(_crash_lines(backend, mark), [], "worker crashes")
    with conn(backend) as c2:
        r = c2.request(params(root, "hello.php"))
        check(r.complete and r.status == 200, f"backend still serves: {r!r}")
    return {"id2": "CANT_MPX_CONN" if 2 in ends else "connection closed",
            "id1_input_len": d["len"], "eof": eof}


def second_request_id_after_stdin(backend, root):
    """id 2 sent on a kept connection after id 1's STDIN ended, while its
    script still runs: answered after id 1 (php-fpm) or refused with
    CANT_MPX_CONN. Records of the two ids never interleave."""
    with conn(backend, timeout=10) as c:
        c.send_request(params(root, "sleep.php", query="ms=300"), req_id=1, keep_conn=True)
        time.sleep(0.1)
        c.send_request(params(root, "hello.php"), req_id=2, keep_conn=True)
        recs = []
        try:
            while len([r for r in recs if r[0] == fcgi.END_REQUEST]) < 2:
                rec = c.read_record()
                if rec is None:
                    break
                recs.append(rec)
        except (socket.timeout, TimeoutError):
            pass
    order = [rid for t, rid, _, _ in recs]
    ends = {rid: content for t, rid, content, _ in recs if t == fcgi.END_REQUEST}
    check(1 in ends, f"id 1 not completed: {recs}")
    out1 = b"".join(c for t, rid, c, _ in recs if t == fcgi.STDOUT and rid == 1)
    check(b"slept 300" in out1, f"id 1 output: {out1!r}")
    check(2 in ends, f"id 2 got no END_REQUEST: {recs}")
    if ends[2][4] == fcgi.REQUEST_COMPLETE:
        first2 = order.index(2)
        check(all(r == 2 for r in order[first2:]), f"records interleaved: {order}")
        out2 = b"".join(c for t, rid, c, _ in recs if t == fcgi.STDOUT and rid == 2)
        check(out2.endswith(b"Hello, world!\n"), f"id 2 output: {out2!r}")
        return {"id2": "served after id 1"}
    check_eq(ends[2][4], fcgi.CANT_MPX_CONN, "id 2 protocolStatus")
    return {"id2": "CANT_MPX_CONN"}


def abort_request(backend, root):
    """FCGI_ABORT_REQUEST while the script runs: the request still ends with
    an END_REQUEST (php-fpm ignores the abort until the script is done, then
    closes) and the backend keeps serving."""
    mark = backend.log_mark()
    with conn(backend, timeout=10) as c:
        c.send_request(params(root, "sleep.php", query="ms=800"), req_id=1, keep_conn=True)
        time.sleep(0.2)
        c.send(fcgi.record(fcgi.ABORT_REQUEST, 1))
        t0 = time.monotonic()
        r = c.read_response(1)
        took = time.monotonic() - t0
        check(r.complete, f"no END_REQUEST after ABORT_REQUEST: {r!r}")
        check_eq(r.protocol_status, fcgi.REQUEST_COMPLETE, "protocolStatus")
        # the script's last 0.6 s, not a wait for some timeout (not compared:
        # a slow moment of either backend would make it differ)
        check(took < 5, f"END_REQUEST {took:.2f} s after ABORT_REQUEST")
        closed = c.closed_by_peer(1.5)
    check_eq(_crash_lines(backend, mark), [], "worker crashes")
    with conn(backend) as c2:
        r2 = c2.request(params(root, "hello.php"))
        check(r2.complete and r2.status == 200, f"backend still serves: {r2!r}")
    return {"completed_output": b"slept" in r.stdout, "closed_after": closed}


MALFORMED = [
    # (name, bytes, half-close our side after sending)
    ("version 0 header", lambda: fcgi.record(fcgi.BEGIN_REQUEST, 1, fcgi.begin_body(), version=0), False),
    ("truncated header then close", lambda: b"\x01\x01\x00", True),
    ("huge content length then close",
     lambda: fcgi.record(fcgi.BEGIN_REQUEST, 1, fcgi.begin_body()) + fcgi.HEADER.pack(1, fcgi.PARAMS, 1, 65535, 255) + b"x" * 100, True),
    ("PARAMS before BEGIN_REQUEST", lambda: fcgi.stream_records(fcgi.PARAMS, 1, fcgi.encode_pairs({"A": "b"})), False),
    ("STDIN before BEGIN_REQUEST", lambda: fcgi.record(fcgi.STDIN, 1, b"abc"), False),
    ("BEGIN_REQUEST body too short", lambda: fcgi.record(fcgi.BEGIN_REQUEST, 1, b"\x00\x01"), False),
    ("name length beyond the record",
     lambda: fcgi.record(fcgi.BEGIN_REQUEST, 1, fcgi.begin_body()) + fcgi.record(fcgi.PARAMS, 1, b"\x7f\x7fabc") + fcgi.record(fcgi.PARAMS, 1, b""), False),
    ("4-byte length overflow",
     lambda: fcgi.record(fcgi.BEGIN_REQUEST, 1, fcgi.begin_body()) + fcgi.record(fcgi.PARAMS, 1, b"\xff\xff\xff\xff\x01ab") + fcgi.record(fcgi.PARAMS, 1, b""), False),
]


def malformed_records(backend, root):
    """Each malformed stream: that connection is closed (no response), no
    worker crashes, and a well-formed connection is served right after."""
    mark = backend.log_mark()
    seen = {}
    for name, make, half_close in MALFORMED:
        with conn(backend, timeout=5) as c:
            try:
                c.send(make())
                if half_close:
                    c.sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass
            recs, closed = [], False
            try:
                while True:
                    rec = c.read_record()
                    if rec is None:
                        closed = True
                        break
                    recs.append(rec)
            except (socket.timeout, TimeoutError):
                pass
            except AssertionError:  # truncated record from server, then EOF
                closed = c.eof
            check(closed, f"{name}: connection not closed within 5 s (records {recs})")
            stdout = [r for r in recs if r[0] == fcgi.STDOUT and r[2]]
            check_eq(stdout, [], f"{name}: a malformed request must not run a script")
            seen[name] = [fcgi.TYPE_NAMES.get(r[0], r[0]) for r in recs] or "closed"
        with conn(backend) as ok:
            r = ok.request(params(root, "hello.php"))
            check(r.complete and r.body == b"Hello, world!\n", f"after {name}: backend does not serve: {r!r}")
    check_eq(_crash_lines(backend, mark), [], "worker crashes")
    return seen


def client_gone_mid_response(backend, root):
    """The client sends a request for a 4 MB response and closes at once:
    the worker must survive (no SIGPIPE death) and serve the next request."""
    mark = backend.log_mark()
    for _ in range(3):
        c = conn(backend)
        c.send_request(params(root, "big.php", query="n=4194304"))
        c.sock.recv(100)
        c.close()
    time.sleep(0.3)
    for _ in range(4):
        with conn(backend) as c:
            r = c.request(params(root, "hello.php"))
            check(r.complete and r.status == 200, f"backend after clients vanished: {r!r}")
    check_eq(_crash_lines(backend, mark), [], "worker crashes (SIGPIPE?)")
    return {"ok": True}


def output_streams_like_php_fpm(backend, root):
    """php-fpm's 8 KB FastCGI buffer: of 9000 bytes echoed before a pause, the
    first 8 KB reach the client at once, in a record of 8184 bytes; the rest
    comes with the end of the script."""
    with conn(backend) as c:
        c.send_request(params(root, "stream.php"))
        start = time.time()
        seen = []
        while True:
            rec = c.read_record()
            check(rec is not None, f"connection closed before END_REQUEST: {seen}")
            rtype, _rid, content, _version = rec
            seen.append((fcgi.TYPE_NAMES[rtype], len(content), "early" if time.time() - start < 0.4 else "late"))
            if rtype == fcgi.END_REQUEST:
                break
    check_eq(seen[0][2], "early", "the first 8 KB arrive before the pause")
    return {"records": seen}


def flush_finds_the_client_gone(backend, root):
    """A long-poll loop (a space and flush() every 100 ms, output_buffering
    holding the spaces) stops soon after the client goes: php-fpm's flush
    writes even 0 bytes, and that write fails on a closed socket."""
    mark = os.path.join(root, f"poll-{backend.name}.txt")
    if os.path.exists(mark):
        os.unlink(mark)
    c = conn(backend)
    c.send_request(params(root, "long_poll.php", query=f"m={mark}"))
    time.sleep(0.35)
    c.close()
    deadline = time.time() + 6
    while time.time() < deadline and not (os.path.exists(mark) and "shutdown" in open(mark).read()):
        time.sleep(0.05)
    steps = open(mark).read().split() if os.path.exists(mark) else []
    check(steps and steps[-1] == "shutdown:1", f"the script saw no abort: {steps}")
    check(len(steps) < 15, f"the script ran on after the client left: {steps}")
    return {"aborted": steps[-1], "stopped early": len(steps) < 15}


def _exit_lines(backend, mark, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        lines = [l for l in backend.log_since(mark).splitlines() if "exited" in l]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def startup_failure(backend, root):
    """PHP_VALUE memory_limit below what the request already uses: PHP warns
    (and only PHP: the backend adds no "unable to set" of its own) and the
    request runs. Then a request whose startup fails (2M memory_limit, 3 MB
    POST body read inside php_request_startup): the worker ends with exit code
    70 (php-fpm's FPM_EXIT_SOFTWARE), the master logs that as a warning and
    starts another, and the backend serves the next request."""
    def post(limit, size):
        body = b"a=" + b"x" * size
        p = params(root, "hello.php", method="POST", content_type="application/x-www-form-urlencoded",
                   content_length=len(body), extra={"PHP_VALUE": "memory_limit=" + limit})
        with conn(backend, timeout=10) as c:
            return c.request(p, body=body), c.closed_by_peer(3)

    refused, _ = post("1M", 10)
    check(refused.body == b"Hello, world!\n", f"request with a refused memory_limit: {refused!r}")
    mark = backend.log_mark()
    failed, closed = post("2M", 3 << 20)
    exits = _exit_lines(backend, mark)
    check(len(exits) == 1, f"one worker exit expected, log has {exits}")
    check(re.search(r"WARNING: \[pool [^]]+\] child \d+ exited with code 70 ", exits[0]),
          f"exit line: {exits[0]!r}")
    for _ in range(4):
        with conn(backend) as c2:
            r2 = c2.request(params(root, "hello.php"))
            check(r2.complete and r2.body == b"Hello, world!\n", f"backend after the failed startup: {r2!r}")
    return {"refused_stderr": refused.stderr.decode(errors="replace"),
            "failed_complete": failed.complete, "failed_app_status": failed.app_status,
            "failed_stdout": failed.stdout.decode(errors="replace"),
            "failed_stderr": failed.stderr.decode(errors="replace"), "closed": closed}


def _every_worker_serves_one(backend, root):
    """Keeps one sleeping request on each worker of a static pool at the same
    time, until one round is answered by as many pids as the pool has workers:
    then every worker has served a request."""
    n = int(backend.pool_settings.get("pm.max_children", "1"))
    for _ in range(10):
        conns = [conn(backend) for _ in range(n)]
        try:
            for c in conns:
                c.send_request(params(root, "sleep.php", query="ms=300"))
            pids = {c.read_response().body.split()[1] for c in conns}
        finally:
            for c in conns:
                c.close()
        if len(pids) == n:
            return
    raise AssertionError(f"{n} concurrent requests never reached {n} different workers")


def php_value_extension(backend, root):
    """PHP_VALUE "extension=..." goes to PHP's dl() as in php-fpm: a module
    already loaded and a missing one each give PHP's own warning (no "unable to
    set 'extension'" from the backend) and the script runs.

    PHP names a warning raised before a request starts "PHP Request Shutdown:"
    in a worker that has served a request (its executor still flags the last
    shutdown) and "Unknown:" in a fresh one, php-fpm's workers as ours; the
    previous check replaces a worker, so every worker serves one first and the
    origin compares exactly."""
    _every_worker_serves_one(backend, root)
    seen = {}
    for value in ("extension=calendar", "extension=lowphp_no_such_module"):
        with conn(backend) as c:
            r = c.request(params(root, "hello.php", extra={"PHP_VALUE": value}))
        check(r.complete and r.body == b"Hello, world!\n", f"PHP_VALUE {value}: {r!r}")
        check(b"unable to set" not in r.stderr, f"PHP_VALUE {value}: stderr {r.stderr!r}")
        seen[value] = r.stderr.decode(errors="replace")
    return seen


ALL = [simple_request, keep_conn_multiple, stdin_in_many_records, late_end_of_body, big_params, get_values,
       nul_in_param_values, finish_request_twice, request_body_file, output_streams_like_php_fpm,
       flush_finds_the_client_gone,
       second_request_id_in_flight, second_request_id_after_stdin, abort_request,
       malformed_records, client_gone_mid_response, startup_failure, php_value_extension]
