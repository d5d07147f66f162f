"""A raw FastCGI client (FastCGI 1.0 spec), written for these tests.

It can speak the protocol correctly (requests, keep-conn, GET_VALUES) and
incorrectly (interleaved request ids, aborts, malformed records).
"""
import socket
import struct

VERSION_1 = 1
BEGIN_REQUEST = 1
ABORT_REQUEST = 2
END_REQUEST = 3
PARAMS = 4
STDIN = 5
STDOUT = 6
STDERR = 7
DATA = 8
GET_VALUES = 9
GET_VALUES_RESULT = 10
UNKNOWN_TYPE = 11

RESPONDER = 1
AUTHORIZER = 2
FILTER = 3
KEEP_CONN = 1

REQUEST_COMPLETE = 0
CANT_MPX_CONN = 1
OVERLOADED = 2
UNKNOWN_ROLE = 3

TYPE_NAMES = {1: "BEGIN_REQUEST", 2: "ABORT_REQUEST", 3: "END_REQUEST", 4: "PARAMS", 5: "STDIN",
              6: "STDOUT", 7: "STDERR", 8: "DATA", 9: "GET_VALUES", 10: "GET_VALUES_RESULT",
              11: "UNKNOWN_TYPE"}

HEADER = struct.Struct(">BBHHBx")


def record(rtype, req_id, content=b"", padding=None, version=VERSION_1):
    """One record; padding defaults to aligning to 8 bytes like php-fpm."""
    if padding is None:
        padding = (-len(content)) % 8
    return HEADER.pack(version, rtype, req_id, len(content), padding) + content + b"\0" * padding


def stream_records(rtype, req_id, data, chunk=65535):
    """data split into records of at most `chunk` bytes, then the empty record."""
    out = bytearray()
    for i in range(0, len(data), chunk):
        out += record(rtype, req_id, data[i:i + chunk])
    out += record(rtype, req_id, b"")
    return bytes(out)


def _len_bytes(n):
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def encode_pairs(pairs):
    out = bytearray()
    items = pairs.items() if isinstance(pairs, dict) else pairs
    for k, v in items:
        k = k.encode() if isinstance(k, str) else k
        v = v.encode() if isinstance(v, str) else v
        out += _len_bytes(len(k)) + _len_bytes(len(v)) + k + v
    return bytes(out)


def decode_pairs(data):
    out, i = [], 0

    def length():
        nonlocal i
        if data[i] & 0x80:
            n = struct.unpack(">I", data[i:i + 4])[0] & 0x7FFFFFFF
            i += 4
        else:
            n = data[i]
            i += 1
        return n
    while i < len(data):
        kl = length()
        vl = length()
        out.append((data[i:i + kl].decode(errors="replace"), data[i + kl:i + kl + vl].decode(errors="replace")))
        i += kl + vl
    return out


def begin_body(role=RESPONDER, flags=0):
    return struct.pack(">HB5x", role, flags)


class Response:
    def __init__(self):
        self.stdout = b""
        self.stderr = b""
        self.app_status = None
        self.protocol_status = None
        self.records = []  # (type, req_id, content) in arrival order

    @property
    def complete(self):
        return self.protocol_status is not None

    def split(self):
        """(status int, [(name, value)], body bytes) from the CGI response."""
        head, sep, body = self.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, sep, body = self.stdout.partition(b"\n\n")
        headers, status = [], 200
        for line in head.decode(errors="replace").splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                headers.append((k.strip(), v.strip()))
                if k.strip().lower() == "status":
                    status = int(v.strip().split()[0])
        return status, headers, body

    @property
    def status(self):
        return self.split()[0]

    @property
    def body(self):
        return self.split()[2]

    def header(self, name):
        for k, v in self.split()[1]:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return (f"<Response app={self.app_status} proto={self.protocol_status} "
                f"stdout={self.stdout[:200]!r} stderr={self.stderr[:200]!r}>")


class Connection:
    """One connection to a FastCGI server (unix path or (host, port))."""

    def __init__(self, address, timeout=10.0):
        if isinstance(address, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
            self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n):
        while len(self.buf) < n and not self.eof:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
                break
            self.buf += chunk
        return len(self.buf) >= n

    def read_record(self):
        """(type, req_id, content, version) or None at EOF. socket.timeout propagates."""
        if not self._fill(HEADER.size):
            if self.buf:
                raise AssertionError(f"truncated record header from server: {self.buf!r}")
            return None
        version, rtype, req_id, clen, plen = HEADER.unpack(self.buf[:HEADER.size])
        total = HEADER.size + clen + plen
        if not self._fill(total):
            raise AssertionError(f"truncated record from server (type {rtype}, want {total} bytes, have {len(self.buf)})")
        content = self.buf[HEADER.size:HEADER.size + clen]
        self.buf = self.buf[total:]
        return rtype, req_id, content, version

    def begin(self, req_id=1, keep_conn=False, role=RESPONDER):
        self.send(record(BEGIN_REQUEST, req_id, begin_body(role, KEEP_CONN if keep_conn else 0)))

    def params(self, req_id, params):
        self.send(stream_records(PARAMS, req_id, encode_pairs(params)))

    def stdin(self, req_id, data=b""):
        self.send(stream_records(STDIN, req_id, data))

    def send_request(self, params, body=b"", req_id=1, keep_conn=False):
        self.send(record(BEGIN_REQUEST, req_id, begin_body(RESPONDER, KEEP_CONN if keep_conn else 0))
                  + stream_records(PARAMS, req_id, encode_pairs(params))
                  + stream_records(STDIN, req_id, body))

    def read_response(self, req_id=1, others=None):
        """Read records until END_REQUEST for req_id. Records for other ids
        are collected in `others` (a list) if given. Returns Response;
        response.complete is False if the connection closed first."""
        resp = Response()
        while True:
            rec = self.read_record()
            if rec is None:
                return resp
            rtype, rid, content, _ = rec
            if rid != req_id:
                if others is not None:
                    others.append(rec)
                continue
            resp.records.append((rtype, rid, content))
            if rtype == STDOUT:
                resp.stdout += content
            elif rtype == STDERR:
                resp.stderr += content
            elif rtype == END_REQUEST:
                resp.app_status, resp.protocol_status = struct.unpack(">IB3x", content[:8])
                return resp

    def request(self, params, body=b"", req_id=1, keep_conn=False):
        self.send_request(params, body, req_id, keep_conn)
        return self.read_response(req_id)

    def get_values(self, names=("FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS")):
        """Send FCGI_GET_VALUES; return (dict of answered values, raw record)
        or (None, None) if the server closed without answering."""
        self.send(record(GET_VALUES, 0, encode_pairs([(n, "") for n in names])))
        rec = self.read_record()
        if rec is None:
            return None, None
        rtype, rid, content, _ = rec
        if rtype != GET_VALUES_RESULT:
            raise AssertionError(f"expected GET_VALUES_RESULT, got {TYPE_NAMES.get(rtype, rtype)} id={rid} {content!r}")
        return dict(decode_pairs(content)), rec

    def closed_by_peer(self, timeout=5.0):
        """True if the server closes the connection within `timeout`
        (any bytes it still sends first are discarded)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True
        except (socket.timeout, TimeoutError):
            return False


def php_params(script_filename, *, document_root, script_name=None, request_uri=None,
               method="GET", query="", content_type="", content_length=0, extra=None):
    """The params nginx's fastcgi_params would send for a simple request."""
    script_name = script_name or "/" + script_filename[len(document_root):].lstrip("/")
    p = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_SOFTWARE": "lowphp-test",
        "QUERY_STRING": query,
        "REQUEST_METHOD": method,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(content_length) if content_length else "",
        "SCRIPT_FILENAME": script_filename,
        "SCRIPT_NAME": script_name,
        "REQUEST_URI": request_uri or script_name + (("?" + query) if query else ""),
        "DOCUMENT_URI": script_name,
        "DOCUMENT_ROOT": document_root,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REQUEST_SCHEME": "http",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "SERVER_ADDR": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_NAME": "localhost",
        "REDIRECT_STATUS": "200",
        "HTTP_HOST": "localhost",
    }
    p.update(extra or {})
    return p
