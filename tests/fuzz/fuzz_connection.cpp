// A whole connection: the input is the byte stream a web server sends. It is
// written into one end of a socketpair, that end is closed, and the other end
// is served by fastcgi::Connection as a worker serves it (arrival() when the
// tree has it, read_request, the body through read_stdin up to CONTENT_LENGTH,
// output, end_request, the fd handed back and taken again when kept) until the
// connection is Closed. The web server's end is closed outright for inputs
// whose size is a multiple of 4 (every answer then fails: the broken-peer
// paths), else only shut for writing, its answers read by a thread (so answers
// are sent and kept connections come back).
#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "lowphp/fastcgi.h"

namespace fcgi = lowphp::fastcgi;

namespace {

void check(bool ok) {
    if (!ok) abort();
}

// The input must fit in the socket at once (nobody reads while it is written).
constexpr size_t kMaxInput = 256 * 1024;

fcgi::Connection& connection() {
    static fcgi::Connection conn; // the worker keeps one, reused for every connection
    return conn;
}

std::string_view param(const fcgi::Request& req, std::string_view name) {
    for (const auto& [n, v] : req.params)
        if (n == name) return v;
    return {};
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > kMaxInput) return -1;
    int fds[2];
    check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    int buf = 2 * kMaxInput;
    setsockopt(fds[1], SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf);
    setsockopt(fds[0], SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf);
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fds[1], data + done, size - done);
        check(n > 0);
        done += static_cast<size_t>(n);
    }
    bool half_close = size % 4 != 0;
    std::thread web_server; // reads the answers as they come, as nginx does
    if (half_close) {
        check(shutdown(fds[1], SHUT_WR) == 0);
        web_server = std::thread([fd = fds[1]] {
            static char sink[65536];
            while (recv(fd, sink, sizeof sink, 0) > 0) {
            }
        });
    } else {
        close(fds[1]);
        fds[1] = -1;
    }

    fcgi::Connection& conn = connection();
    fcgi::Request req;
    conn.attach(fds[0], size % 2 == 1);
    // Both ways a pool runs: no params limit, or a small one (the size picks).
    conn.set_params_limit(size % 3 == 0 ? 0 : 512);
    static char body[16384];
    for (int served = 0; served < 1000; ++served) {
#ifdef LOWPHP_FUZZ_ARRIVAL
        // The worker asks first whether a request has arrived (worker.cpp).
        if (!conn.has_input()) {
            (void)conn.arrival(16 * 1024);
            check(conn.peeked() <= size);
        }
#endif
        fcgi::Connection::Next next = conn.read_request(req);
        if (next == fcgi::Connection::Next::Closed) break;
        if (next == fcgi::Connection::Next::Idle) {
            // The peer is gone: the next read says so.
            if (!conn.wait_readable(0)) break;
            continue;
        }
        check(req.role != nullptr);
        for (const auto& [n, v] : req.params)
            check(n.data()[n.size()] == '\0' && v.data()[v.size()] == '\0');
        // PHP reads at most CONTENT_LENGTH bytes, in blocks.
        std::string_view cl = param(req, "CONTENT_LENGTH");
        size_t want = cl.empty() ? 0 : strtoul(std::string(cl).c_str(), nullptr, 10);
        size_t got = 0;
        while (got < want) {
            size_t n = conn.read_stdin(body, std::min(sizeof body, want - got));
            if (n == 0) break;
            check(n <= sizeof body);
            got += n;
        }
        // The answer: headers, the body echoed back (large ones cut into
        // records), a line on stderr.
        static const char kHeaders[] = "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n";
        conn.write(fcgi::kStdout, kHeaders, sizeof kHeaders - 1);
        conn.write(fcgi::kStdout, body, std::min(got, sizeof body));
        conn.write(fcgi::kStderr, "warning\n", 8);
        if (req.params.size() % 2) conn.flush();
        conn.end_request();
        conn.release_large_buffers(req);
        if (!conn.keep()) break;
        // A kept connection goes back to the master and comes back.
        int fd = conn.release();
        if (fd < 0) continue;
        conn.attach(fd, false);
    }
    conn.close(false); // the reader sees the end
    if (web_server.joinable()) web_server.join();
    if (fds[1] >= 0) close(fds[1]);
    return 0;
}
