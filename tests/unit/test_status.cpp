// Status page pieces that must match php-fpm byte for byte: json_encode's and
// htmlspecialchars' escapes, and the renderings of a fixed snapshot.
#include <doctest/doctest.h>

#include "lowphp/status.h"

using namespace lowphp::status;

TEST_CASE("escape_json behaves as json_encode with JSON_INVALID_UTF8_IGNORE") {
    CHECK(escape_json("/a&b\"é.php?q=<\"é>") == "\\/a&b\\\"\\u00e9.php?q=<\\\"\\u00e9>");
    CHECK(escape_json("tab\there\n") == "tab\\there\\n");
    CHECK(escape_json(std::string("\x01", 1)) == "\\u0001");
    CHECK(escape_json("\xf0\x9f\x98\x80") == "\\ud83d\\ude00"); // outside the BMP: a UTF-16 pair
    CHECK(escape_json(std::string("\x7f\xef\xbf\xbe", 4)) == "\x7f\\ufffe"); // kept: valid UTF-8
}

// Each expectation as php8.2-fpm's ?json&full showed it: PHP's decoder skips
// a broken sequence up to the next byte that may start a character.
TEST_CASE("escape_json drops broken UTF-8 as PHP's decoder does") {
    CHECK(escape_json("bad\xc3") == "bad");
    CHECK(escape_json("h\x80i\xffj\xc3(k") == "hij(k");
    CHECK(escape_json("b\xe2\x82") == "b");
    CHECK(escape_json("c\xf0\x9f\x98") == "c");
    CHECK(escape_json("d\xc0\xaf") == "d");         // overlong
    CHECK(escape_json("e\xf4\x90\x80\x80") == "e"); // above U+10FFFF
    CHECK(escape_json("i\xed\xa0\x80") == "i");     // a surrogate
    CHECK(escape_json("e\xe2\xff\x41") == "eA");
    CHECK(escape_json("f\xf0\x9f\x41") == "fA");
}

TEST_CASE("escape_html escapes & < > and double quotes") {
    CHECK(escape_html("/a&b\"'<x>") == "/a&amp;b&quot;'&lt;x&gt;");
    CHECK(escape_html("&amp;") == "&amp;amp;"); // double_encode
}

// As php8.2-fpm's ?html&full and ?xml&full showed them.
TEST_CASE("escape_html replaces what XML 1.0 forbids and empties broken UTF-8") {
    const std::string fffd = "\xef\xbf\xbd";
    CHECK(escape_html("a\x01"
                      "b\x08"
                      "c\x0b\x1f\te\x7f\n") ==
          "a" + fffd + "b" + fffd + "c" + fffd + fffd + "\te\x7f\n");
    CHECK(escape_html("\xc2\x85\xc3\xa9\xef\xb7\x90") ==
          "\xc2\x85\xc3\xa9\xef\xb7\x90"); // C1, é, U+FDD0 allowed
    CHECK(escape_html("f\xef\xbf\xbe\xef\xbf\xbf") ==
          "f\xef\xbf\xbd\xef\xbf\xbd"); // U+FFFE, U+FFFF
    CHECK(escape_html("ok<\x80") == "");
    CHECK(escape_html("i\xed\xa0\x80") == "");
}

namespace {
Snapshot sample() {
    Snapshot s;
    s.pool = {"www", "static", 0, 5, 42, 0, 0, 0, 1, 1, 2, 2, 0, 3};
    ProcStatus p;
    p.pid = 10;
    p.state = "Idle";
    p.requests = 7;
    p.request_duration_us = 1500;
    p.method = "GET";
    p.uri = "/x.php";
    p.query = "a=1&b=2";
    p.script = "/srv/x.php";
    p.last_memory = 2097152;
    s.procs.push_back(p);
    return s;
}
} // namespace

TEST_CASE("json status with full lists processes after the pool") {
    Page page = render(sample(), Format::Json, true);
    CHECK(page.content_type == "application/json");
    CHECK(page.body.find("\"slow requests\":3, \"processes\":[{\"pid\":10,\"state\":\"Idle\"") !=
          std::string::npos);
    CHECK(page.body.find("\"request uri\":\"\\/x.php?a=1&b=2\"") != std::string::npos);
    CHECK(page.body.find("\"user\":\"-\"") != std::string::npos);
    CHECK(page.body.substr(page.body.size() - 2) == "]}");
}

TEST_CASE("xml escapes the query, text keeps it") {
    CHECK(render(sample(), Format::Xml, true)
              .body.find("<request-uri>/x.php?a=1&amp;b=2</request-uri>") != std::string::npos);
    CHECK(
        render(sample(), Format::Text, true).body.find("request URI:          /x.php?a=1&b=2\n") !=
        std::string::npos);
}

TEST_CASE("openmetrics ignores full and ends with # EOF") {
    Page page = render(sample(), Format::OpenMetrics, true);
    CHECK(page.body.find("phpfpm_up 1\n") != std::string::npos);
    CHECK(page.body.find("pid") == std::string::npos);
    CHECK(page.body.find(
              "# TYPE phpfpm_listen_queue_length gauge\n# HELP phpfpm_listen_queue_length") !=
          std::string::npos);
    CHECK(page.body.substr(page.body.size() - 6) == "# EOF\n");
}

TEST_CASE("connections.reuse counters appear in every format only when the pool has it on") {
    Snapshot s = sample();
    for (Format f : {Format::Text, Format::Html, Format::Xml, Format::Json, Format::OpenMetrics})
        for (const char* word : {"kept", "connection re", "connection_re"})
            CHECK(render(s, f, false).body.find(word) == std::string::npos);
    s.pool.connections_reuse = true;
    s.pool.kept_connections = 4;
    s.pool.reuses = 996;
    s.pool.resets = 990;
    s.pool.rollbacks = 2;
    s.pool.reconnects = 1;
    CHECK(render(s, Format::Text, false)
              .body.find("kept connections:     4\n"
                         "connection reuses:    996\n") != std::string::npos);
    CHECK(render(s, Format::Html, false).body.find("<tr><th>connection rollbacks</th><td>2</td>") !=
          std::string::npos);
    CHECK(render(s, Format::Xml, false).body.find("<connection-resets>990</connection-resets>") !=
          std::string::npos);
    CHECK(render(s, Format::Json, false).body.find("\"connection reconnects\":1") !=
          std::string::npos);
    CHECK(render(s, Format::OpenMetrics, false)
              .body.find("# TYPE phpfpm_connection_reuses counter") != std::string::npos);
    CHECK(render(s, Format::OpenMetrics, false).body.find("phpfpm_kept_connections 4\n") !=
          std::string::npos);
}
