// --migrate's plan: what carries over, what changes (listen addresses, pid,
// error_log, include), where lines and comments land.
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <unistd.h>

#include "lowphp/migrate.h"

using namespace lowphp::migrate;

namespace {

const std::string kDir = std::string(TEST_DATA_DIR) + "/migrate";

Plan plan_of(bool keep_listen = false) {
    Options o;
    o.source = kDir + "/php-fpm.conf";
    o.prefix = kDir; // include=pool.d/*.conf is relative to the prefix, as in php-fpm
    o.target_dir = "/etc/lowphp";
    o.keep_listen = keep_listen;
    return plan(o);
}

const Section& pool(const Plan& p, const std::string& name) {
    for (const auto& s : p.pools)
        if (s.name == name) return s;
    FAIL("no pool " << name);
    return p.pools.front();
}

const Change* change(const Section& s, const std::string& directive) {
    for (const auto& c : s.changed)
        if (c.directive == directive) return &c;
    return nullptr;
}

} // namespace

TEST_CASE("migrate: global pid, error_log and include change; other lines carry over") {
    Plan p = plan_of();
    REQUIRE(p.ok);
    REQUIRE(change(p.global, "pid"));
    CHECK(change(p.global, "pid")->to == "/run/lowphp/lowphp-fpm.pid");
    CHECK(change(p.global, "error_log")->to == "/var/log/lowphp-fpm.log");
    CHECK(change(p.global, "include")->to == "/etc/lowphp/pool.d/*.conf");
    REQUIRE(p.global.unchanged.size() == 1);
    CHECK(p.global.unchanged[0].first == "Log_Level"); // spelled as written
    CHECK(p.global.text.find("include=/etc/lowphp/pool.d/*.conf\n") != std::string::npos);
}

TEST_CASE("migrate: sockets move to /run/lowphp, a clash takes the pool's name, ports +1000") {
    Plan p = plan_of();
    REQUIRE(p.ok);
    REQUIRE(p.pools.size() == 3);
    CHECK(change(pool(p, "a"), "listen")->to == "/run/lowphp/lowphp-fpm.sock");
    CHECK(change(pool(p, "b"), "listen")->to == "/run/lowphp/b.sock");
    CHECK(change(pool(p, "b"), "pm.status_listen")->to == "127.0.0.1:64000"); // 66000 > 65535
    CHECK(change(pool(p, "c"), "listen")->to == "10000");
    CHECK(change(pool(p, "c"), "listen")->why.find("fastcgi_pass 10000;") != std::string::npos);
}

TEST_CASE("migrate: --keep-listen keeps every address") {
    Plan p = plan_of(true);
    REQUIRE(p.ok);
    for (const auto& s : p.pools)
        CHECK(s.changed.empty());
}

TEST_CASE("migrate: comments stay with their pool, array keys keep their case") {
    Plan p = plan_of();
    REQUIRE(p.ok);
    const Section& a = pool(p, "a");
    CHECK(a.text.rfind("; Pool a: its comment stays with it.\n[a]\n", 0) == 0);
    CHECK(a.text.find("php_admin_value[memory_limit] = 64M\n") != std::string::npos);
    CHECK(a.text.find("; lowphp-fpm --migrate: listen was /run/php/php8.2-fpm.sock\n"
                      "listen = /run/lowphp/lowphp-fpm.sock\n") != std::string::npos);
    const Section& c = pool(p, "c");
    REQUIRE(c.unchanged.size() == 3); // listen changed
    CHECK(c.unchanged[2].first == "env[Mixed_Case]");
    CHECK(c.unchanged[2].second == "kept");
}

TEST_CASE("migrate: lines land where the loader puts them (byte order mark, [ spaced ])") {
    std::string path = "/tmp/lowphp_test_migrate_" + std::to_string(getpid()) + ".conf";
    std::ofstream(path) << "\xEF\xBB\xBF[global]\n[ www ]\nlisten = 9000\npm = static\n"
                           "pm.max_children = 1\n";
    Options o;
    o.source = path;
    Plan p = plan(o);
    unlink(path.c_str());
    REQUIRE(p.ok);
    REQUIRE(p.pools.size() == 1);
    const Section& www = pool(p, " www "); // php-fpm 8.2 names it so too
    CHECK(www.text.rfind("[ www ]\n", 0) == 0);
    CHECK(change(www, "listen")->to == "10000");
}

TEST_CASE("migrate: an invalid source is refused with php-fpm's messages") {
    Options o;
    o.source = kDir + "/missing.conf";
    Plan p = plan(o);
    CHECK_FALSE(p.ok);
    CHECK_FALSE(p.messages.empty());
}
