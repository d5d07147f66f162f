// libfcgi only looks at management records while it reads a request, so a
// GET_VALUES sent first on a connection would go unanswered; we answer it
// before libfcgi takes the connection.
#include <cerrno>
#include <cstdint>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

#include "management.h"

namespace lowphp::worker {
namespace {

constexpr uint8_t kBeginRequest = 1, kGetValues = 9, kGetValuesResult = 10;

// MSG_WAITALL also waits for the whole header when peeking (Linux, stream sockets).
bool read_exact(int fd, void* buf, size_t len, int flags) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = recv(fd, static_cast<char*>(buf) + done, len - done, flags | MSG_WAITALL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        if (flags & MSG_PEEK) return static_cast<size_t>(n) == len;
        done += static_cast<size_t>(n);
    }
    return true;
}

// Names in a FastCGI name-value body (values of a GET_VALUES query are empty).
bool requested(const std::string& body, const std::string& wanted) {
    size_t i = 0;
    auto length = [&](size_t& out) {
        if (i >= body.size()) return false;
        uint8_t b = static_cast<uint8_t>(body[i]);
        if (b < 0x80) return out = b, ++i, true;
        if (i + 4 > body.size()) return false;
        out = ((b & 0x7fu) << 24) | (static_cast<uint8_t>(body[i + 1]) << 16) |
              (static_cast<uint8_t>(body[i + 2]) << 8) | static_cast<uint8_t>(body[i + 3]);
        i += 4;
        return true;
    };
    while (i < body.size()) {
        size_t nlen, vlen;
        if (!length(nlen) || !length(vlen) || i + nlen + vlen > body.size()) return false;
        if (body.compare(i, nlen, wanted) == 0 && nlen == wanted.size()) return true;
        i += nlen + vlen;
    }
    return false;
}

bool send_all(int fd, const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<size_t>(n);
    }
    return true;
}

bool answer(int fd, const std::string& query) {
    std::string body;
    if (requested(query, "FCGI_MPXS_CONNS")) body = std::string("\x0f\x01", 2) + "FCGI_MPXS_CONNS0";
    size_t pad = (8 - body.size() % 8) % 8;
    std::string rec = {1,
                       static_cast<char>(kGetValuesResult),
                       0,
                       0,
                       static_cast<char>(body.size() >> 8),
                       static_cast<char>(body.size() & 0xff),
                       static_cast<char>(pad),
                       0};
    return send_all(fd, rec + body + std::string(pad, '\0'));
}

} // namespace

bool answer_management_records(int fd) {
    for (;;) {
        uint8_t h[8];
        if (!read_exact(fd, h, sizeof h, MSG_PEEK)) return false;
        bool management = h[2] == 0 && h[3] == 0;
        // Between requests only BEGIN_REQUEST or a management record may come;
        // anything else is a broken stream, and libfcgi would wait on it forever.
        if (!management) return h[1] == kBeginRequest;
        if (h[1] != kGetValues) return true;
        size_t clen = (static_cast<size_t>(h[4]) << 8) | h[5];
        std::string rec(8 + clen + h[6], '\0');
        if (!read_exact(fd, rec.data(), rec.size(), 0)) return false;
        if (!answer(fd, rec.substr(8, clen))) return false;
    }
}

} // namespace lowphp::worker
