// Has the next request arrived? Judged on bytes peeked from the socket, before
// a worker commits to the connection: a client that sends its params (or a
// small body) slowly must wait in an event loop, not in a worker (pure code,
// unit-tested in tests/unit/test_fastcgi.cpp).
#include <algorithm>
#include <charconv>
#include <string>

#include "lowphp/fastcgi.h"

namespace lowphp::fastcgi {
namespace {

struct Cursor {
    std::string_view bytes;
    size_t pos = 0;
    Header h;
    // The next record's header, if it is all there.
    bool header() {
        if (bytes.size() - pos < kHeaderSize) return false;
        h = parse_header(reinterpret_cast<const unsigned char*>(bytes.data() + pos));
        return true;
    }
    size_t content_here() const {
        return std::min<size_t>(h.content_length, bytes.size() - pos - kHeaderSize);
    }
    bool whole() const { return bytes.size() - pos >= kHeaderSize + h.content_length + h.padding; }
    void next() { pos += kHeaderSize + h.content_length + h.padding; }
    // What read_request would refuse at once: judged by reading, not by waiting.
    bool malformed() const {
        return h.version < 1 || size_t{h.content_length} + h.padding > kMaxRecord;
    }
};

// One name or value length of a pair (1 byte, or 4 with the high bit set).
bool pair_length(std::string_view s, size_t& pos, size_t& len) {
    if (pos >= s.size()) return false;
    auto b = [&](size_t k) { return static_cast<unsigned char>(s[pos + k]); };
    if (b(0) < 0x80) {
        len = b(0);
        pos += 1;
        return true;
    }
    if (s.size() - pos < 4) return false;
    len = (size_t{b(0)} & 0x7f) << 24 | size_t{b(1)} << 16 | size_t{b(2)} << 8 | b(3);
    pos += 4;
    return true;
}

// Calls `f(name, value)` for each whole pair of a params stream, in order.
template <typename F> void each_pair(std::string_view stream, F f) {
    size_t pos = 0, name_len, value_len;
    while (pair_length(stream, pos, name_len) && pair_length(stream, pos, value_len)) {
        if (stream.size() - pos < name_len || stream.size() - pos - name_len < value_len) break;
        f(stream.substr(pos, name_len), stream.substr(pos + name_len, value_len));
        pos += name_len + value_len;
    }
}

// CONTENT_LENGTH as PHP reads it (atol: leading digits; anything else is 0;
// the last one wins, as in the request's params).
size_t content_length_of(std::string_view stream) {
    size_t length = 0;
    each_pair(stream, [&](std::string_view name, std::string_view value) {
        if (name != "CONTENT_LENGTH") return;
        length = 0;
        std::from_chars(value.data(), value.data() + value.size(), length);
    });
    return length;
}

} // namespace

std::optional<std::string_view> find_param(std::string_view params, std::string_view name) {
    std::optional<std::string_view> found;
    each_pair(params, [&](std::string_view n, std::string_view value) {
        if (n == name) found = value; // the last one wins, as in the request
    });
    return found;
}

Arrival request_arrival(std::string_view bytes, size_t body_bound, std::string& scratch) {
    scratch.clear();
    if (bytes.empty()) return Arrival::Nothing;
    Cursor c;
    c.bytes = bytes;
    // What read_request skips before a request: empty STDIN, GET_VALUES.
    for (;;) {
        if (!c.header()) return Arrival::Partial;
        if (c.malformed()) return Arrival::Ready;
        bool skipped = (c.h.type == kStdin && c.h.content_length == 0) || c.h.type == kGetValues;
        if (!skipped) break;
        if (!c.whole()) return Arrival::Partial;
        c.next();
        // Nothing after them: read_request answers a GET_VALUES, then waits.
        if (c.pos == bytes.size()) return Arrival::Ready;
    }
    if (c.h.type != kBeginRequest || c.h.content_length != 8) return Arrival::Ready;
    if (!c.whole()) return Arrival::Partial;
    c.next();
    // PARAMS until the empty one or another record type (php-fpm's end).
    std::string& stream = scratch; // owned by the caller: no allocation per call
    stream.clear();
    for (;;) {
        if (!c.header()) return Arrival::Partial;
        if (c.malformed() || c.h.type != kParams) break;
        if (!c.whole()) return Arrival::Partial;
        stream.append(bytes.substr(c.pos + kHeaderSize, c.h.content_length));
        c.next();
        if (c.h.content_length == 0) break;
    }
    size_t want = std::min(content_length_of(stream), body_bound);
    // The body, up to the bound: PHP reads it as soon as it starts.
    for (size_t got = 0; got < want;) {
        if (!c.header()) return Arrival::Partial;
        if (c.malformed() || c.h.type != kStdin || c.h.content_length == 0) break;
        got += c.content_here();
        if (!c.whole()) return got >= want ? Arrival::Ready : Arrival::Partial;
        c.next();
    }
    return Arrival::Ready;
}

} // namespace lowphp::fastcgi
