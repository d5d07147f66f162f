// pgsql[], mysql[], redis[], connections.max[] and connections.wait_timeout
// (lowphp additions): parsing, defaults, errors and -tt masking.
#include <doctest/doctest.h>
#include <fstream>
#include <unistd.h>

#include "lowphp/config.h"

using namespace lowphp::config;

namespace {

const std::string kPool = "[www]\nlisten = 9000\npm = static\npm.max_children = 4\n";

ParseResult load_pool(const std::string& extra) {
    static int n = 0;
    std::string path = "/tmp/lowphp_test_backends_" + std::to_string(getpid()) + "_" +
                       std::to_string(++n) + ".conf";
    std::ofstream(path) << kPool << extra;
    ParseOptions opts;
    opts.default_prefix = "/usr";
    ParseResult r = load(path, opts);
    unlink(path.c_str());
    return r;
}

std::string first_error(const std::string& extra) {
    ParseResult r = load_pool(extra);
    CHECK_FALSE(r.config);
    return r.messages.empty() ? "" : r.messages.front().text;
}

bool dump_has(const Config& cfg, const std::string& line) {
    for (const auto& l : dump(cfg))
        if (l == line) return true;
    return false;
}

} // namespace

TEST_CASE("backends: declared in order, capped by pm.max_children unless connections.max") {
    ParseResult r =
        load_pool("pgsql[main] = \"host=127.0.0.1 port=5432 dbname=app user=app\"\n"
                  "mysql[shop] = \"host=127.0.0.1 user=app password='p w\\'x' dbname=shop\"\n"
                  "redis[cache] = \"host=127.0.0.1 port=6380 db=2\"\n"
                  "connections.max[main] = 2\nconnections.wait_timeout = 500ms\n");
    REQUIRE(r.config);
    const PoolConfig& p = r.config->pools[0];
    REQUIRE(p.backends.size() == 3);
    CHECK(p.backends[0].name == "main");
    CHECK(p.backends[0].kind == BackendKind::Pgsql);
    CHECK(p.backends[0].max == 2);
    CHECK(p.backends[1].kind == BackendKind::Mysql);
    CHECK(p.backends[1].option("password") == "p w'x");
    CHECK(p.backends[1].option("port", "3306") == "3306");
    CHECK(p.backends[1].max == 4);
    CHECK(p.backends[2].option("db") == "2");
    CHECK(p.connections_wait_timeout_ms == 500);
    CHECK(dump_has(*r.config, "\tmysql[shop] = host=127.0.0.1 user=app password=*** dbname=shop"));
    CHECK(dump_has(*r.config, "\tconnections.max[main] = 2"));
    CHECK(dump_has(*r.config, "\tconnections.wait_timeout = 500ms"));
}

TEST_CASE("backends: a pool without any keeps php-fpm's -tt output") {
    ParseResult r = load_pool("");
    REQUIRE(r.config);
    CHECK(r.config->pools[0].backends.empty());
    for (const auto& l : dump(*r.config))
        CHECK(l.find("connections.") == std::string::npos);
}

TEST_CASE("backends: wrong declarations name the entry and what is wrong") {
    CHECK(first_error("mysql[db] = \"host=x hots=y\"\n")
              .find("unable to parse value for entry 'mysql[db]': unknown key 'hots'") !=
          std::string::npos);
    CHECK(first_error("pgsql[db] = \"host=x nonsense=1\"\n")
              .find("unable to parse value for entry 'pgsql[db]': invalid connection option "
                    "\"nonsense\"") != std::string::npos);
    CHECK(first_error("redis[r] = \"host='unterminated\"\n").find("unterminated quoted string") !=
          std::string::npos);
    CHECK(first_error("pgsql[a-b] = \"host=x\"\n").find("a backend name is 1 to 32 letters") !=
          std::string::npos);
    CHECK(first_error("pgsql[db] = \"host=x\"\nredis[db] = \"host=y\"\n")
              .find("the backend name 'db' is taken") != std::string::npos);
    CHECK(first_error("connections.max[nope] = 3\n") ==
          "[pool www] 'connections.max[nope]' names no pgsql[], mysql[] or redis[] backend");
    CHECK(first_error("pgsql[db] = \"host=x\"\nconnections.max[db] = 0\n")
              .find("must be between 1 and 1024") != std::string::npos);
    CHECK(first_error("connections.wait_timeout = 3h\n").find("unknown suffix") !=
          std::string::npos);
}

TEST_CASE("backends: the key=value grammar is libpq's") {
    std::vector<std::pair<std::string, std::string>> words;
    CHECK(parse_dsn_words(" a=1  b = 'x y' c='it\\'s' d=\\\\ ", words) == "");
    REQUIRE(words.size() == 4);
    CHECK(words[1].second == "x y");
    CHECK(words[2].second == "it's");
    CHECK(words[3].second == "\\");
    words.clear();
    CHECK(parse_dsn_words("a", words) == "missing \"=\" after \"a\"");
    BackendConfig uri;
    uri.dsn = "postgresql://app:secret@127.0.0.1/app";
    CHECK(masked_dsn(uri) == "postgresql://app:***@127.0.0.1/app");
}

TEST_CASE("connections.reuse: off by default, idle_timeout 60 s, both dumped by -tt once on") {
    ParseResult off = load_pool("");
    REQUIRE(off.config);
    CHECK_FALSE(off.config->pools[0].connections_reuse);
    CHECK(off.config->pools[0].connections_idle_timeout == 60);

    ParseResult on = load_pool("connections.reuse = on\nconnections.idle_timeout = 2m\n");
    REQUIRE(on.config);
    CHECK(on.config->pools[0].connections_reuse);
    CHECK(on.config->pools[0].connections_idle_timeout == 120);
    CHECK(dump_has(*on.config, "\tconnections.reuse = yes"));
    CHECK(dump_has(*on.config, "\tconnections.idle_timeout = 120s"));

    CHECK(first_error("connections.reuse = sometimes\n")
              .find("unable to parse value for entry 'connections.reuse'") != std::string::npos);
    CHECK(first_error("connections.idle_timeout = soon\n").find("connections.idle_timeout") !=
          std::string::npos);
}
