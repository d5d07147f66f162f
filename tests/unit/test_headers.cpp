// Header block encoding against php-fpm 8.2: each expected block is what
// php-fpm8.2 wrote on FCGI_STDOUT for the PHP snippet named in the case
// (rows marked "(source)" follow fpm_main.c's sapi_cgi_send_headers only).
#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "lowphp/headers.h"

using namespace lowphp::sapi;

namespace {

const std::string kPowered = "X-Powered-By: PHP/8.2.36";
const std::string kHtml = "Content-type: text/html; charset=UTF-8"; // SAPI's default, added last

ResponseHead head(int status, std::vector<std::string> headers, std::string status_line = "") {
    ResponseHead h;
    h.status = status;
    h.status_line = std::move(status_line);
    h.headers = std::move(headers);
    return h;
}

std::string block(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines)
        out += l + "\r\n";
    return out + "\r\n";
}

} // namespace

TEST_CASE("header encoding: default 200 has no Status line") {
    CHECK(encode_head(head(200, {kPowered, kHtml})) == block({kPowered, kHtml}));
    // header('HTTP/1.1 200 OK'): still nothing.
    CHECK(encode_head(head(200, {kPowered, kHtml}, "HTTP/1.1 200 OK")) == block({kPowered, kHtml}));
}

TEST_CASE("header encoding: http_response_code() takes the reason from PHP's table") {
    CHECK(encode_head(head(404, {kPowered, kHtml})) ==
          block({"Status: 404 Not Found", kPowered, kHtml}));
    // Unknown codes go without a reason phrase.
    CHECK(encode_head(head(299, {kPowered, kHtml})) == block({"Status: 299", kPowered, kHtml}));
    CHECK(encode_head(head(600, {kPowered, kHtml})) == block({"Status: 600", kPowered, kHtml}));
}

TEST_CASE("header encoding: header('HTTP/1.x ...') keeps the script's reason") {
    CHECK(encode_head(head(500, {kPowered, kHtml}, "HTTP/1.1 500 Internal Server Error")) ==
          block({"Status: 500 Internal Server Error", kPowered, kHtml}));
    CHECK(encode_head(head(404, {kPowered, kHtml}, "HTTP/1.0 404 Gone Fishing")) ==
          block({"Status: 404 Gone Fishing", kPowered, kHtml}));
    CHECK(encode_head(head(503, {kPowered, kHtml}, "HTTP/1.1 503")) ==
          block({"Status: 503", kPowered, kHtml}));
}

TEST_CASE("header encoding: a script's own Status: header is written in its place") {
    const std::string teapot = "Status: 418 I'm a teapot";
    std::string expected = block({kPowered, teapot, kHtml});
    // Whether PHP recorded the code or not, the block is the same.
    CHECK(encode_head(head(200, {kPowered, teapot, kHtml})) == expected);
    CHECK(encode_head(head(418, {kPowered, teapot, kHtml})) == expected);
    // http_response_code(404); header('Status: 418 Teapot'): the header wins.
    CHECK(encode_head(head(404, {kPowered, "Status: 418 Teapot", kHtml})) ==
          block({kPowered, "Status: 418 Teapot", kHtml}));
    // header('Status: 200 Fine') on a 200 is still written.
    CHECK(encode_head(head(200, {kPowered, "Status: 200 Fine", kHtml})) ==
          block({kPowered, "Status: 200 Fine", kHtml}));
    // Only the first Status: header goes out.
    CHECK(encode_head(head(418, {kPowered, "Status: 418 A", "Status: 419 B", kHtml})) ==
          block({kPowered, "Status: 418 A", kHtml}));
    // After a generated Status line, the script's ones are dropped.
    CHECK(encode_head(head(500, {"Status: 418 A", kHtml}, "HTTP/1.1 500 Oops")) ==
          block({"Status: 500 Oops", kHtml}));
}

TEST_CASE("header encoding: Location gives 302 Found, unless another code was set") {
    CHECK(encode_head(head(302, {kPowered, "Location: /x", kHtml})) ==
          block({"Status: 302 Found", kPowered, "Location: /x", kHtml}));
    CHECK(encode_head(head(201, {kPowered, "Location: /x", kHtml})) ==
          block({"Status: 201 Created", kPowered, "Location: /x", kHtml}));
}

TEST_CASE("header encoding: multiple headers keep their order") {
    std::vector<std::string> hs = {kPowered,          "X-A: 1", "X-B: 2",
                                   "Set-Cookie: a=b", "X-A: 3", kHtml};
    CHECK(encode_head(head(200, hs)) == block(hs));
    // (source) an empty header would end the block early: skipped.
    CHECK(encode_head(head(200, {"X-A: 1", "", "X-B: 2"})) == block({"X-A: 1", "X-B: 2"}));
}

TEST_CASE("header encoding: 304 drops Content-Type, any case") {
    CHECK(encode_head(head(304, {kPowered, kHtml})) ==
          block({"Status: 304 Not Modified", kPowered}));
    CHECK(encode_head(head(304, {kPowered, "content-type: text/x"})) ==
          block({"Status: 304 Not Modified", kPowered}));
    // header('HTTP/1.1 304 Not Modified')
    CHECK(encode_head(head(304, {kPowered, kHtml}, "HTTP/1.1 304 Not Modified")) ==
          block({"Status: 304 Not Modified", kPowered}));
    // (source) the code inside the status line is the one that counts.
    CHECK(encode_head(head(500, {kHtml}, "HTTP/1.1 304 Not Modified")) ==
          block({"Status: 304 Not Modified"}));
}

TEST_CASE("header encoding: cgi.rfc2616_headers and cgi.nph") {
    ResponseHead rfc = head(500, {kPowered, kHtml}, "HTTP/1.1 500 X");
    rfc.rfc2616_headers = true;
    CHECK(encode_head(rfc) == block({"HTTP/1.1 500 X", kPowered, kHtml}));
    // Without a status line rfc2616 changes nothing.
    ResponseHead rfc_code = head(404, {kPowered, kHtml});
    rfc_code.rfc2616_headers = true;
    CHECK(encode_head(rfc_code) == block({"Status: 404 Not Found", kPowered, kHtml}));
    // nph: even 200 gets its Status line ...
    ResponseHead nph = head(200, {kPowered, kHtml});
    nph.nph = true;
    CHECK(encode_head(nph) == block({"Status: 200 OK", kPowered, kHtml}));
    // ... unless the script set one.
    ResponseHead nph_own = head(201, {kPowered, "Status: 201 Made", kHtml});
    nph_own.nph = true;
    CHECK(encode_head(nph_own) == block({kPowered, "Status: 201 Made", kHtml}));
}

TEST_CASE("header encoding: status line capped to php-fpm's 1024-byte buffer") {
    std::string reason(2000, 'r');
    std::string out = encode_head(head(500, {}, "HTTP/1.1 500 " + reason));
    std::string line = out.substr(0, out.find("\r\n"));
    CHECK(line.size() == 1023);
    CHECK(line.rfind("Status: 500 rrr", 0) == 0);
}

TEST_CASE("header encoding: reason_phrase matches php-fpm 8.2 for every code 100..999") {
    // Every code php-fpm8.2 wrote a reason for; all others got none.
    const std::vector<std::pair<int, const char*>> known = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {203, "Non-Authoritative Information"},
        {204, "No Content"},
        {205, "Reset Content"},
        {206, "Partial Content"},
        {300, "Multiple Choices"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {305, "Use Proxy"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {402, "Payment Required"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {407, "Proxy Authentication Required"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {411, "Length Required"},
        {412, "Precondition Failed"},
        {413, "Request Entity Too Large"},
        {414, "Request-URI Too Long"},
        {415, "Unsupported Media Type"},
        {416, "Requested Range Not Satisfiable"},
        {417, "Expectation Failed"},
        {426, "Upgrade Required"},
        {428, "Precondition Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {451, "Unavailable For Legal Reasons"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
        {506, "Variant Also Negotiates"},
        {511, "Network Authentication Required"}};
    size_t next = 0;
    for (int code = 100; code < 1000; ++code) {
        CAPTURE(code);
        bool is_known = next < known.size() && known[next].first == code;
        CHECK(reason_phrase(code) == (is_known ? known[next++].second : ""));
    }
    CHECK(reason_phrase(0) == "");
    CHECK(reason_phrase(-1) == "");
}

namespace {

size_t count(const std::string& hay, const std::string& needle) {
    size_t n = 0;
    for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1))
        ++n;
    return n;
}

} // namespace

TEST_CASE("header encoding: what a client of the web server sees") {
    // 200: no Status line, the block ends with exactly one blank line.
    std::string ok = encode_head(head(200, {"Content-Type: text/plain"}));
    CHECK(ok == "Content-Type: text/plain\r\n\r\n");
    CHECK(count(ok, "Status:") == 0);
    CHECK(count(ok, "\r\n\r\n") == 1);
    // No headers at all: only the blank line.
    CHECK(encode_head(head(200, {})) == "\r\n");
    CHECK(encode_head(head(404, {})) == "Status: 404 Not Found\r\n\r\n");

    // 404: the Status line comes first.
    std::string nf = encode_head(head(404, {"X-A: 1", "Content-Type: text/html"}));
    CHECK(nf.rfind("Status: 404 Not Found\r\n", 0) == 0);
    CHECK(nf == "Status: 404 Not Found\r\nX-A: 1\r\nContent-Type: text/html\r\n\r\n");

    // header("HTTP/1.1 500 Internal Server Error")
    CHECK(encode_head(head(500, {}, "HTTP/1.1 500 Internal Server Error")) ==
          "Status: 500 Internal Server Error\r\n\r\n");

    // header("Status: 418 I'm a teapot"): that line, once, no generated one.
    std::string tea = encode_head(head(418, {"Status: 418 I'm a teapot", "X-B: 2"}));
    CHECK(tea == "Status: 418 I'm a teapot\r\nX-B: 2\r\n\r\n");
    CHECK(count(tea, "Status:") == 1);
    // A lowercase status: header counts as the script's own too.
    CHECK(encode_head(head(418, {"status: 418 Teapot"})) == "status: 418 Teapot\r\n\r\n");

    // A code PHP has no reason for.
    CHECK(encode_head(head(299, {})) == "Status: 299\r\n\r\n");
    CHECK(reason_phrase(299) == "");
    CHECK(reason_phrase(418) == ""); // not in PHP 8.2's table either

    // 304 goes without Content-Type, other headers stay.
    CHECK(encode_head(
              head(304, {"ETag: \"x\"", "Content-Type: text/html", "Cache-Control: max-age=0"})) ==
          "Status: 304 Not Modified\r\nETag: \"x\"\r\nCache-Control: max-age=0\r\n\r\n");
    // Content-Type stays on every other code.
    CHECK(encode_head(head(200, {"Content-Type: text/html"})) == "Content-Type: text/html\r\n\r\n");

    // Empty lines would end the block early: skipped, order otherwise kept.
    CHECK(encode_head(head(201, {"", "Location: /new", "", "X-Z: z"})) ==
          "Status: 201 Created\r\nLocation: /new\r\nX-Z: z\r\n\r\n");
}
