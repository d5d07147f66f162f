// One FastCGI connection: reading requests and writing answers the way
// php-fpm's main/fastcgi.c does, with one read buffer and one output buffer
// reused for every request (no allocation per param or per record).
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <type_traits>
#include <unistd.h>

#include "lowphp/fastcgi.h"

namespace lowphp::fastcgi {

namespace {

const char* role_name(unsigned role) {
    switch (role) {
    case 1:
        return "RESPONDER";
    case 2:
        return "AUTHORIZER";
    case 3:
        return "FILTER";
    default:
        return nullptr;
    }
}

} // namespace

Connection::Connection() : in_(std::make_unique_for_overwrite<unsigned char[]>(kInputBuffer)) {
    // Once, at its largest (a full buffer, its last record's header and
    // padding, END_REQUEST): grown by doubling, every smaller copy's pages
    // stayed resident in the worker's heap (20 KB after an 18 KB response).
    out_.reserve(kOutputBuffer + 64);
}

void Connection::attach(int fd, bool tcp) {
    fd_ = fd;
    tcp_ = tcp;
    nodelay_ = false;
    pos_ = end_ = 0;
    keep_ = false;
    stdin_left_ = stdin_padding_ = 0;
    stdin_ended_ = true;
    broken_ = false;
    out_.clear();
}

bool Connection::ensure(size_t n) {
    if (end_ - pos_ >= n) return true;
    if (pos_ == end_) {
        pos_ = end_ = 0;
    } else if (kInputBuffer - pos_ < n) {
        memmove(in_.get(), in_.get() + pos_, end_ - pos_);
        end_ -= pos_;
        pos_ = 0;
    }
    while (end_ - pos_ < n) {
        size_t want = std::max(n - (end_ - pos_), kReadAhead);
        ssize_t r = ::read(fd_, in_.get() + end_, std::min(kInputBuffer - end_, want));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        end_ += static_cast<size_t>(r);
    }
    return true;
}

int Connection::fill_nonblocking() {
    pos_ = end_ = 0;
    for (;;) {
        ssize_t r = recv(fd_, in_.get(), kReadAhead, MSG_DONTWAIT);
        if (r > 0) {
            end_ = static_cast<size_t>(r);
            return 1;
        }
        if (r < 0 && errno == EINTR) continue;
        return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? -1 : 0;
    }
}

Connection::Next Connection::read_request(Request& req) {
    for (;;) {
        if (!has_input()) {
            int got = fill_nonblocking();
            if (got < 0) return Next::Idle;
            if (got == 0) return Next::Closed;
        }
        if (!ensure(kHeaderSize)) return Next::Closed;
        Header h = parse_header(at());
        size_t body = size_t{h.content_length} + h.padding;
        // php-fpm's fcgi_read_request judges a record by its header before it
        // reads the content: a BEGIN_REQUEST of another length than 8 closes
        // the connection at once instead of waiting for content that may
        // never come.
        bool wanted = (h.type == kStdin && h.content_length == 0) || h.type == kGetValues ||
                      (h.type == kBeginRequest && h.content_length == 8);
        if (h.version < 1 || !wanted) return Next::Closed;
        // php-fpm skips the empty STDIN that ends a body nobody read.
        if (body > kMaxRecord || !ensure(kHeaderSize + body)) return Next::Closed;
        if (h.type == kStdin && h.content_length == 0) {
            consume(kHeaderSize + body);
            continue;
        }
        if (h.type == kGetValues) {
            if (!answer_get_values(h)) return Next::Closed;
            consume(kHeaderSize + body);
            continue;
        }
        const unsigned char* b = at() + kHeaderSize;
        req.role = role_name(unsigned{b[0]} << 8 | b[1]);
        if (!req.role) return Next::Closed;
        req.id = h.request_id;
        req.keep_connection = (b[2] & 1) != 0;
        consume(kHeaderSize + body);
        return read_params(req) ? Next::Request : Next::Closed;
    }
}

Arrival Connection::arrival(size_t body_bound) {
    peeked_ = 0;
    if (has_input()) return Arrival::Ready; // already ours: cannot go elsewhere
    ssize_t n;
    while ((n = recv(fd_, in_.get(), kPeekLimit, MSG_PEEK | MSG_DONTWAIT)) < 0 && errno == EINTR) {
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Arrival::Nothing;
    if (n <= 0) return Arrival::Ready; // closed or failed: reading says so
    peeked_ = static_cast<size_t>(n);
    Arrival a = request_arrival(std::string_view(reinterpret_cast<const char*>(in_.get()), peeked_),
                                body_bound, arrival_scratch_);
    if (a != Arrival::Partial) return a;
    // More than a peek judges (huge params) is read as it comes. A client
    // that has shut down its side sends no more: what came is served, as
    // php-fpm serves a body cut short by a half-close.
    if (peeked_ == kPeekLimit) return Arrival::Ready;
    struct pollfd p = {fd_, POLLRDHUP, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) ? Arrival::Ready
                                                                               : Arrival::Partial;
}

bool Connection::wait_readable(int timeout_ms) const {
    struct pollfd p = {fd_, POLLIN, 0};
    int r;
    while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
    }
    return r > 0;
}

bool Connection::read_params(Request& req) {
    params_.clear();
    params_over_limit_ = false;
    for (;;) {
        if (!ensure(kHeaderSize)) return false;
        Header h = parse_header(at());
        // php-fpm reads PARAMS until the empty one (or another record type).
        if (h.version < 1) return false;
        // php-fpm reads the header of the record that ends PARAMS; an ABORT
        // there (it has no content) is gone with it, so a kept connection
        // stays usable after the answer.
        if (h.type == kAbortRequest && h.content_length == 0 && h.padding == 0) {
            consume(kHeaderSize);
            break;
        }
        if (h.type != kParams) break;
        if (params_limit_ && params_.size() + h.content_length > params_limit_) {
            params_over_limit_ = true;
            return false;
        }
        size_t body = size_t{h.content_length} + h.padding;
        if (body > kMaxRecord || !ensure(kHeaderSize + body)) return false;
        params_.append(reinterpret_cast<const char*>(at() + kHeaderSize), h.content_length);
        consume(kHeaderSize + body);
        if (h.content_length == 0) break;
    }
    if (!decode_params(params_, req.arena, req.params)) return false;
    id_ = req.id;
    keep_ = req.keep_connection;
    stdin_left_ = stdin_padding_ = 0;
    stdin_ended_ = false;
    broken_ = false;
    out_.clear();
    note_stdin_end();
    // php-fpm turns Nagle off on TCP connections the web server keeps.
    if (keep_ && tcp_ && !nodelay_) {
        int on = 1;
        setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        nodelay_ = true;
    }
    return true;
}

void Connection::note_stdin_end() {
    if (stdin_ended_ || stdin_left_ > 0 || end_ - pos_ < kHeaderSize) return;
    Header h = parse_header(at());
    if (h.version < 1 || h.type != kStdin || h.content_length != 0) return;
    if (end_ - pos_ < kHeaderSize + h.padding) return;
    consume(kHeaderSize + h.padding);
    stdin_ended_ = true;
}

// php-fpm answers only the names it knows, with requestId 0: FCGI_MPXS_CONNS=0.
bool Connection::answer_get_values(const Header& h) {
    std::string arena;
    std::vector<Param> names;
    std::string_view query(reinterpret_cast<const char*>(at() + kHeaderSize), h.content_length);
    if (!decode_params(query, arena, names)) return false;
    std::string body;
    for (const auto& [name, value] : names)
        if (name == "FCGI_MPXS_CONNS") encode_param(body, name, "0");
    // Between requests the output buffer is empty: the answer goes through it.
    if (body.empty()) // an empty result is still one record
        out_.append_header(kGetValuesResult, 0, 0);
    else
        out_.append(kGetValuesResult, 0, body.data(), body.size());
    return send_buffer_and(nullptr, 0);
}

size_t Connection::read_stdin(char* buf, size_t len) {
    auto broken_body = [this] {
        stdin_ended_ = true;
        keep_ = false;
    };
    size_t done = 0;
    while (done < len && !stdin_ended_) {
        if (stdin_left_ == 0) {
            Header h;
            if (ensure(kHeaderSize)) h = parse_header(at());
            if (h.version < 1 || h.type != kStdin) {
                // php-fpm's fcgi_read: the body ends, the connection is not
                // kept, and this read returns nothing, even bytes it copied.
                broken_body();
                return 0;
            }
            consume(kHeaderSize);
            stdin_left_ = h.content_length;
            stdin_padding_ = h.padding;
            if (stdin_left_ == 0) stdin_ended_ = true; // the empty STDIN: end of the body
        }
        if (stdin_left_ > 0 && !has_input()) {
            // Straight into PHP's buffer, as php-fpm reads a body.
            ssize_t r;
            while ((r = ::read(fd_, buf + done, std::min(len - done, stdin_left_))) < 0 &&
                   errno == EINTR) {
            }
            if (r <= 0) {
                broken_body();
                break;
            }
            done += static_cast<size_t>(r);
            stdin_left_ -= static_cast<size_t>(r);
        } else if (stdin_left_ > 0) {
            size_t n = std::min({len - done, stdin_left_, end_ - pos_});
            memcpy(buf + done, at(), n);
            consume(n);
            done += n;
            stdin_left_ -= n;
        }
        if (stdin_left_ == 0 && stdin_padding_ > 0) {
            if (!ensure(stdin_padding_)) {
                broken_body();
                break;
            }
            consume(stdin_padding_);
            stdin_padding_ = 0;
        }
    }
    return done;
}

// fcgi_write(): what fits stays in the 8 KB buffer; what overflows it by less
// than a buffer fills it, goes out with it, and the rest starts the next one;
// more than that goes out at once in records of its own.
bool Connection::write(uint8_t type, const char* data, size_t len) {
    if (broken_) return false;
    if (len == 0) return true;
    if (out_.record_open() && out_.open_type() != type) out_.close_record();
    size_t limit = kOutputBuffer > out_.size() ? kOutputBuffer - out_.size() : 0;
    if (!out_.record_open()) limit = limit > kHeaderSize ? limit - kHeaderSize : 0;
    if (len < limit) {
        out_.append(type, id_, data, len);
        return true;
    }
    if (len - limit >= kOutputBuffer - kHeaderSize) return write_large(type, data, len);
    if (limit > 0) out_.append(type, id_, data, limit);
    if (!send_buffer_and(nullptr, 0)) return false;
    if (len > limit) out_.append(type, id_, data + limit, len - limit);
    return true;
}

// fcgi_write's large case: records of 0xfff8 bytes, then one whose length is
// a multiple of 8, each written with the buffer before it; the last few bytes
// (fewer than 8) start the buffer again.
bool Connection::write_large(uint8_t type, const char* data, size_t len) {
    out_.close_record();
    size_t pos = 0;
    while (len - pos > kMaxRecord) {
        out_.append_header(type, id_, static_cast<uint16_t>(kMaxOutputRecord));
        if (!send_buffer_and(data + pos, kMaxOutputRecord)) return false;
        pos += kMaxOutputRecord;
    }
    size_t rest = (len - pos) % 8;
    size_t whole = len - pos - rest;
    out_.append_header(type, id_, static_cast<uint16_t>(whole));
    if (!send_buffer_and(data + pos, whole)) return false;
    if (rest) out_.append(type, id_, data + pos + whole, rest);
    return true;
}

bool Connection::send_buffer_and(const char* data, size_t len) {
    std::string_view head = out_.bytes();
    struct iovec iov[2] = {{const_cast<char*>(head.data()), head.size()},
                           {const_cast<char*>(data), len}};
    struct msghdr msg {};
    msg.msg_iov = iov;
    msg.msg_iovlen = len ? 2 : 1;
    size_t left = head.size() + len;
    bool sent = fd_ >= 0;
    while (sent && left > 0) {
        ssize_t n = sendmsg(fd_, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            sent = false;
            break;
        }
        left -= static_cast<size_t>(n);
        for (size_t done = static_cast<size_t>(n); done > 0 && msg.msg_iovlen > 0;) {
            size_t step = std::min(done, msg.msg_iov->iov_len);
            msg.msg_iov->iov_base = static_cast<char*>(msg.msg_iov->iov_base) + step;
            msg.msg_iov->iov_len -= step;
            done -= step;
            if (msg.msg_iov->iov_len == 0) ++msg.msg_iov, --msg.msg_iovlen;
        }
    }
    out_.clear();
    if (!sent) broken_ = true, keep_ = false;
    return sent;
}

bool Connection::flush() {
    if (broken_) return false;
    if (!out_.bytes().empty()) return send_buffer_and(nullptr, 0);
    // php-fpm's fcgi_flush writes even 0 bytes: that write fails once the
    // peer has closed a unix socket (or reset a TCP one).
    if (fd_ < 0 || send(fd_, "", 0, MSG_NOSIGNAL) < 0) {
        if (fd_ >= 0 && errno == EINTR) return true;
        broken_ = true, keep_ = false;
        return false;
    }
    return true;
}

bool Connection::finish() {
    end_request();
    if (!keep_) close(!stdin_ended_);
    return keep_;
}

bool Connection::end_request() {
    if (broken_) return false;
    // A STDIN record longer than CONTENT_LENGTH left bytes unread: whatever
    // follows in it is not a next request (a client could smuggle one into a
    // body). Answer, then close, as php-fpm 8.2 does.
    if (stdin_left_ > 0) keep_ = false;
    out_.end_request(id_);
    bool sent = send_buffer_and(nullptr, 0);
    take_stdin_end();
    return sent;
}

// PHP stops reading at CONTENT_LENGTH, and a body read straight into its
// buffer leaves the closing record in the socket: take what has arrived, so
// that record is seen (a connection closed with it unread is reset, and a
// kept one cannot be handed over).
void Connection::take_stdin_end() {
    if (!stdin_ended_ && stdin_left_ == 0 && !has_input()) {
        pos_ = end_ = 0;
        ssize_t r = recv(fd_, in_.get(), kInputBuffer, MSG_DONTWAIT);
        if (r > 0) end_ = static_cast<size_t>(r);
    }
    note_stdin_end();
}

void Connection::close(bool linger) {
    if (fd_ < 0) return;
    if (linger) {
        shutdown(fd_, SHUT_WR);
        // Read what the peer still sends until it closes, for at most 2 s.
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        char sink[4096];
        for (;;) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long waited =
                (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
            struct pollfd p = {fd_, POLLIN, 0};
            if (waited >= 2000) break;
            int ready = poll(&p, 1, static_cast<int>(2000 - waited));
            if (ready < 0 && errno == EINTR) continue; // SIGQUIT: linger on
            if (ready <= 0) break;
            ssize_t r = recv(fd_, sink, sizeof sink, MSG_DONTWAIT);
            if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (r <= 0) break;
        }
    }
    ::close(fd_);
    fd_ = -1;
    pos_ = end_ = 0;
}

bool Connection::release_large_buffers(Request& req) {
    // Above what nginx ever sends (its headers fit in a few 8 KB buffers).
    constexpr size_t kLarge = 256 * 1024;
    bool freed = false;
    auto release = [&](auto& buffer, size_t bytes) {
        if (bytes <= kLarge) return;
        std::remove_reference_t<decltype(buffer)>().swap(buffer); // clear() keeps the memory
        freed = true;
    };
    release(params_, params_.capacity());
    release(req.arena, req.arena.capacity());
    release(req.params, req.params.capacity() * sizeof(Param));
    return freed;
}

int Connection::release() {
    if (fd_ < 0 || broken_) return -1;
    // The body's closing record may have come in a later packet (anything
    // more than that record keeps the fd here).
    take_stdin_end();
    if (!stdin_ended_ || has_input()) return -1;
    int fd = fd_;
    fd_ = -1;
    return fd;
}

} // namespace lowphp::fastcgi
