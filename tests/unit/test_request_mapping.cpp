// Request mapping against php-fpm 8.2: every row below without a "(source)" note
// was sent to a real php-fpm8.2 (same params, docroot /tmp/... renamed to
// /srv/www) and the expectations are what its $_SERVER showed, including the
// order of the entries.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lowphp/request_mapping.h"

using namespace lowphp::sapi;

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

const std::string R = "/srv/www";

// The filesystem php-fpm saw: regular files and directories.
const std::set<std::string> kFiles = {R + "/index.php", R + "/info.php", R + "/x.jpg",
                                      R + "/dir.php/x.php", R + "/../www/index.php"};
const std::set<std::string> kDirs = {"/", "/srv", R, R + "/sub", R + "/dir.php"};

bool fake_regular(const std::string& p) {
    return kFiles.count(p) > 0;
}
bool fake_exists(const std::string& p) {
    return kFiles.count(p) > 0 || kDirs.count(p) > 0;
}

struct Row {
    const char* name;
    Pairs params;                    // arrival order, after REQUEST_METHOD and DOCUMENT_ROOT
    std::vector<std::string> expect; // "NAME=value" for $_SERVER, "@uri=", "@pt=", "@self=", "@404"
    std::vector<std::string> order = {}; // $_SERVER order of the params, when checked
    bool fix_pathinfo = true;
    bool discard_path = false;
};

// php-fpm's param table: FCGI_ROLE, then the params as they arrived.
Pairs arrival(const Row& row) {
    Pairs all = {{"FCGI_ROLE", "RESPONDER"}, {"REQUEST_METHOD", "GET"}, {"DOCUMENT_ROOT", R}};
    for (const auto& [k, v] : row.params) {
        auto it = std::find_if(all.begin(), all.end(), [&](const auto& e) { return e.first == k; });
        if (v == "<unset>") {
            if (it != all.end()) all.erase(it);
        } else if (it != all.end()) {
            it->second = v;
        } else {
            all.emplace_back(k, v);
        }
    }
    return all;
}

// Apply the FCGI_PUTENV sequence with fcgi_hash semantics (in place, appended,
// removed), as the SAPI must.
Pairs apply_puts(Pairs table, const std::vector<ParamPut>& puts) {
    for (const auto& [k, v] : puts) {
        auto it =
            std::find_if(table.begin(), table.end(), [&](const auto& e) { return e.first == k; });
        if (!v) {
            if (it != table.end()) table.erase(it);
        } else if (it != table.end()) {
            it->second = *v;
        } else {
            table.emplace_back(k, *v);
        }
    }
    return table;
}

const char* const kWatched[] = {"SCRIPT_FILENAME", "SCRIPT_NAME",          "PATH_INFO",
                                "PATH_TRANSLATED", "ORIG_SCRIPT_NAME",     "ORIG_SCRIPT_FILENAME",
                                "ORIG_PATH_INFO",  "ORIG_PATH_TRANSLATED", "DOCUMENT_ROOT"};

std::string lookup(const Pairs& table, const std::string& name) {
    for (const auto& [k, v] : table)
        if (k == name) return name + "=" + v;
    return name + " absent";
}

std::string expected(const Row& row, const std::string& name) {
    for (const auto& e : row.expect)
        if (e.rfind(name + "=", 0) == 0 || e == name + " absent") return e;
    if (name == "DOCUMENT_ROOT") return name + "=" + R; // given by every row but one
    return name + " absent";
}

void check_row(const Row& row, const MappingOptions& opts_in = {}) {
    std::string name = row.name;
    CAPTURE(name);
    Pairs table = arrival(row);
    Params params(table.begin(), table.end());
    MappingOptions opts = opts_in;
    opts.fix_pathinfo = row.fix_pathinfo;
    opts.discard_path = row.discard_path;
    RequestInfo info = map_request(params, opts, fake_regular, fake_exists);
    Pairs after = apply_puts(table, info.puts);
    for (const char* name : kWatched)
        CHECK(lookup(after, name) == expected(row, name));
    // `changed` is the end state of `puts`.
    for (const auto& [k, v] : info.changed)
        CHECK(lookup(after, k) == (v ? k + "=" + *v : k + " absent"));
    CHECK("@uri=" + info.request_uri.value_or("<null>") == expected(row, "@uri"));
    CHECK("@pt=" + info.path_translated.value_or("<null>") == expected(row, "@pt"));
    CHECK("@self=" + info.php_self == expected(row, "@self"));
    bool not_found = std::find(row.expect.begin(), row.expect.end(), "@404") != row.expect.end();
    CHECK(info.script_not_found == not_found);
    if (row.order.empty()) return;
    std::vector<std::string> order; // $_SERVER lists php-fpm's table newest first
    for (auto it = after.rbegin(); it != after.rend(); ++it)
        order.push_back(it->first);
    CHECK(order == row.order);
}

// nginx: fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name, with
// or without fastcgi_split_path_info / PATH_INFO.
const std::vector<Row> kNginxRows = {
    {"plain",
     {{"SCRIPT_FILENAME", R + "/index.php"}, {"SCRIPT_NAME", "/index.php"}},
     {"SCRIPT_FILENAME=" + R + "/index.php", "SCRIPT_NAME=/index.php", "@uri=/index.php",
      "@pt=" + R + "/index.php", "@self=/index.php"},
     {"SCRIPT_NAME", "SCRIPT_FILENAME", "DOCUMENT_ROOT", "REQUEST_METHOD", "FCGI_ROLE"}},
    {"split_path_info: /index.php/foo/bar",
     {{"SCRIPT_FILENAME", R + "/index.php"},
      {"SCRIPT_NAME", "/index.php"},
      {"PATH_INFO", "/foo/bar"}},
     {"SCRIPT_FILENAME=" + R + "/index.php", "SCRIPT_NAME=/index.php", "PATH_INFO=/foo/bar",
      "@uri=/index.php", "@pt=" + R + "/index.php", "@self=/index.php/foo/bar"}},
    {"no split: /index.php/foo/bar, no PATH_INFO",
     {{"SCRIPT_FILENAME", R + "/index.php/foo/bar"}, {"SCRIPT_NAME", "/index.php/foo/bar"}},
     {"SCRIPT_FILENAME=" + R + "/index.php", "ORIG_SCRIPT_FILENAME=" + R + "/index.php/foo/bar",
      "SCRIPT_NAME=/index.php/foo/bar", "PATH_TRANSLATED=" + R, "@uri=/index.php/foo/bar",
      "@pt=" + R + "/index.php", "@self=/index.php/foo/bar"},
     {"PATH_TRANSLATED", "ORIG_SCRIPT_FILENAME", "SCRIPT_NAME", "SCRIPT_FILENAME", "DOCUMENT_ROOT",
      "REQUEST_METHOD", "FCGI_ROLE"}},
    {"no split, PATH_INFO = whole URI",
     {{"SCRIPT_FILENAME", R + "/index.php/foo/bar"},
      {"SCRIPT_NAME", "/index.php/foo/bar"},
      {"PATH_INFO", "/index.php/foo/bar"}},
     {"SCRIPT_FILENAME=" + R + "/index.php", "ORIG_SCRIPT_FILENAME=" + R + "/index.php/foo/bar",
      "SCRIPT_NAME=/index.php", "ORIG_SCRIPT_NAME=/index.php/foo/bar", "PATH_INFO=/foo/bar",
      "ORIG_PATH_INFO=/index.php/foo/bar", "PATH_TRANSLATED=" + R + "/foo/bar", "@uri=/index.php",
      "@pt=" + R + "/index.php", "@self=/index.php/foo/bar"},
     {"PATH_TRANSLATED", "ORIG_SCRIPT_FILENAME", "ORIG_SCRIPT_NAME", "ORIG_PATH_INFO", "PATH_INFO",
      "SCRIPT_NAME", "SCRIPT_FILENAME", "DOCUMENT_ROOT", "REQUEST_METHOD", "FCGI_ROLE"}},
    {"trailing slash",
     {{"SCRIPT_FILENAME", R + "/index.php/"}, {"SCRIPT_NAME", "/index.php/"}},
     {"SCRIPT_FILENAME=" + R + "/index.php", "ORIG_SCRIPT_FILENAME=" + R + "/index.php/",
      "SCRIPT_NAME=/index.php/", "PATH_TRANSLATED=" + R, "@uri=/index.php/",
      "@pt=" + R + "/index.php", "@self=/index.php/"}},
    {"trailing slash, PATH_INFO '/' no longer than the cut: kept as is",
     {{"SCRIPT_FILENAME", R + "/index.php/"}, {"SCRIPT_NAME", "/index.php/"}, {"PATH_INFO", "/"}},
     {"SCRIPT_FILENAME=" + R + "/index.php", "ORIG_SCRIPT_FILENAME=" + R + "/index.php/",
      "SCRIPT_NAME=/index.php/", "PATH_INFO=/", "PATH_TRANSLATED=" + R + "/", "@uri=/index.php/",
      "@pt=" + R + "/index.php", "@self=/index.php//"}},
    {"missing file: 404",
     {{"SCRIPT_FILENAME", R + "/nope.php"}, {"SCRIPT_NAME", "/nope.php"}},
     {"ORIG_SCRIPT_FILENAME=" + R + "/nope.php", "SCRIPT_NAME=/nope.php", "@uri=/nope.php",
      "@pt=<null>", "@self=/nope.php", "@404"}},
    {"a directory exists: mapped as is (php-fpm then fails to open it)",
     {{"SCRIPT_FILENAME", R + "/sub"}, {"SCRIPT_NAME", "/sub"}},
     {"SCRIPT_FILENAME=" + R + "/sub", "SCRIPT_NAME=/sub", "@uri=/sub", "@pt=" + R + "/sub",
      "@self=/sub"}},
    {"a file under a directory named *.php",
     {{"SCRIPT_FILENAME", R + "/dir.php/x.php"}, {"SCRIPT_NAME", "/dir.php/x.php"}},
     {"SCRIPT_FILENAME=" + R + "/dir.php/x.php", "SCRIPT_NAME=/dir.php/x.php",
      "@uri=/dir.php/x.php", "@pt=" + R + "/dir.php/x.php", "@self=/dir.php/x.php"}},
    {"no DOCUMENT_ROOT: PATH_TRANSLATED = script - SCRIPT_NAME + PATH_INFO",
     {{"SCRIPT_FILENAME", R + "/index.php/foo"},
      {"SCRIPT_NAME", "/index.php"},
      {"PATH_INFO", "/index.php/foo"},
      {"DOCUMENT_ROOT", "<unset>"}},
     {"DOCUMENT_ROOT absent", "SCRIPT_FILENAME=" + R + "/index.php",
      "ORIG_SCRIPT_FILENAME=" + R + "/index.php/foo", "SCRIPT_NAME=/index.php", "PATH_INFO=/foo",
      "ORIG_PATH_INFO=/index.php/foo", "PATH_TRANSLATED=" + R + "/foo", "@uri=/index.php",
      "@pt=" + R + "/index.php", "@self=/index.php/foo"}},
    {"PATH_TRANSLATED given and rewritten",
     {{"SCRIPT_FILENAME", R + "/index.php/foo"},
      {"SCRIPT_NAME", "/index.php"},
      {"PATH_INFO", "/index.php/foo"},
      {"PATH_TRANSLATED", R + "/foo"}},
     {"SCRIPT_FILENAME=" + R + "/index.php", "ORIG_SCRIPT_FILENAME=" + R + "/index.php/foo",
      "SCRIPT_NAME=/index.php", "PATH_INFO=/foo", "ORIG_PATH_INFO=/index.php/foo",
      "PATH_TRANSLATED=" + R + "/foo", "ORIG_PATH_TRANSLATED=" + R + "/foo", "@uri=/index.php",
      "@pt=" + R + "/index.php", "@self=/index.php/foo"},
     {"ORIG_PATH_TRANSLATED", "ORIG_SCRIPT_FILENAME", "ORIG_PATH_INFO", "PATH_TRANSLATED",
      "PATH_INFO", "SCRIPT_NAME", "SCRIPT_FILENAME", "DOCUMENT_ROOT", "REQUEST_METHOD",
      "FCGI_ROLE"}},
};

TEST_CASE("request mapping: nginx param sets, as php-fpm 8.2") {
    for (const Row& row : kNginxRows)
        check_row(row);
}

// CVE-2019-11043: a newline in the URL left nginx's PATH_INFO empty (or short)
// while SCRIPT_FILENAME kept the tail; php-fpm < 7.3.11 underflowed a pointer.
const std::vector<Row> kCveRows = {
    {"empty PATH_INFO: left untouched",
     {{"SCRIPT_FILENAME", R + "/index.php/AAAAAAAAAAAA"},
      {"SCRIPT_NAME", "/index.php/AAAAAAAAAAAA"},
      {"PATH_INFO", ""}},
     {"SCRIPT_FILENAME=" + R + "/index.php",
      "ORIG_SCRIPT_FILENAME=" + R + "/index.php/AAAAAAAAAAAA",
      "SCRIPT_NAME=/index.php/AAAAAAAAAAAA", "PATH_INFO=", "PATH_TRANSLATED=" + R,
      "@uri=/index.php/AAAAAAAAAAAA", "@pt=" + R + "/index.php", "@self=/index.php/AAAAAAAAAAAA"}},
    {"PATH_INFO shorter than the cut: left untouched",
     {{"SCRIPT_FILENAME", R + "/index.php/abcdef"},
      {"SCRIPT_NAME", "/index.php"},
      {"PATH_INFO", "/ab"}},
     {"SCRIPT_FILENAME=" + R + "/index.php", "ORIG_SCRIPT_FILENAME=" + R + "/index.php/abcdef",
      "SCRIPT_NAME=/index.php", "PATH_INFO=/ab", "PATH_TRANSLATED=" + R + "/ab", "@uri=/index.php",
      "@pt=" + R + "/index.php", "@self=/index.php/ab"}},
};

TEST_CASE("request mapping: CVE-2019-11043 underflow guard") {
    for (const Row& row : kCveRows)
        check_row(row);
}

// Apache mod_proxy_fcgi / mod_proxy_balancer (ProxyPass, no PATH_INFO unless
// proxy-fcgi-pathinfo is set).
const std::vector<Row> kApacheRows = {
    {"proxy:fcgi:// with path info and query",
     {{"SCRIPT_FILENAME", "proxy:fcgi://127.0.0.1:9000" + R + "/info.php/test?foo=bar"},
      {"SCRIPT_NAME", "/info.php/test"}},
     {"SCRIPT_FILENAME=" + R + "/info.php", "ORIG_SCRIPT_FILENAME=" + R + "/info.php/test",
      "SCRIPT_NAME=/info.php", "ORIG_SCRIPT_NAME=/info.php/test", "PATH_INFO=/test",
      "PATH_TRANSLATED=" + R + "/test", "@uri=/info.php", "@pt=" + R + "/info.php",
      "@self=/info.php/test"},
     {"PATH_TRANSLATED", "ORIG_SCRIPT_FILENAME", "PATH_INFO", "ORIG_SCRIPT_NAME", "SCRIPT_NAME",
      "SCRIPT_FILENAME", "DOCUMENT_ROOT", "REQUEST_METHOD", "FCGI_ROLE"}},
    {"PROXY:FCGI:// (any case) to an existing file: rewritten in place",
     {{"SCRIPT_FILENAME", "PROXY:FCGI://localhost" + R + "/info.php?x=1"},
      {"SCRIPT_NAME", "/info.php"}},
     {"SCRIPT_FILENAME=" + R + "/info.php", "SCRIPT_NAME=/info.php", "@uri=/info.php",
      "@pt=" + R + "/info.php", "@self=/info.php"},
     {"SCRIPT_NAME", "SCRIPT_FILENAME", "DOCUMENT_ROOT", "REQUEST_METHOD", "FCGI_ROLE"}},
    {"proxy:balancer://",
     {{"SCRIPT_FILENAME", "proxy:balancer://cluster" + R + "/index.php/a/b"},
      {"SCRIPT_NAME", "/index.php/a/b"}},
     {"SCRIPT_FILENAME=" + R + "/index.php", "ORIG_SCRIPT_FILENAME=" + R + "/index.php/a/b",
      "SCRIPT_NAME=/index.php", "ORIG_SCRIPT_NAME=/index.php/a/b", "PATH_INFO=/a/b",
      "PATH_TRANSLATED=" + R + "/a/b", "@uri=/index.php", "@pt=" + R + "/index.php",
      "@self=/index.php/a/b"}},
    {"proxy:fcgi:// with URL-encoded path info: SCRIPT_NAME carries it decoded (bug #74129)",
     {{"SCRIPT_FILENAME", "proxy:fcgi://127.0.0.1:9000" + R + "/info.php/1%202"},
      {"SCRIPT_NAME", "/info.php/1 2"}},
     {"SCRIPT_FILENAME=" + R + "/info.php", "ORIG_SCRIPT_FILENAME=" + R + "/info.php/1%202",
      "SCRIPT_NAME=/info.php", "ORIG_SCRIPT_NAME=/info.php/1 2", "PATH_INFO=/1%202",
      "PATH_TRANSLATED=" + R + "/1%202", "@uri=/info.php", "@pt=" + R + "/info.php",
      "@self=/info.php/1%202"}},
    {"proxy:fcgi:// without a path: only the query goes, then 404",
     {{"SCRIPT_FILENAME", "proxy:fcgi://localhost:9000?x"}, {"SCRIPT_NAME", "/x"}},
     {"ORIG_SCRIPT_FILENAME=proxy:fcgi://localhost:9000", "SCRIPT_NAME=/x", "@uri=/x", "@pt=<null>",
      "@self=/x", "@404"}},
    {"proxy-fcgi-pathinfo: same PATH_INFO",
     {{"SCRIPT_FILENAME", "proxy:fcgi://localhost" + R + "/info.php/test"},
      {"SCRIPT_NAME", "/info.php"},
      {"PATH_INFO", "/test"}},
     {"SCRIPT_FILENAME=" + R + "/info.php", "ORIG_SCRIPT_FILENAME=" + R + "/info.php/test",
      "SCRIPT_NAME=/info.php", "PATH_INFO=/test", "PATH_TRANSLATED=" + R + "/test",
      "@uri=/info.php", "@pt=" + R + "/info.php", "@self=/info.php/test"}},
    {"proxy with a different, shorter PATH_INFO: SCRIPT_NAME becomes it",
     {{"SCRIPT_FILENAME", "proxy:fcgi://localhost" + R + "/info.php/test"},
      {"SCRIPT_NAME", "/info.php"},
      {"PATH_INFO", "/x"}},
     {"SCRIPT_FILENAME=" + R + "/info.php", "ORIG_SCRIPT_FILENAME=" + R + "/info.php/test",
      "SCRIPT_NAME=/x", "ORIG_SCRIPT_NAME=/info.php", "PATH_INFO=/test", "ORIG_PATH_INFO=/x",
      "PATH_TRANSLATED=" + R + "/test", "@uri=/x", "@pt=" + R + "/info.php", "@self=/x/test"},
     {"PATH_TRANSLATED", "ORIG_SCRIPT_FILENAME", "ORIG_SCRIPT_NAME", "ORIG_PATH_INFO", "PATH_INFO",
      "SCRIPT_NAME", "SCRIPT_FILENAME", "DOCUMENT_ROOT", "REQUEST_METHOD", "FCGI_ROLE"}},
    {"mod_fastcgi: SCRIPT_FILENAME is php, REDIRECT_URL + PATH_TRANSLATED the script",
     {{"SCRIPT_FILENAME", "/usr/lib/cgi-bin/php"},
      {"PATH_TRANSLATED", R + "/info.php"},
      {"REDIRECT_URL", "/info.php"},
      {"SCRIPT_NAME", "/cgi-bin/php"},
      {"PATH_INFO", "/info.php"}},
     {"SCRIPT_FILENAME=" + R + "/info.php", "ORIG_SCRIPT_FILENAME=/usr/lib/cgi-bin/php",
      "SCRIPT_NAME=/info.php", "ORIG_SCRIPT_NAME=/cgi-bin/php", "ORIG_PATH_INFO=/info.php",
      "ORIG_PATH_TRANSLATED=" + R + "/info.php", "@uri=/info.php", "@pt=" + R + "/info.php",
      "@self=/info.php"},
     {"ORIG_SCRIPT_NAME", "ORIG_PATH_TRANSLATED", "ORIG_PATH_INFO", "ORIG_SCRIPT_FILENAME",
      "SCRIPT_NAME", "REDIRECT_URL", "SCRIPT_FILENAME", "DOCUMENT_ROOT", "REQUEST_METHOD",
      "FCGI_ROLE"}},
    {"IIS: SCRIPT_NAME repeated at the start of PATH_INFO",
     {{"SERVER_SOFTWARE", "Microsoft-IIS/10.0"},
      {"SCRIPT_FILENAME", R + "/index.php"},
      {"SCRIPT_NAME", "/index.php"},
      {"PATH_INFO", "/index.php/foo"}},
     {"SCRIPT_FILENAME=" + R + "/index.php", "SCRIPT_NAME=/index.php", "PATH_INFO=/foo",
      "ORIG_PATH_INFO=/index.php/foo", "@uri=/index.php", "@pt=" + R + "/index.php",
      "@self=/index.php/foo"}},
    {"IIS: nothing after SCRIPT_NAME: PATH_INFO removed",
     {{"SERVER_SOFTWARE", "Microsoft-IIS/10.0"},
      {"SCRIPT_FILENAME", R + "/index.php"},
      {"SCRIPT_NAME", "/index.php"},
      {"PATH_INFO", "/index.php"}},
     {"SCRIPT_FILENAME=" + R + "/index.php", "SCRIPT_NAME=/index.php", "ORIG_PATH_INFO=/index.php",
      "@uri=/index.php", "@pt=" + R + "/index.php", "@self=/index.php"},
     {"ORIG_PATH_INFO", "SCRIPT_NAME", "SCRIPT_FILENAME", "SERVER_SOFTWARE", "DOCUMENT_ROOT",
      "REQUEST_METHOD", "FCGI_ROLE"}},
};

TEST_CASE("request mapping: Apache proxy prefixes, mod_fastcgi and IIS") {
    for (const Row& row : kApacheRows)
        check_row(row);
}

const std::vector<Row> kPathTranslatedRows = {
    {"no SCRIPT_FILENAME, PATH_TRANSLATED with path info",
     {{"PATH_TRANSLATED", R + "/index.php/foo"}, {"SCRIPT_NAME", "/index.php/foo"}},
     {"SCRIPT_FILENAME=" + R + "/index.php", "SCRIPT_NAME=/index.php/foo", "PATH_TRANSLATED=" + R,
      "ORIG_PATH_TRANSLATED=" + R + "/index.php/foo", "@uri=/index.php/foo",
      "@pt=" + R + "/index.php", "@self=/index.php/foo"},
     {"ORIG_PATH_TRANSLATED", "SCRIPT_FILENAME", "SCRIPT_NAME", "PATH_TRANSLATED", "DOCUMENT_ROOT",
      "REQUEST_METHOD", "FCGI_ROLE"}},
    {"no SCRIPT_FILENAME, PATH_TRANSLATED is the script: SCRIPT_FILENAME added",
     {{"PATH_TRANSLATED", R + "/index.php"}, {"SCRIPT_NAME", "/index.php"}},
     {"SCRIPT_FILENAME=" + R + "/index.php", "SCRIPT_NAME=/index.php",
      "PATH_TRANSLATED=" + R + "/index.php", "@uri=/index.php", "@pt=" + R + "/index.php",
      "@self=/index.php"},
     {"SCRIPT_FILENAME", "SCRIPT_NAME", "PATH_TRANSLATED", "DOCUMENT_ROOT", "REQUEST_METHOD",
      "FCGI_ROLE"}},
    {"neither: nothing mapped (php-fpm answers 404 File not found.)",
     {{"SCRIPT_NAME", "/index.php"}},
     {"SCRIPT_NAME=/index.php", "@uri=<null>", "@pt=<null>", "@self="}},
    {"'..' segment: mapped but not run",
     {{"SCRIPT_FILENAME", R + "/../www/index.php"}, {"SCRIPT_NAME", "/index.php"}},
     {"SCRIPT_FILENAME=" + R + "/../www/index.php", "SCRIPT_NAME=/index.php", "@uri=/index.php",
      "@pt=<null>", "@self=/index.php"}},
    {"'\\' is cut only when no '/' is left",
     {{"SCRIPT_FILENAME", R + "/x.jpg\\foo/bar"}, {"SCRIPT_NAME", "/x.jpg"}},
     {"ORIG_SCRIPT_FILENAME=" + R + "/x.jpg\\foo/bar", "SCRIPT_NAME=/x.jpg", "@uri=/x.jpg",
      "@pt=<null>", "@self=/x.jpg", "@404"}},
    // (source) php-fpm8.2's child dies on this request before answering.
    {"empty SCRIPT_FILENAME takes the 'exists' branch",
     {{"SCRIPT_FILENAME", ""}, {"SCRIPT_NAME", "/index.php"}},
     {"SCRIPT_FILENAME=", "SCRIPT_NAME=/index.php", "@uri=/index.php", "@pt=", "@self=/index.php"}},
};

TEST_CASE("request mapping: PATH_TRANSLATED fallback and refused paths") {
    for (const Row& row : kPathTranslatedRows)
        check_row(row);
}

const std::vector<Row> kNoFixRows = {
    {"fix_pathinfo=0: request_uri is PATH_INFO, PHP_SELF too",
     {{"SCRIPT_FILENAME", R + "/index.php"},
      {"SCRIPT_NAME", "/index.php"},
      {"PATH_INFO", "/foo/bar"}},
     {"SCRIPT_FILENAME=" + R + "/index.php", "SCRIPT_NAME=/index.php", "PATH_INFO=/foo/bar",
      "@uri=/foo/bar", "@pt=" + R + "/index.php", "@self=/foo/bar"},
     {},
     false},
    {"fix_pathinfo=0: no walk (php-fpm then fails to open it)",
     {{"SCRIPT_FILENAME", R + "/index.php/foo/bar"}, {"SCRIPT_NAME", "/index.php/foo/bar"}},
     {"SCRIPT_FILENAME=" + R + "/index.php/foo/bar", "SCRIPT_NAME=/index.php/foo/bar",
      "@uri=/index.php/foo/bar", "@pt=" + R + "/index.php/foo/bar", "@self=/index.php/foo/bar"},
     {},
     false},
    {"fix_pathinfo=0: PATH_TRANSLATED wins over SCRIPT_FILENAME",
     {{"SCRIPT_FILENAME", R + "/index.php"},
      {"SCRIPT_NAME", "/index.php"},
      {"PATH_INFO", "/foo"},
      {"PATH_TRANSLATED", R + "/info.php"}},
     {"SCRIPT_FILENAME=" + R + "/index.php", "SCRIPT_NAME=/index.php", "PATH_INFO=/foo",
      "PATH_TRANSLATED=" + R + "/info.php", "@uri=/foo", "@pt=" + R + "/info.php", "@self=/foo"},
     {},
     false},
    {"fix_pathinfo=0 + discard_path: SCRIPT_FILENAME runs",
     {{"SCRIPT_FILENAME", R + "/index.php"},
      {"SCRIPT_NAME", "/index.php"},
      {"PATH_INFO", "/foo"},
      {"PATH_TRANSLATED", R + "/info.php"}},
     {"SCRIPT_FILENAME=" + R + "/index.php", "SCRIPT_NAME=/index.php", "PATH_INFO=/foo",
      "PATH_TRANSLATED=" + R + "/info.php", "@uri=/foo", "@pt=" + R + "/index.php", "@self=/foo"},
     {},
     false,
     true},
    {"fix_pathinfo=0, only PATH_TRANSLATED: no SCRIPT_FILENAME in $_SERVER",
     {{"PATH_TRANSLATED", R + "/index.php"}, {"SCRIPT_NAME", "/index.php"}},
     {"SCRIPT_NAME=/index.php", "PATH_TRANSLATED=" + R + "/index.php", "@uri=/index.php",
      "@pt=" + R + "/index.php", "@self=/index.php"},
     {},
     false},
};

TEST_CASE("request mapping: cgi.fix_pathinfo=0 and cgi.discard_path") {
    for (const Row& row : kNoFixRows)
        check_row(row);
}

TEST_CASE("request mapping: php.ini doc_root stands in for DOCUMENT_ROOT (source)") {
    Row row{"doc_root",
            {{"DOCUMENT_ROOT", "<unset>"},
             {"SCRIPT_FILENAME", R + "/index.php/foo"},
             {"SCRIPT_NAME", "/index.php/foo"}},
            {"DOCUMENT_ROOT=" + R + "/", "SCRIPT_FILENAME=" + R + "/index.php",
             "ORIG_SCRIPT_FILENAME=" + R + "/index.php/foo", "SCRIPT_NAME=/index.php/foo",
             "PATH_TRANSLATED=" + R, "@uri=/index.php/foo", "@pt=" + R + "/index.php",
             "@self=/index.php/foo"}};
    MappingOptions opts;
    opts.doc_root = R + "/";
    check_row(row, opts);
}

TEST_CASE("request mapping: method, query, content type and length") {
    Params p = {{"REQUEST_METHOD", "POST"},
                {"SCRIPT_FILENAME", R + "/index.php"},
                {"QUERY_STRING", "a=b"},
                {"CONTENT_LENGTH", "12abc"}};
    RequestInfo info = map_request(p, {}, fake_regular, fake_exists);
    CHECK(info.request_method == "POST");
    CHECK(info.query_string == "a=b");
    CHECK(info.content_type == "");   // php-fpm: "" when the param is missing
    CHECK(info.content_length == 12); // atol
    CHECK(info.script_path_given);

    // Without a script only the method is set (and the SAPI skips auth data).
    RequestInfo none = map_request({{"REQUEST_METHOD", "GET"}, {"QUERY_STRING", "x"}}, {},
                                   fake_regular, fake_exists);
    CHECK(none.request_method == "GET");
    CHECK_FALSE(none.query_string);
    CHECK_FALSE(none.content_type);
    CHECK_FALSE(none.script_path_given);
    CHECK(none.puts.empty());

    RequestInfo no_method =
        map_request({{"SCRIPT_FILENAME", R + "/index.php"}}, {}, fake_regular, fake_exists);
    CHECK_FALSE(no_method.request_method);
}

TEST_CASE("request mapping: is_valid_path") {
    CHECK(is_valid_path("/srv/www/index.php"));
    CHECK(is_valid_path("/srv/www/a..b/x.php"));
    CHECK(is_valid_path("/srv/www/..x"));
    CHECK_FALSE(is_valid_path("/srv/www/../x.php"));
    CHECK_FALSE(is_valid_path("../x.php"));
    CHECK_FALSE(is_valid_path("/srv/www/.."));
    CHECK(is_valid_path("/srv/www\\..\\x.php")); // '\\' is no separator on Unix
}

TEST_CASE("request mapping: httpoxy is libphp's (sapi_getenv, check_http_proxy)") {
    CHECK(sapi_getenv_hides("HTTP_PROXY"));
    CHECK(sapi_getenv_hides("http_proxy"));
    CHECK(sapi_getenv_hides("HTTP")); // checked: getenv('HTTP') is false under php-fpm
    CHECK(sapi_getenv_hides(""));
    CHECK_FALSE(sapi_getenv_hides("HTTP_PROXY_X"));
    CHECK_FALSE(sapi_getenv_hides("HTTPS_PROXY"));
    CHECK_FALSE(server_http_proxy(true, std::nullopt)); // the param alone: removed
    CHECK(server_http_proxy(true, std::string("http://p")) == "http://p");
    CHECK_FALSE(server_http_proxy(false, std::string("http://p")));
}

} // namespace

// ---------------------------------------------------------------------------
// The same logic with a docroot of /doc and only the params a user's web
// server config decides, read as "what does PHP see".

namespace {

using Changed = std::map<std::string, std::optional<std::string>>;

// "/doc/../doc/index.php" resolves, as stat() would resolve it on a disk.
const std::set<std::string> kDocFiles = {"/doc/index.php", "/doc/img.png", "/doc/../doc/index.php"};
const std::set<std::string> kDocDirs = {"/", "/doc", "/doc/sub"};

RequestInfo map_doc(Params params, bool fix = true) {
    params.emplace("REQUEST_METHOD", "GET");
    params.emplace("DOCUMENT_ROOT", "/doc");
    MappingOptions opts;
    opts.fix_pathinfo = fix;
    return map_request(
        params, opts, [](const std::string& p) { return kDocFiles.count(p) > 0; },
        [](const std::string& p) { return kDocFiles.count(p) > 0 || kDocDirs.count(p) > 0; });
}

} // namespace

TEST_CASE("request mapping /doc: an existing script changes nothing") {
    RequestInfo info =
        map_doc({{"SCRIPT_FILENAME", "/doc/index.php"}, {"SCRIPT_NAME", "/index.php"}});
    CHECK(info.path_translated == "/doc/index.php");
    CHECK(info.request_uri == "/index.php");
    CHECK(info.changed.empty());
    CHECK_FALSE(info.script_not_found);
    CHECK(info.php_self == "/index.php");
}

TEST_CASE("request mapping /doc: /index.php/foo/bar without a PATH_INFO param") {
    RequestInfo info = map_doc(
        {{"SCRIPT_FILENAME", "/doc/index.php/foo/bar"}, {"SCRIPT_NAME", "/index.php/foo/bar"}});
    CHECK(info.path_translated == "/doc/index.php");
    CHECK(info.request_uri == "/index.php/foo/bar");
    CHECK(info.changed == Changed{{"SCRIPT_FILENAME", "/doc/index.php"},
                                  {"ORIG_SCRIPT_FILENAME", "/doc/index.php/foo/bar"},
                                  {"PATH_TRANSLATED", "/doc"}});
    CHECK_FALSE(info.script_not_found);
}

TEST_CASE("request mapping /doc: fastcgi_split_path_info params are left alone") {
    RequestInfo info = map_doc({{"SCRIPT_FILENAME", "/doc/index.php"},
                                {"SCRIPT_NAME", "/index.php"},
                                {"PATH_INFO", "/foo"}});
    CHECK(info.path_translated == "/doc/index.php");
    CHECK(info.request_uri == "/index.php");
    CHECK(info.changed.empty());
    CHECK(info.php_self == "/index.php/foo");
}

TEST_CASE("request mapping /doc: PATH_INFO longer than the cut gives its tail") {
    RequestInfo info = map_doc({{"SCRIPT_FILENAME", "/doc/index.php/foo"},
                                {"SCRIPT_NAME", "/index.php/foo"},
                                {"PATH_INFO", "/index.php/foo"}});
    CHECK(info.path_translated == "/doc/index.php");
    CHECK(info.request_uri == "/index.php");
    CHECK(info.changed == Changed{{"SCRIPT_FILENAME", "/doc/index.php"},
                                  {"ORIG_SCRIPT_FILENAME", "/doc/index.php/foo"},
                                  {"SCRIPT_NAME", "/index.php"},
                                  {"ORIG_SCRIPT_NAME", "/index.php/foo"},
                                  {"PATH_INFO", "/foo"},
                                  {"ORIG_PATH_INFO", "/index.php/foo"},
                                  {"PATH_TRANSLATED", "/doc/foo"}});
}

TEST_CASE("request mapping /doc: CVE-2019-11043, PATH_INFO shorter than the cut") {
    // nginx with a %0a in the URL: SCRIPT_FILENAME keeps a long tail while
    // PATH_INFO is short or empty. php-fpm >= 7.3.11 leaves PATH_INFO as is.
    for (const std::string pi : {"", "/", "/x"}) {
        CAPTURE(pi);
        RequestInfo info = map_doc({{"SCRIPT_FILENAME", "/doc/index.php/" + std::string(40, 'A')},
                                    {"SCRIPT_NAME", "/index.php"},
                                    {"PATH_INFO", pi}});
        CHECK(info.path_translated == "/doc/index.php");
        CHECK(info.request_uri == "/index.php");
        CHECK(info.changed.count("PATH_INFO") == 0);
        CHECK(info.changed.count("SCRIPT_NAME") == 0);
        CHECK(info.changed.at("SCRIPT_FILENAME") == "/doc/index.php");
        CHECK(info.changed.at("PATH_TRANSLATED") == "/doc" + pi);
    }
    // A trailing slash only: one character cut, PATH_INFO "/" is not longer.
    RequestInfo slash = map_doc({{"SCRIPT_FILENAME", "/doc/index.php/"},
                                 {"SCRIPT_NAME", "/index.php/"},
                                 {"PATH_INFO", "/"}});
    CHECK(slash.path_translated == "/doc/index.php");
    CHECK(slash.changed.count("PATH_INFO") == 0);
    CHECK(slash.request_uri == "/index.php/");
}

TEST_CASE("request mapping /doc: a missing script is a 404") {
    RequestInfo info =
        map_doc({{"SCRIPT_FILENAME", "/doc/missing.php"}, {"SCRIPT_NAME", "/missing.php"}});
    CHECK(info.script_not_found);
    CHECK_FALSE(info.path_translated);
    CHECK(info.changed ==
          Changed{{"SCRIPT_FILENAME", std::nullopt}, {"ORIG_SCRIPT_FILENAME", "/doc/missing.php"}});
    CHECK(info.request_uri == "/missing.php");
    // Also with path info after it, and under a directory that exists.
    CHECK(
        map_doc({{"SCRIPT_FILENAME", "/doc/missing.php/a/b"}, {"SCRIPT_NAME", "/missing.php/a/b"}})
            .script_not_found);
    CHECK(map_doc({{"SCRIPT_FILENAME", "/doc/sub/x.php"}, {"SCRIPT_NAME", "/sub/x.php"}})
              .script_not_found);
}

TEST_CASE("request mapping /doc: Apache proxy:fcgi:// and proxy:balancer:// prefixes") {
    RequestInfo fcgi =
        map_doc({{"SCRIPT_FILENAME", "proxy:fcgi://localhost:9000/doc/index.php?x=1"},
                 {"SCRIPT_NAME", "/index.php"}});
    CHECK(fcgi.path_translated == "/doc/index.php");
    CHECK(fcgi.request_uri == "/index.php");
    CHECK(fcgi.changed == Changed{{"SCRIPT_FILENAME", "/doc/index.php"}});
    CHECK_FALSE(fcgi.script_not_found);

    RequestInfo bal = map_doc({{"SCRIPT_FILENAME", "proxy:balancer://mycluster/doc/index.php/p"},
                               {"SCRIPT_NAME", "/index.php/p"}});
    CHECK(bal.path_translated == "/doc/index.php");
    CHECK(bal.request_uri == "/index.php");
    CHECK(bal.changed.at("SCRIPT_FILENAME") == "/doc/index.php");
    CHECK(bal.changed.at("PATH_INFO") == "/p");
    CHECK(bal.changed.at("SCRIPT_NAME") == "/index.php");
    CHECK(bal.php_self == "/index.php/p");
}

TEST_CASE("request mapping /doc: cgi.fix_pathinfo=0") {
    RequestInfo with_pi = map_doc({{"SCRIPT_FILENAME", "/doc/index.php"},
                                   {"SCRIPT_NAME", "/index.php"},
                                   {"PATH_INFO", "/foo"}},
                                  false);
    CHECK(with_pi.request_uri == "/foo");
    CHECK(with_pi.path_translated == "/doc/index.php");
    CHECK(with_pi.changed.empty());
    RequestInfo no_pi =
        map_doc({{"SCRIPT_FILENAME", "/doc/index.php"}, {"SCRIPT_NAME", "/index.php"}}, false);
    CHECK(no_pi.request_uri == "/index.php");
    // No walk back, no 404 decision: the path is taken as given.
    RequestInfo tail = map_doc(
        {{"SCRIPT_FILENAME", "/doc/index.php/foo"}, {"SCRIPT_NAME", "/index.php/foo"}}, false);
    CHECK(tail.path_translated == "/doc/index.php/foo");
    CHECK_FALSE(tail.script_not_found);
}

TEST_CASE("request mapping /doc: PATH_TRANSLATED stands in for SCRIPT_FILENAME") {
    RequestInfo info =
        map_doc({{"PATH_TRANSLATED", "/doc/index.php"}, {"SCRIPT_NAME", "/index.php"}});
    CHECK(info.script_path_given);
    CHECK(info.path_translated == "/doc/index.php");
    CHECK(info.request_uri == "/index.php");
    CHECK(info.changed == Changed{{"SCRIPT_FILENAME", "/doc/index.php"}});
}

TEST_CASE("request mapping /doc: a '..' segment is never run") {
    RequestInfo info =
        map_doc({{"SCRIPT_FILENAME", "/doc/../doc/index.php"}, {"SCRIPT_NAME", "/index.php"}});
    CHECK_FALSE(info.script_not_found); // the file is there ...
    CHECK_FALSE(info.path_translated);  // ... but php-fpm refuses to run it
    RequestInfo dots =
        map_doc({{"SCRIPT_FILENAME", "/doc/a..b.php"}, {"SCRIPT_NAME", "/a..b.php"}});
    CHECK(dots.script_not_found); // an ordinary name: looked up (missing here)
}

TEST_CASE("request mapping /doc: CONTENT_LENGTH is read with atol") {
    auto length = [](const std::string& v) {
        return map_doc({{"SCRIPT_FILENAME", "/doc/index.php"}, {"CONTENT_LENGTH", v}})
            .content_length;
    };
    CHECK(length("42") == 42);
    CHECK(length("") == 0);
    CHECK(length("abc") == 0);
    CHECK(length("  7") == 7);
    CHECK(length("-5") == -5);
    CHECK(length("10x") == 10);
    CHECK(map_doc({{"SCRIPT_FILENAME", "/doc/index.php"}}).content_length == 0);
}
