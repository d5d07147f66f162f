// Status page pieces that must match php-fpm byte for byte: json_encode's and
// htmlspecialchars' escapes, and the renderings of a fixed snapshot.
#include <doctest/doctest.h>

#include "lowphp/status.h"

using namespace lowphp::status;

TEST_CASE("escape_json behaves as json_encode without flags") {
    CHECK(escape_json("/a&b\"é.php?q=<\"é>") == "\\/a&b\\\"\\u00e9.php?q=<\\\"\\u00e9>");
    CHECK(escape_json("tab\there\n") == "tab\\there\\n");
    CHECK(escape_json(std::string("\x01", 1)) == "\\u0001");
    CHECK(escape_json("\xf0\x9f\x98\x80") == "\\ud83d\\ude00"); // outside the BMP: a UTF-16 pair
    CHECK(escape_json("bad\xc3") == "bad\\ufffd");
}

TEST_CASE("escape_html escapes & < > and double quotes") {
    CHECK(escape_html("/a&b\"'<x>") == "/a&amp;b&quot;'&lt;x&gt;");
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
