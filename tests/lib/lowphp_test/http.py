"""HTTP helpers over http.client (stdlib only), with timeouts everywhere."""
import http.client
import os
import socket
import time
import uuid


class Reply:
    def __init__(self, status, reason, headers, body, version="HTTP/1.1"):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in arrival order
        self.body = body
        self.version = version

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def text(self):
        return self.body.decode(errors="replace")

    def __repr__(self):
        return f"<Reply {self.status} {self.reason} headers={self.headers} body={self.body[:300]!r}>"


def request(port, method, path, body=None, headers=None, timeout=15.0, host="127.0.0.1"):
    """One request on a fresh connection; returns Reply."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        hdrs = {"Connection": "close"}
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Reply(r.status, r.reason, list(r.getheaders()), data,
                     "HTTP/1.1" if r.version == 11 else "HTTP/1.0")
    finally:
        conn.close()


def get(port, path, **kw):
    return request(port, "GET", path, **kw)


def post(port, path, body, content_type="application/x-www-form-urlencoded", headers=None, **kw):
    h = {"Content-Type": content_type}
    h.update(headers or {})
    return request(port, "POST", path, body=body, headers=h, **kw)


def multipart(fields=(), files=()):
    """Encode multipart/form-data. fields: [(name, value)];
    files: [(field, filename, content_type, bytes)]. Returns (body, content_type)."""
    boundary = "----lowphpboundary" + uuid.uuid4().hex
    out = bytearray()
    for name, value in fields:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").encode()
        out += (value.encode() if isinstance(value, str) else value) + b"\r\n"
    for field, filename, ctype, data in files:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                f"filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n").encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def timed_get(port, path, timeout=30.0):
    """GET over a raw socket, recording when bytes arrive.
    Returns (raw_response_bytes, [(seconds_since_send, chunk)])."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        t0 = time.monotonic()
        chunks, data = [], b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append((time.monotonic() - t0, c))
            data += c
        return data, chunks
    finally:
        s.close()


def decode_chunked(body):
    out, i = b"", 0
    while True:
        j = body.index(b"\r\n", i)
        n = int(body[i:j].split(b";")[0], 16)
        if n == 0:
            return out
        out += body[j + 2:j + 2 + n]
        i = j + 2 + n + 2


def random_bytes(n):
    return os.urandom(n)
