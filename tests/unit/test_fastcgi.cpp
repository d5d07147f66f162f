// The FastCGI codec: record headers, name-value pairs, the output buffer, and
// a Connection driven over a socketpair as nginx (or a broken peer) would.
#include <doctest/doctest.h>

#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "lowphp/fastcgi.h"

namespace fcgi = lowphp::fastcgi;

namespace {

std::string record(uint8_t type, uint16_t id, const std::string& content, uint8_t padding = 0) {
    std::string r(fcgi::kHeaderSize, '\0');
    fcgi::put_header(reinterpret_cast<unsigned char*>(r.data()), type, id,
                     static_cast<uint16_t>(content.size()), padding);
    return r + content + std::string(padding, '\0');
}

std::string begin(uint16_t id, bool keep, uint16_t role = 1) {
    std::string body = {static_cast<char>(role >> 8),
                        static_cast<char>(role & 0xff),
                        static_cast<char>(keep ? 1 : 0),
                        0,
                        0,
                        0,
                        0,
                        0};
    return record(fcgi::kBeginRequest, id, body);
}

std::string pairs(std::initializer_list<std::pair<std::string, std::string>> list) {
    std::string out;
    for (const auto& [n, v] : list)
        fcgi::encode_param(out, n, v);
    return out;
}

// A connected socketpair: `peer` plays nginx, `conn` is attached to the other end.
struct Pair {
    int fds[2] = {-1, -1};
    fcgi::Connection conn;
    Pair() {
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
        conn.attach(fds[0], false);
    }
    ~Pair() {
        if (conn.fd() >= 0) conn.close(false);
        if (fds[1] >= 0) close(fds[1]);
    }
    void send(const std::string& bytes) {
        REQUIRE(::write(fds[1], bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
    }
    std::string receive_all() { // after the connection closed its side
        std::string out;
        char buf[65536];
        ssize_t n;
        while ((n = read(fds[1], buf, sizeof buf)) > 0)
            out.append(buf, static_cast<size_t>(n));
        return out;
    }
};

std::string value(const fcgi::Request& req, std::string_view name) {
    for (const auto& [n, v] : req.params)
        if (n == name) return std::string(v);
    return "<absent>";
}

} // namespace

TEST_CASE("fastcgi: header fields round-trip") {
    unsigned char h[8];
    fcgi::put_header(h, fcgi::kStdout, 0x1234, 0xfff8, 7);
    fcgi::Header p = fcgi::parse_header(h);
    CHECK(p.version == 1);
    CHECK(p.type == fcgi::kStdout);
    CHECK(p.request_id == 0x1234);
    CHECK(p.content_length == 0xfff8);
    CHECK(p.padding == 7);
}

TEST_CASE("fastcgi: params with 1- and 4-byte lengths decode NUL-terminated") {
    std::string big(300, 'v');
    std::string stream = pairs({{"SCRIPT_NAME", "/a.php"}, {"HTTP_X_BIG", big}, {"EMPTY", ""}});
    std::string arena;
    std::vector<fcgi::Param> out;
    REQUIRE(fcgi::decode_params(stream, arena, out));
    REQUIRE(out.size() == 3);
    CHECK(out[0].first == "SCRIPT_NAME");
    CHECK(out[0].second == "/a.php");
    CHECK(out[0].first.data()[out[0].first.size()] == '\0');
    CHECK(out[0].second.data()[out[0].second.size()] == '\0');
    CHECK(out[1].second == big);
    CHECK(out[2].second.empty());
}

TEST_CASE("fastcgi: params whose lengths run past the end are refused") {
    std::string arena;
    std::vector<fcgi::Param> out;
    CHECK_FALSE(fcgi::decode_params(std::string("\x7f\x7f"
                                                "abc",
                                                5),
                                    arena, out));
    CHECK_FALSE(fcgi::decode_params(std::string("\xff\xff\xff\xff\x01"
                                                "ab",
                                                7),
                                    arena, out));
    CHECK_FALSE(fcgi::decode_params(std::string("\x85\x00", 2), arena, out)); // cut 4-byte length
    CHECK(fcgi::decode_params("", arena, out));
    CHECK(out.empty());
}

TEST_CASE("fastcgi: output coalesces into padded records, END_REQUEST last") {
    fcgi::OutputBuffer out;
    out.append(fcgi::kStdout, 1, "Hello", 5);
    out.append(fcgi::kStdout, 1, ", world", 7);
    out.append(fcgi::kStderr, 1, "oops", 4);
    out.end_request(1);
    std::string expected = record(fcgi::kStdout, 1, "Hello, world", 4) +
                           record(fcgi::kStderr, 1, "oops", 4) +
                           record(fcgi::kEndRequest, 1, std::string(8, '\0'));
    CHECK(std::string(out.bytes()) == expected);
    out.clear();
    CHECK(out.bytes().empty());
}

TEST_CASE("fastcgi: long output is cut into 0xfff8-byte records as php-fpm does") {
    fcgi::OutputBuffer out;
    std::string data(0xfff8 + 10, 'x');
    out.append(fcgi::kStdout, 3, data.data(), data.size());
    std::string_view b = out.bytes();
    fcgi::Header first = fcgi::parse_header(reinterpret_cast<const unsigned char*>(b.data()));
    CHECK(first.content_length == 0xfff8);
    CHECK(first.padding == 0);
    CHECK(first.request_id == 3);
    fcgi::Header second = fcgi::parse_header(
        reinterpret_cast<const unsigned char*>(b.data() + fcgi::kHeaderSize + 0xfff8));
    CHECK(second.content_length == 10);
    CHECK(second.padding == 6);
    CHECK(b.size() == 2 * fcgi::kHeaderSize + 0xfff8 + 16);
}

TEST_CASE("fastcgi: a request as nginx sends it, with its body") {
    Pair p;
    // A pair split across two PARAMS records, padding, and the body's records.
    std::string params = pairs({{"REQUEST_METHOD", "POST"}, {"CONTENT_LENGTH", "5"}});
    p.send(begin(1, true) + record(fcgi::kParams, 1, params.substr(0, 7), 1) +
           record(fcgi::kParams, 1, params.substr(7)) + record(fcgi::kParams, 1, "") +
           record(fcgi::kStdin, 1, "abc", 5) + record(fcgi::kStdin, 1, "de") +
           record(fcgi::kStdin, 1, ""));
    fcgi::Request req;
    REQUIRE(p.conn.read_request(req) == fcgi::Connection::Next::Request);
    CHECK(req.id == 1);
    CHECK(req.keep_connection);
    CHECK(std::string(req.role) == "RESPONDER");
    CHECK(value(req, "REQUEST_METHOD") == "POST");
    CHECK(value(req, "CONTENT_LENGTH") == "5");
    char body[16];
    CHECK(p.conn.read_stdin(body, sizeof body) == 5);
    CHECK(std::string(body, 5) == "abcde");
    CHECK(p.conn.stdin_ended());
    CHECK(p.conn.read_stdin(body, sizeof body) == 0);
    CHECK_FALSE(p.conn.has_input());
    // Nothing more was sent: the connection is idle, and may go elsewhere.
    CHECK(p.conn.read_request(req) == fcgi::Connection::Next::Idle);
}

TEST_CASE("fastcgi: the answer goes out in one write, then the connection is kept") {
    Pair p;
    p.send(begin(7, true) + record(fcgi::kParams, 7, "") + record(fcgi::kStdin, 7, ""));
    fcgi::Request req;
    REQUIRE(p.conn.read_request(req) == fcgi::Connection::Next::Request);
    CHECK(p.conn.stdin_ended()); // the GET's empty body was already in the buffer
    CHECK(p.conn.write(fcgi::kStdout, "Status: 200\r\n\r\nhi", 17));
    CHECK(p.conn.end_request());
    CHECK(p.conn.keep());
    int fd = p.conn.release();
    CHECK(fd == p.fds[0]);
    CHECK(p.conn.fd() == -1);
    shutdown(fd, SHUT_WR);
    close(fd);
    CHECK(p.receive_all() == record(fcgi::kStdout, 7, "Status: 200\r\n\r\nhi", 7) +
                                 record(fcgi::kEndRequest, 7, std::string(8, '\0')));
}

TEST_CASE("fastcgi: the body's end arriving after the request still frees the connection") {
    Pair p;
    p.send(begin(1, true) + record(fcgi::kParams, 1, ""));
    fcgi::Request req;
    REQUIRE(p.conn.read_request(req) == fcgi::Connection::Next::Request);
    CHECK_FALSE(p.conn.stdin_ended());
    p.send(record(fcgi::kStdin, 1, ""));
    CHECK(p.conn.end_request());
    CHECK(p.conn.release() == p.fds[0]);
    close(p.fds[0]);
}

TEST_CASE("fastcgi: a connection with its body unread is not released") {
    Pair p;
    p.send(begin(1, true) + record(fcgi::kParams, 1, "") + record(fcgi::kStdin, 1, "xyz"));
    fcgi::Request req;
    REQUIRE(p.conn.read_request(req) == fcgi::Connection::Next::Request);
    CHECK(p.conn.release() == -1);
}

TEST_CASE("fastcgi: an ABORT that ends PARAMS is consumed, so a kept connection goes on") {
    Pair p;
    p.send(begin(1, true) + record(fcgi::kParams, 1, pairs({{"A", "1"}})) +
           record(fcgi::kAbortRequest, 1, ""));
    fcgi::Request req;
    REQUIRE(p.conn.read_request(req) == fcgi::Connection::Next::Request);
    CHECK(value(req, "A") == "1");
    CHECK(p.conn.end_request());
    CHECK(p.conn.keep());
    p.send(begin(2, true) + record(fcgi::kParams, 2, "") + record(fcgi::kStdin, 2, ""));
    REQUIRE(p.conn.read_request(req) == fcgi::Connection::Next::Request);
    CHECK(req.id == 2);
}

TEST_CASE("fastcgi: GET_VALUES is answered between requests, as php-fpm does") {
    Pair p;
    p.send(record(fcgi::kGetValues, 0, pairs({{"FCGI_MAX_CONNS", ""}, {"FCGI_MPXS_CONNS", ""}})));
    fcgi::Request req;
    CHECK(p.conn.read_request(req) == fcgi::Connection::Next::Idle);
    char buf[64];
    ssize_t n = read(p.fds[1], buf, sizeof buf);
    std::string expected = pairs({{"FCGI_MPXS_CONNS", "0"}});
    CHECK(
        std::string(buf, static_cast<size_t>(n)) ==
        record(fcgi::kGetValuesResult, 0, expected, static_cast<uint8_t>(8 - expected.size() % 8)));
}

TEST_CASE("fastcgi: the end of a request's body belongs to it, not to the next") {
    Pair p;
    // The empty STDIN of a body nobody read comes before the next BEGIN_REQUEST.
    p.send(record(fcgi::kStdin, 1, "") + begin(2, false, 2) + record(fcgi::kParams, 2, ""));
    fcgi::Request req;
    REQUIRE(p.conn.read_request(req) == fcgi::Connection::Next::Request);
    CHECK(req.id == 2);
    CHECK(std::string(req.role) == "AUTHORIZER");
    CHECK_FALSE(req.keep_connection);
}

TEST_CASE("fastcgi: anything else than a request closes the connection") {
    fcgi::Request req;
    for (const std::string& bad :
         {record(fcgi::kParams, 1, pairs({{"A", "b"}})), record(fcgi::kStdin, 1, "abc"),
          record(fcgi::kBeginRequest, 1, std::string("\x00\x01", 2)), begin(1, false, 9),
          begin(1, false) +
              record(fcgi::kParams, 1,
                     "\x7f\x7f"
                     "abc") +
              record(fcgi::kParams, 1, ""),
          std::string("\x00\x01\x00\x01\x00\x08\x00\x00", 8) + std::string(8, '\0')}) {
        Pair p;
        p.send(bad);
        CHECK(p.conn.read_request(req) == fcgi::Connection::Next::Closed);
    }
    Pair gone;
    close(gone.fds[1]);
    gone.fds[1] = -1;
    CHECK(gone.conn.read_request(req) == fcgi::Connection::Next::Closed);
}

TEST_CASE("fastcgi: a foreign record inside a body ends it with nothing read (php-fpm)") {
    Pair p;
    p.send(begin(1, true) + record(fcgi::kParams, 1, "") + record(fcgi::kStdin, 1, "12345", 3) +
           begin(2, true));
    fcgi::Request req;
    REQUIRE(p.conn.read_request(req) == fcgi::Connection::Next::Request);
    char body[10];
    CHECK(p.conn.read_stdin(body, sizeof body) == 0);
    CHECK(p.conn.stdin_ended());
    CHECK_FALSE(p.conn.keep());
}

TEST_CASE("fastcgi: one large write goes out in flushes of the buffer size, intact") {
    Pair p;
    p.send(begin(1, false) + record(fcgi::kParams, 1, "") + record(fcgi::kStdin, 1, ""));
    fcgi::Request req;
    REQUIRE(p.conn.read_request(req) == fcgi::Connection::Next::Request);
    std::string big(3 * 65536 + 123, 'y');
    for (size_t i = 0; i < big.size(); ++i)
        big[i] = static_cast<char>('a' + i % 26);
    // Read concurrently: the socket buffer cannot hold it all.
    std::string got;
    std::thread reader([&] {
        char buf[65536];
        ssize_t n;
        while ((n = read(p.fds[1], buf, sizeof buf)) > 0)
            got.append(buf, static_cast<size_t>(n));
    });
    CHECK(p.conn.write(fcgi::kStdout, big.data(), big.size()));
    CHECK(p.conn.end_request());
    p.conn.close(false);
    reader.join();
    std::string body;
    size_t i = 0;
    while (i + fcgi::kHeaderSize <= got.size()) {
        fcgi::Header h = fcgi::parse_header(reinterpret_cast<const unsigned char*>(got.data() + i));
        if (h.type == fcgi::kStdout) body.append(got, i + fcgi::kHeaderSize, h.content_length);
        i += fcgi::kHeaderSize + h.content_length + h.padding;
    }
    CHECK(i == got.size());
    CHECK(body == big);
}

// What the peer can read right now, without waiting.
std::string available(int fd) {
    std::string got;
    char buf[65536];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        got.append(buf, static_cast<size_t>(n));
    return got;
}

TEST_CASE("fastcgi: output leaves when php-fpm's 8 KB buffer would send it, in its records") {
    Pair p;
    p.send(begin(1, false) + record(fcgi::kParams, 1, "") + record(fcgi::kStdin, 1, ""));
    fcgi::Request req;
    REQUIRE(p.conn.read_request(req) == fcgi::Connection::Next::Request);
    std::string small(100, 's');
    CHECK(p.conn.write(fcgi::kStdout, small.data(), small.size()));
    CHECK(available(p.fds[1]).empty()); // it fits: held
    // Overflowing by less than a buffer: the buffer is filled and sent, the
    // rest starts the next one (fcgi_write).
    std::string more(9000, 'm');
    CHECK(p.conn.write(fcgi::kStdout, more.data(), more.size()));
    std::string first = available(p.fds[1]);
    CHECK(first == record(fcgi::kStdout, 1, small + more.substr(0, 8084)));
    // More than a buffer beyond: straight out, in a record of a multiple of 8
    // bytes; the last 3 bytes stay buffered.
    std::string big(20003, 'b');
    CHECK(p.conn.write(fcgi::kStdout, big.data(), big.size()));
    std::string second = available(p.fds[1]);
    CHECK(second == record(fcgi::kStdout, 1, more.substr(8084), 4) +
                        record(fcgi::kStdout, 1, big.substr(0, 20000)));
    CHECK(p.conn.end_request());
    CHECK(available(p.fds[1]) == record(fcgi::kStdout, 1, big.substr(20000), 5) +
                                     record(fcgi::kEndRequest, 1, std::string(8, '\0')));
}

TEST_CASE("fastcgi: a flush with nothing buffered still finds the peer gone") {
    Pair p;
    p.send(begin(1, true) + record(fcgi::kParams, 1, "") + record(fcgi::kStdin, 1, ""));
    fcgi::Request req;
    REQUIRE(p.conn.read_request(req) == fcgi::Connection::Next::Request);
    CHECK(p.conn.flush());
    close(p.fds[1]);
    p.fds[1] = -1;
    CHECK_FALSE(p.conn.flush());
    CHECK_FALSE(p.conn.keep());
}

TEST_CASE("fastcgi: output to a peer that is gone fails, and the connection is not kept") {
    Pair p;
    p.send(begin(1, true) + record(fcgi::kParams, 1, "") + record(fcgi::kStdin, 1, ""));
    fcgi::Request req;
    REQUIRE(p.conn.read_request(req) == fcgi::Connection::Next::Request);
    close(p.fds[1]);
    p.fds[1] = -1;
    std::string big(fcgi::Connection::kOutputBuffer, 'x');
    CHECK_FALSE(p.conn.write(fcgi::kStdout, big.data(), big.size()));
    CHECK_FALSE(p.conn.end_request());
    CHECK_FALSE(p.conn.keep());
}

TEST_CASE("fastcgi: a request has arrived once its params and a bounded body are there") {
    using fcgi::Arrival;
    auto judge = [](const std::string& bytes, size_t bound = 16) {
        std::string scratch;
        return fcgi::request_arrival(bytes, bound, scratch);
    };
    std::string params = pairs({{"SCRIPT_FILENAME", "/x.php"}, {"CONTENT_LENGTH", "10"}});
    std::string head = begin(1, false) + record(fcgi::kParams, 1, params);
    std::string all = head + record(fcgi::kParams, 1, "") + record(fcgi::kStdin, 1, "0123456789") +
                      record(fcgi::kStdin, 1, "");
    CHECK(judge("") == Arrival::Nothing);
    // every strict prefix that ends before the body's tenth byte is partial
    size_t body_end = all.size() - fcgi::kHeaderSize; // the empty STDIN is not needed
    for (size_t n = 1; n < body_end; ++n)
        CHECK_MESSAGE(judge(all.substr(0, n)) == Arrival::Partial, "prefix of " << n);
    CHECK(judge(all.substr(0, body_end)) == Arrival::Ready);
    CHECK(judge(all) == Arrival::Ready);
    // a body larger than the bound: ready once the bound's worth is there
    std::string big = pairs({{"CONTENT_LENGTH", "1000"}});
    std::string start =
        begin(1, false) + record(fcgi::kParams, 1, big) + record(fcgi::kParams, 1, "");
    CHECK(judge(start + record(fcgi::kStdin, 1, std::string(15, 'x'))) == Arrival::Partial);
    CHECK(judge(start + record(fcgi::kStdin, 1, std::string(16, 'x'))) == Arrival::Ready);
    CHECK(judge((start + record(fcgi::kStdin, 1, std::string(100, 'x')))
                    .substr(0, start.size() + 30)) == Arrival::Ready);
    // no body (GET, CONTENT_LENGTH empty or absent): ready at the params' end
    std::string get = begin(1, false) + record(fcgi::kParams, 1, pairs({{"CONTENT_LENGTH", ""}}));
    CHECK(judge(get) == Arrival::Partial);
    CHECK(judge(get + record(fcgi::kParams, 1, "")) == Arrival::Ready);
    // what reading refuses at once is never waited for
    CHECK(judge(record(fcgi::kBeginRequest, 1, std::string(9, '\0'))) == Arrival::Ready);
    CHECK(judge(record(fcgi::kAbortRequest, 1, "")) == Arrival::Ready);
    std::string bad = head;
    bad[0] = 0; // version 0
    CHECK(judge(bad) == Arrival::Ready);
    // empty STDIN and GET_VALUES before a request are skipped, as reading does
    std::string values = record(fcgi::kGetValues, 0, pairs({{"FCGI_MPXS_CONNS", ""}}));
    // GET_VALUES alone is answered at once (read_request answers, then waits)
    CHECK(judge(record(fcgi::kStdin, 1, "") + values) == Arrival::Ready);
    CHECK(judge(record(fcgi::kStdin, 1, "") + values + all.substr(0, 20)) == Arrival::Partial);
    CHECK(judge(record(fcgi::kStdin, 1, "") + values + all) == Arrival::Ready);
}
