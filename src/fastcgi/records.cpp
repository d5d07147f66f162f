// FastCGI record headers, name-value pairs and the output buffer: pure code,
// no I/O (unit-tested in tests/unit/test_fastcgi.cpp).
#include <algorithm>
#include <cstring>

#include "lowphp/fastcgi.h"

namespace lowphp::fastcgi {

Header parse_header(const unsigned char* p) {
    Header h;
    h.version = p[0];
    h.type = p[1];
    h.request_id = static_cast<uint16_t>(p[2] << 8 | p[3]);
    h.content_length = static_cast<uint16_t>(p[4] << 8 | p[5]);
    h.padding = p[6];
    return h;
}

void put_header(unsigned char* p, uint8_t type, uint16_t request_id, uint16_t content_length,
                uint8_t padding) {
    p[0] = 1;
    p[1] = type;
    p[2] = static_cast<unsigned char>(request_id >> 8);
    p[3] = static_cast<unsigned char>(request_id & 0xff);
    p[4] = static_cast<unsigned char>(content_length >> 8);
    p[5] = static_cast<unsigned char>(content_length & 0xff);
    p[6] = padding;
    p[7] = 0;
}

namespace {

// A pair length: one byte below 128, else four with the top bit set.
bool read_length(std::string_view s, size_t& i, size_t& out) {
    if (i >= s.size()) return false;
    auto byte = [&](size_t k) { return static_cast<size_t>(static_cast<unsigned char>(s[k])); };
    if (byte(i) < 0x80) {
        out = byte(i++);
        return true;
    }
    if (s.size() - i < 4) return false;
    out = (byte(i) & 0x7f) << 24 | byte(i + 1) << 16 | byte(i + 2) << 8 | byte(i + 3);
    i += 4;
    return true;
}

void put_length(std::string& out, size_t len) {
    if (len < 0x80) {
        out += static_cast<char>(len);
        return;
    }
    out += static_cast<char>((len >> 24 & 0x7f) | 0x80);
    out += static_cast<char>(len >> 16 & 0xff);
    out += static_cast<char>(len >> 8 & 0xff);
    out += static_cast<char>(len & 0xff);
}

} // namespace

bool decode_params(std::string_view stream, std::string& arena, std::vector<Param>& out) {
    out.clear();
    // Every pair has at least two length bytes, which pay for its two NULs:
    // the arena is sized once and never reallocates, so the views stay valid.
    arena.resize(stream.size());
    char* dst = arena.data();
    size_t i = 0;
    while (i < stream.size()) {
        size_t name_len, value_len;
        if (!read_length(stream, i, name_len) || !read_length(stream, i, value_len)) return false;
        if (name_len > stream.size() - i || value_len > stream.size() - i - name_len) return false;
        char* name = dst;
        memcpy(name, stream.data() + i, name_len);
        name[name_len] = '\0';
        char* value = name + name_len + 1;
        memcpy(value, stream.data() + i + name_len, value_len);
        value[value_len] = '\0';
        dst = value + value_len + 1;
        out.emplace_back(std::string_view(name, name_len), std::string_view(value, value_len));
        i += name_len + value_len;
    }
    return true;
}

void encode_param(std::string& out, std::string_view name, std::string_view value) {
    put_length(out, name.size());
    put_length(out, value.size());
    out.append(name).append(value);
}

void OutputBuffer::close_record() {
    if (!open_type_) return;
    size_t len = buf_.size() - open_ - kHeaderSize;
    auto padding = static_cast<uint8_t>((8 - len % 8) % 8);
    put_header(reinterpret_cast<unsigned char*>(buf_.data() + open_), open_type_, open_id_,
               static_cast<uint16_t>(len), padding);
    buf_.append(padding, '\0');
    open_type_ = 0;
}

void OutputBuffer::append(uint8_t type, uint16_t request_id, const char* data, size_t len) {
    while (len > 0) {
        size_t used = open_type_ ? buf_.size() - open_ - kHeaderSize : 0;
        if (open_type_ != type || open_id_ != request_id || used == kMaxOutputRecord) {
            close_record();
            open_ = buf_.size();
            open_type_ = type;
            open_id_ = request_id;
            buf_.append(kHeaderSize, '\0');
            used = 0;
        }
        size_t n = std::min(len, kMaxOutputRecord - used);
        buf_.append(data, n);
        data += n;
        len -= n;
    }
}

void OutputBuffer::append_header(uint8_t type, uint16_t request_id, uint16_t len) {
    close_record();
    size_t at = buf_.size();
    buf_.append(kHeaderSize, '\0');
    put_header(reinterpret_cast<unsigned char*>(buf_.data() + at), type, request_id, len, 0);
}

void OutputBuffer::end_request(uint16_t request_id) {
    close_record();
    size_t at = buf_.size();
    buf_.append(kHeaderSize + 8, '\0'); // appStatus 0, protocolStatus REQUEST_COMPLETE
    put_header(reinterpret_cast<unsigned char*>(buf_.data() + at), kEndRequest, request_id, 8, 0);
}

std::string_view OutputBuffer::bytes() {
    close_record();
    return buf_;
}

void OutputBuffer::clear() {
    buf_.clear();
    open_type_ = 0;
}

} // namespace lowphp::fastcgi
