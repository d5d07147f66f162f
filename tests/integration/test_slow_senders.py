"""Slow senders hold no worker: a connection whose request (params, and its
body up to 16 KB) has not all arrived waits in the worker's event thread, not
in a worker; it is served once whole. php-fpm gives each such connection a
worker until the client is done (eight of them take a two-worker pool)."""
import os
import threading
import time

from lowphp_test import Backend, check, check_eq, fcgi, run, test, util

SCRIPT = "<?php echo $_SERVER['REQUEST_METHOD'], ' ', strlen(file_get_contents('php://input')), ' ', $_SERVER['X_TAG'] ?? '-';"


def request_bytes(path, tag, body=b""):
    params = [("REQUEST_METHOD", "POST" if body else "GET"), ("SCRIPT_FILENAME", path),
              ("SCRIPT_NAME", "/s.php"), ("REQUEST_URI", "/s.php"), ("QUERY_STRING", ""),
              ("CONTENT_LENGTH", str(len(body)) if body else ""), ("X_TAG", tag)]
    return (fcgi.record(fcgi.BEGIN_REQUEST, 1, fcgi.begin_body()) +
            fcgi.stream_records(fcgi.PARAMS, 1, fcgi.encode_pairs(params)) +
            fcgi.stream_records(fcgi.STDIN, 1, body))


class SlowSender(threading.Thread):
    """Sends `head` at once, then the rest of its request a chunk per `pace`
    seconds; records the answer."""

    def __init__(self, address, data, head, chunk, pace):
        super().__init__(daemon=True)
        self.conn = fcgi.Connection(address, timeout=120)
        self.data, self.head, self.chunk, self.pace = data, head, chunk, pace
        self.answer = None

    def run(self):
        try:
            self.conn.send(self.data[:self.head])
            for i in range(self.head, len(self.data), self.chunk):
                time.sleep(self.pace)
                self.conn.send(self.data[i:i + self.chunk])
            self.answer = self.conn.read_response()
        except OSError as e:
            self.answer = e
        finally:
            self.conn.close()


def good_request(b, path, tag):
    t0 = time.monotonic()
    with fcgi.Connection(b.address, timeout=10) as c:
        c.send(request_bytes(path, tag))
        r = c.read_response()
    return r, time.monotonic() - t0


@test(timeout=120)
def eight_slow_senders_leave_a_two_worker_pool_serving():
    b = Backend(pool={"pm.max_children": "2"})
    path = b.tmp.join("s.php")
    util.write_file(path, SCRIPT)
    b.start()
    try:
        slow = []
        for i in range(8):
            # params one byte a second (the first 20 bytes at once), or a
            # 10 KB body in 1 KB pieces a second
            data = request_bytes(path, f"slow{i}", b"x" * 10240 if i % 2 else b"")
            head = 20 if i % 2 == 0 else len(data) - 10240 - 16
            chunk = 1 if i % 2 == 0 else 1024
            slow.append(SlowSender(b.address, data, head, chunk, 1.0))
        for s in slow:
            s.start()
        time.sleep(1.5)  # every slow connection has begun its request
        times = []
        for i in range(5):
            r, took = good_request(b, path, f"good{i}")
            check_eq(r.stdout.split(b"\r\n\r\n")[-1], f"GET 0 good{i}".encode(), f"good request {i}")
            times.append(took)
        print(f"  good requests answered in {', '.join(f'{t:.3f}' for t in times)} s", flush=True)
        check(all(t < 3 for t in times), f"5 of 5 within 3 s: {times}")
        # the slow ones are served too, once whole (the body senders finish in ~11 s)
        for i in (1, 3, 5, 7):
            slow[i].join(timeout=30)
            got = slow[i].answer
            check(isinstance(got, fcgi.Response) and
                  got.stdout.split(b"\r\n\r\n")[-1] == f"POST 10240 slow{i}".encode(),
                  f"slow body sender {i} answered: {got!r}")
        for i in (0, 2, 4, 6):
            slow[i].conn.close()  # a client that gives up: nothing is left behind
        check(b.running(), "master alive")
    finally:
        b.close()


@test(timeout=60)
def a_slow_request_is_answered_once_whole():
    """Params at a byte per 50 ms: the answer is the script's, as for any request."""
    b = Backend(pool={"pm.max_children": "1"})
    path = b.tmp.join("s.php")
    util.write_file(path, SCRIPT)
    b.start()
    try:
        data = request_bytes(path, "patient")
        s = SlowSender(b.address, data, 1, 7, 0.05)
        s.start()
        s.join(timeout=40)
        check(isinstance(s.answer, fcgi.Response) and s.answer.app_status == 0, f"answered: {s.answer!r}")
        check_eq(s.answer.stdout.split(b"\r\n\r\n")[-1], b"GET 0 patient", "body")
        r, _ = good_request(b, path, "after")
        check_eq(r.stdout.split(b"\r\n\r\n")[-1], b"GET 0 after", "the worker serves on")
    finally:
        b.close()


if __name__ == "__main__":
    run()
