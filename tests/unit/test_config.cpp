// Config parser tests. Every expectation was observed on Debian's php-fpm 8.2
// (php-fpm8.2 -tt -R -y file), which this module reproduces.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

#include "lowphp/config.h"

using namespace lowphp::config;

namespace {

const std::string kData = std::string(TEST_DATA_DIR) + "/config";
const std::string kPool = "[www]\nlisten = 9000\npm = static\npm.max_children = 2\n";

// Writes `text` to a fresh file and loads it; the path is returned for messages.
struct Loaded {
    std::string path;
    ParseResult r;
};

Loaded load_text(const std::string& text, ParseOptions opts = {}) {
    static int n = 0;
    std::string path = "/tmp/lowphp_test_config_" + std::to_string(getpid()) + "_" + std::to_string(++n) + ".conf";
    std::ofstream(path) << text;
    if (opts.default_prefix.empty()) opts.default_prefix = "/usr";
    Loaded l{path, load(path, opts)};
    unlink(path.c_str());
    return l;
}

std::vector<std::string> texts(const ParseResult& r) {
    std::vector<std::string> out;
    for (const auto& m : r.messages) out.push_back(m.text);
    return out;
}

// The pool's value of one -tt line, e.g. line(cfg, "\tlisten = ").
std::string dumped(const Config& cfg, const std::string& key) {
    for (const auto& l : dump(cfg))
        if (l.rfind("\t" + key + " = ", 0) == 0) return l.substr(key.size() + 4);
    return "<absent>";
}

std::string php_value(const std::string& raw) {
    Loaded l = load_text(kPool + "php_value[x] = " + raw + "\n");
    REQUIRE(l.r.config);
    return l.r.config->pools[0].php_values.at(0).value;
}

std::string one_error(const std::string& text) {
    Loaded l = load_text(text);
    CHECK_FALSE(l.r.config);
    return l.r.messages.empty() ? "" : l.r.messages.front().text;
}

} // namespace

TEST_CASE("config: defaults and the -tt dump of a minimal file") {
    Loaded l = load_text(kPool);
    REQUIRE(l.r.config);
    CHECK(l.r.messages.empty());
    std::vector<std::string> d = dump(*l.r.config);
    REQUIRE(d.size() == 61); // 19 global lines, 42 pool lines
    CHECK(d[0] == "[global]");
    CHECK(d[1] == "\tpid = undefined");
    CHECK(d[2] == "\terror_log = /var/log/php-fpm.log");
    CHECK(d[4] == "\tsyslog.facility = 24");
    CHECK(d[6] == "\tlog_level = unknown value");
    CHECK(d[17] == "\tsystemd_interval = 10s");
    CHECK(d[18] == " ");
    CHECK(d[19] == "[www]");
    CHECK(d[23] == "\tlisten = 9000");
    CHECK(d[24] == "\tlisten.backlog = -1");
    CHECK(d[39] == "\tpm.process_idle_timeout = 10");
    CHECK(d[44] == "\tping.response = undefined");
    CHECK(d[46] == "\taccess.format = undefined");
    CHECK(d[49] == "\trequest_slowlog_trace_depth = 20");
    CHECK(d[59] == "\tsecurity.limit_extensions = .php .phar");
    CHECK(d[60] == " ");
    const PoolConfig& p = l.r.config->pools[0];
    CHECK(p.listen_backlog == -1);
    CHECK(p.ping_response == "pong");
    CHECK(p.clear_env);
    CHECK(p.decorate_workers_output);
}

TEST_CASE("config: full.conf sets every directive type and dumps as php-fpm does") {
    ParseOptions o;
    o.default_prefix = "/usr";
    ParseResult r = load(kData + "/full.conf", o);
    REQUIRE(r.config);
    CHECK(r.messages.empty());
    const GlobalConfig& g = r.config->global;
    CHECK(g.pid == "/var/run/test.pid");
    CHECK(g.syslog_facility == "local3");
    CHECK_FALSE(g.log_buffering);
    CHECK(g.emergency_restart_interval == 60);
    CHECK(g.process_priority == -5);
    CHECK(g.rlimit_core == -1);
    CHECK(g.systemd_interval == 3600);
    const PoolConfig& p = r.config->pools.at(0);
    CHECK(p.listen == "/tmp/sock/www.sock");
    CHECK(p.pm == PmStyle::Dynamic);
    CHECK(p.pm_process_idle_timeout == 30);
    CHECK(p.request_terminate_timeout == 120);
    CHECK(p.access_log == "/tmp/log/www.access.log");
    CHECK(p.slowlog == "/tmp/log/www.slow.log");
    CHECK(p.ping_response == "pong pong");
    CHECK_FALSE(p.clear_env);
    CHECK(p.rlimit_core == 0);
    std::vector<std::string> d = dump(*r.config);
    CHECK(dumped(*r.config, "syslog.facility") == "152");
    CHECK(dumped(*r.config, "log_level") == "NOTICE");
    CHECK(dumped(*r.config, "rlimit_core") == "-1");
    CHECK(dumped(*r.config, "emergency_restart_interval") == "60s");
    CHECK(dumped(*r.config, "access.format") == "%R %u %{HTTP_HOST}e");
    auto it = std::find(d.begin(), d.end(), "\taccess.format = %R %u %{HTTP_HOST}e");
    REQUIRE(it != d.end());
    CHECK(*(it + 1) == "\taccess.suppress_path[] = /status");
    CHECK(*(it + 2) == "\taccess.suppress_path[] = /ping");
    CHECK(d[d.size() - 8] == "\tsecurity.limit_extensions = .php .php7");
    CHECK(d[d.size() - 7] == "\tenv[TMP] = /tmp");
    CHECK(d[d.size() - 4] == "\tphp_value[error_reporting] = 22527");
}

TEST_CASE("config: booleans as fpm_conf_set_boolean after the INI scanner") {
    auto daemonize = [](const std::string& v) {
        Loaded l = load_text("[global]\ndaemonize = " + v + "\n" + kPool);
        return l.r.config ? std::string(l.r.config->global.daemonize ? "yes" : "no") : l.r.messages.at(0).text;
    };
    for (const char* y : {"1", "yes", "on", "true", "TRUE", "On", "\"yes\"", "\"true\"", "'yes'", "1|0"})
        CHECK(daemonize(y) == "yes");
    for (const char* n : {"0", "", "no", "off", "none", "null", "NULL", "FaLsE", "\"0\"", "\"off\"", "\"no\""})
        CHECK(daemonize(n) == "no");
    for (const char* bad : {"2", "-1", "00", "\" 1\"", "\"On\"", "~0", "\"null\""})
        CHECK(daemonize(bad).find("] unable to parse value for entry 'daemonize': invalid boolean value") !=
              std::string::npos);
}

TEST_CASE("config: integers, times, enums and rlimit_core") {
    auto global_error = [](const std::string& line) {
        Loaded l = load_text("[global]\n" + line + "\n" + kPool);
        return l.r.config ? std::string() : l.r.messages.at(0).text;
    };
    Loaded l = load_text("[global]\nlog_limit = abc\n" + kPool);
    CHECK(texts(l.r) == std::vector<std::string>{
                            "[" + l.path + ":2] unable to parse value for entry 'log_limit': is not a valid number (greater or equal than zero)",
                            "failed to load configuration file '" + l.path + "'"});
    for (const char* bad : {"12abc", "\" 12\"", "1.5", "+3"})
        CHECK(global_error(std::string("log_limit = ") + bad).find("is not a valid number") != std::string::npos);
    CHECK(global_error("emergency_restart_interval = 5x").find("': unknown suffix used in time value") != std::string::npos);
    CHECK(global_error("emergency_restart_interval = 5S").find("unknown suffix used in time value") != std::string::npos);
    CHECK(global_error("emergency_restart_interval =").find("': invalid time value") != std::string::npos);
    CHECK(global_error("log_level = foo").find("entry 'log_level': invalid value for 'log_level'") != std::string::npos);
    CHECK(global_error("syslog.facility = bogus").find("entry 'syslog.facility': invalid value") != std::string::npos);
    CHECK(global_error("rlimit_core = -1").find("must be greater than zero or 'unlimited'") != std::string::npos);
    CHECK(global_error("rlimit_core = x").find("is not a valid number") != std::string::npos);
    CHECK(global_error("log_limit = 5") == "log_limit must be greater than 512");
    CHECK(global_error("process.max = -1") == "process_max can't be negative");
    CHECK(global_error("process.priority = 50") == "process.priority must be included into [-19,20]");
    CHECK(global_error("events.mechanism = bogus") == "event mechanism 'bogus' is not available on this system");

    auto g = [](const std::string& line) {
        Loaded l = load_text("[global]\n" + line + "\n" + kPool);
        REQUIRE(l.r.config);
        return l.r.config->global;
    };
    CHECK(g("emergency_restart_interval = 5m").emergency_restart_interval == 300);
    CHECK(g("emergency_restart_interval = 2d").emergency_restart_interval == 172800);
    CHECK(g("emergency_restart_interval = 1h").emergency_restart_interval == 3600);
    CHECK(g("emergency_restart_interval = -5").emergency_restart_interval == -5);
    CHECK(g("emergency_restart_interval = m").emergency_restart_interval == 0);
    CHECK(g("log_limit = 99999999999").log_limit == 1215752191); // atoi truncation
    CHECK(g("rlimit_files = -1").rlimit_files == -1);
    CHECK(g("log_level = DEBUG").log_level == LogLevel::Debug);
    CHECK(g("DAEMONIZE = no").daemonize == false); // directive names are case-insensitive

    Loaded pm = load_text("[www]\nlisten = 9000\npm = foo\n");
    CHECK(pm.r.messages.at(0).text == "[" + pm.path + ":3] unable to parse value for entry 'pm': invalid process manager (static, dynamic or ondemand)");
    Loaded pm2 = load_text("[www]\nlisten = 9000\npm = Static\npm.max_children = 3\npm.max_requests = -3\n");
    REQUIRE(pm2.r.config);
    CHECK(pm2.r.config->pools[0].pm == PmStyle::Static);
    CHECK(pm2.r.config->pools[0].pm_max_requests == -3);
    CHECK(one_error(kPool + "pm.max_requests = 1-2\n").find("is not a valid number") != std::string::npos);
}

TEST_CASE("config: values go through the Zend INI scanner") {
    setenv("LOWPHP_TEST_FOO", "bar", 1);
    unsetenv("LOWPHP_TEST_NOPE");
    CHECK(php_value("E_ALL & ~E_DEPRECATED") == "24575");
    CHECK(php_value("E_ALL & ~(E_NOTICE | E_WARNING)") == "32757");
    CHECK(php_value("E_ALL") == "32767");
    CHECK(php_value("\"E_ALL\"") == "E_ALL");
    CHECK(php_value("1|2") == "3");
    CHECK(php_value("5 ^ 3") == "6");
    CHECK(php_value("!1") == "0");
    CHECK(php_value("(1)") == "1");
    CHECK(php_value("on") == "1");
    CHECK(php_value("off") == "");
    CHECK(php_value("none") == "");
    CHECK(php_value("\"on\"") == "on");
    CHECK(php_value("'a b'") == "a b");
    CHECK(php_value("a b   ") == "a b");
    CHECK(php_value("\"a;b\"") == "a;b");
    CHECK(php_value("a;b") == "a");
    CHECK(php_value("a # b") == "a # b");
    CHECK(php_value("${LOWPHP_TEST_FOO}") == "bar");
    CHECK(php_value("\"x${LOWPHP_TEST_FOO}y\"") == "xbary");
    CHECK(php_value("x${LOWPHP_TEST_FOO}y") == "xbary");
    CHECK(php_value("'x${LOWPHP_TEST_FOO}y'") == "x${LOWPHP_TEST_FOO}y");
    CHECK(php_value("${LOWPHP_TEST_NOPE}z") == "z");
    CHECK(php_value("\"a\\\"b\"") == "a\"b");
    CHECK(php_value("\"a\\\\b\"") == "a\\b");
    CHECK(php_value("\"a\\nb\"") == "a\\nb");
    CHECK(php_value("\"a\" \"b\"") == "ab");
    CHECK(php_value("a \"b\"") == "ab");
    CHECK(php_value("a\"b\" c") == "abc");
    CHECK(php_value("$pool") == "www");
    CHECK(php_value("/a/$pool/b") == "/a/www/b");
}

TEST_CASE("config: syntax errors are PHP's own lines") {
    auto raw = [](const std::string& value) {
        Loaded l = load_text(kPool + "php_value[x] = " + value + "\n");
        CHECK_FALSE(l.r.config);
        REQUIRE(l.r.messages.size() == 2);
        CHECK(l.r.messages[0].raw);
        CHECK(l.r.messages[1].text == "failed to load configuration file '" + l.path + "'");
        return l.r.messages[0].text;
    };
    CHECK(raw("a=b") == "PHP:  syntax error, unexpected '=' in Unknown on line 1");
    CHECK(raw("x!") == "PHP:  syntax error, unexpected '!' in Unknown on line 1");
    CHECK(raw("~") == "PHP:  syntax error, unexpected END_OF_LINE in Unknown on line 2");
    CHECK(raw("(1") == "PHP:  syntax error, unexpected END_OF_LINE, expecting '^' or '|' or '&' or ')' in Unknown on line 2");
    CHECK(raw("\"multi") == "PHP:  syntax error, unexpected end of file, expecting TC_DOLLAR_CURLY or TC_QUOTED_STRING or '\"' in Unknown on line 2");
    Loaded s = load_text("[foo\n");
    CHECK(s.r.messages.at(0).text == "PHP:  syntax error, unexpected end of file, expecting ']' in Unknown on line 1");
}

TEST_CASE("config: sections, unknown entries and their file:line") {
    Loaded l = load_text("foo = bar\n" + kPool);
    CHECK(texts(l.r) == std::vector<std::string>{"[" + l.path + ":1] unknown entry 'foo'",
                                                 "failed to load configuration file '" + l.path + "'"});
    CHECK(l.r.messages[0].level == LogLevel::Error);
    // Before any section, directives belong to [global].
    Loaded g = load_text("daemonize = no\n" + kPool);
    REQUIRE(g.r.config);
    CHECK_FALSE(g.r.config->global.daemonize);
    CHECK(one_error(kPool + "daemonize = yes\n").find(":5] unknown entry 'daemonize'") != std::string::npos);
    CHECK(one_error(kPool + "listen.setfib = 3\n").find(":5] unknown entry 'listen.setfib'") != std::string::npos);
    CHECK(one_error(kPool + "justaword\n").find(":5] value is NULL for a ZEND_INI_PARSER_ENTRY") != std::string::npos);
    CHECK(one_error("#comment\n" + kPool).find(":1] value is NULL for a ZEND_INI_PARSER_ENTRY") != std::string::npos);
    CHECK(one_error(kPool + "# hash = 1\n").find(":5] unknown entry '# hash'") != std::string::npos);
    // A section seen twice is the same pool; names keep their blanks.
    Loaded again = load_text(kPool + "[ sp ]\nlisten = 9005\npm = static\npm.max_children = 1\n[www]\nlisten = 9001\n");
    REQUIRE(again.r.config);
    REQUIRE(again.r.config->pools.size() == 2);
    CHECK(again.r.config->pools[0].listen == "9001");
    CHECK(again.r.config->pools[1].name == " sp ");
}

TEST_CASE("config: arrays keep php-fpm's order, newest first") {
    Loaded l = load_text(kPool + "env[A]=1\nenv[B]=2\nenv[A]=3\nphp_flag[x] = off\nphp_flag[y] = \"on\"\n"
                                 "php_admin_flag[z]=1\nphp_value[x]=5\nphp_admin_value[x]=6\nphp_admin_flag[v]=\"\"\n"
                                 "access.suppress_path[] = /a\naccess.suppress_path[] = /b\nphp_value[ k y ] = 1\nphp_value[\"q\"] = 2\n");
    REQUIRE(l.r.config);
    const PoolConfig& p = l.r.config->pools[0];
    using KV = std::pair<std::string, std::string>;
    CHECK(p.env == std::vector<KV>{{"A", "3"}, {"B", "2"}, {"A", "1"}});
    std::vector<KV> values, admin;
    for (const auto& s : p.php_values) values.emplace_back(s.name, s.value);
    for (const auto& s : p.php_admin_values) admin.emplace_back(s.name, s.value);
    CHECK(values == std::vector<KV>{{"q", "2"}, {"k y ", "1"}, {"x", "5"}, {"y", "1"}, {"x", "0"}});
    CHECK(admin == std::vector<KV>{{"v", "0"}, {"x", "6"}, {"z", "1"}});
    CHECK(p.access_suppress_path == std::vector<std::string>{"/b", "/a"});

    CHECK(one_error(kPool + "php_value[] = 1\n").find(":5] You must provide a key for field 'php_value'") != std::string::npos);
    CHECK(one_error(kPool + "env[] = 1\n").find(":5] You must provide a key for field 'env'") != std::string::npos);
    CHECK(one_error(kPool + "access.suppress_path[] = a\n").find(":5] Values provided to field 'access.suppress_path' must begin with '/'") != std::string::npos);
    CHECK(one_error(kPool + "access.suppress_path[k] = /a\n").find(":5] Keys provided to field 'access.suppress_path' are ignored") != std::string::npos);
    CHECK(one_error(kPool + "php_flag[x] = maybe\n").find(":5] error while parsing 'php_flag[x]' : invalid boolean value") != std::string::npos);
    CHECK(one_error(kPool + "php_flag[x] = \"On\"\n").find("invalid boolean value") != std::string::npos);
    CHECK(one_error(kPool + "PHP_VALUE[x] = 1\n").find(":5] unknown directive 'PHP_VALUE'") != std::string::npos);
}

TEST_CASE("config: includes, relative to the prefix, nested at most 5 files deep") {
    ParseOptions o;
    o.prefix = kData;
    ParseResult r = load(kData + "/inc_main.conf", o);
    REQUIRE(r.config);
    REQUIRE(r.config->pools.size() == 2);
    CHECK(r.config->pools[0].name == "a");
    CHECK(r.config->pools[0].listen == kData + "/a.sock");
    CHECK(r.config->pools[1].listen == "127.0.0.1:9001");
    // The line after include= lands in the included file's last section.
    REQUIRE(r.config->pools[1].php_values.size() == 1);
    CHECK(r.config->pools[1].php_values[0].name == "after_include");

    CHECK(load(kData + "/nest_ok.conf", o).config);
    std::string n = kData + "/nest/n";
    ParseResult deep = load(kData + "/nest_deep.conf", o);
    CHECK(texts(deep) == std::vector<std::string>{
                             "failed to include more than 5 files recursively",
                             "Unable to include " + n + "6.inc from " + n + "5.inc at line 1",
                             "Unable to include " + n + "5.inc from " + n + "4.inc at line 1",
                             "Unable to include " + n + "4.inc from " + n + "3.inc at line 1",
                             "Unable to include " + n + "3.inc from " + n + "2.inc at line 1",
                             "Unable to include " + n + "2.inc from " + kData + "/nest_deep.conf at line 1",
                             "failed to load configuration file '" + kData + "/nest_deep.conf'"});

    Loaded none = load_text(kPool + "include = " + kData + "/nomatch*.conf\n");
    REQUIRE(none.r.config);
    REQUIRE(none.r.messages.size() == 1);
    CHECK(none.r.messages[0].level == LogLevel::Warning);
    CHECK(none.r.messages[0].text == "Nothing matches the include pattern '" + kData + "/nomatch*.conf' from " + none.path + " at line 5.");
    Loaded bad = load_text(kPool + "include = rel/*.conf\n");
    CHECK(bad.r.messages.at(0).text == "Unable to globalize '/usr/rel/*.conf' (ret=2) from " + bad.path + " at line 5.");
    // After an include php-fpm numbers on from the included file's line count.
    Loaded count = load_text(kPool + "include = " + kData + "/pool.d/b.conf\nbogus = 1\n");
    CHECK(count.r.messages.at(0).text == "[" + count.path + ":6] unknown entry 'bogus'");
}

TEST_CASE("config: prefix, $prefix and relative paths") {
    Loaded none = load_text(kPool + "listen = rel.sock\nslowlog = slow.log\naccess.log = acc.log\n");
    REQUIRE(none.r.config);
    const PoolConfig& p = none.r.config->pools[0];
    CHECK(p.listen == "/usr/rel.sock");
    CHECK(p.slowlog == "/usr/slow.log");
    CHECK(p.access_log == "/usr/acc.log");
    CHECK(dumped(*none.r.config, "access.format") == "%R - %u %t \"%m %r\" %s");

    ParseOptions o;
    o.prefix = kData;
    Loaded pfx = load_text("[global]\npid = run/x.pid\n" + kPool + "listen = rel.sock\nchroot = $prefix/nest\nchdir = /\n", o);
    REQUIRE(pfx.r.config);
    CHECK(pfx.r.config->global.pid == kData + "/run/x.pid");
    CHECK(pfx.r.config->global.error_log == kData + "/log/php-fpm.log");
    CHECK(pfx.r.config->pools[0].listen == kData + "/rel.sock");
    CHECK(pfx.r.config->pools[0].chroot == kData + "//nest");

    Loaded pool_prefix = load_text(kPool + "prefix = pool.d\nlisten = rel.sock\nchdir = skipped.conf.d\n", o);
    REQUIRE(pool_prefix.r.config);
    CHECK(pool_prefix.r.config->pools[0].prefix == kData + "/pool.d");
    CHECK(pool_prefix.r.config->pools[0].listen == kData + "/pool.d/rel.sock");
    CHECK(pool_prefix.r.config->pools[0].chdir == kData + "/pool.d/skipped.conf.d");

    Loaded g = load_text("[global]\npid = run/x.pid\nerror_log = syslog\n" + kPool);
    REQUIRE(g.r.config);
    CHECK(g.r.config->global.pid == "/var/run/x.pid");
    CHECK(g.r.config->global.error_log == "syslog");

    CHECK(one_error(kPool + "prefix = /nonexist\n") == "[pool www] the prefix '/nonexist' does not exist or is not a directory");
    CHECK(one_error(kPool + "chroot = $prefix/nonexist\n") == "[pool www] the chroot path '/usr//nonexist' does not exist or is not a directory");
    CHECK(one_error(kPool + "chdir = /nonexist\n") == "[pool www] the chdir path '/nonexist' does not exist or is not a directory");
    CHECK(one_error(kPool + "chroot = /tmp\nchdir = /lowphp-nonexist\n") ==
          "[pool www] the chdir path '/lowphp-nonexist' within the chroot path '/tmp' ('/tmp/lowphp-nonexist') does not exist or is not a directory");
}

TEST_CASE("config: pool validation messages, levels and follow-up line") {
    auto check = [](const std::string& text, LogLevel level, const std::string& msg) {
        Loaded l = load_text(text);
        CHECK_FALSE(l.r.config);
        REQUIRE(l.r.messages.size() >= 2);
        const Message& m = l.r.messages[l.r.messages.size() - 2];
        CHECK(m.level == level);
        CHECK(m.text == msg);
        CHECK(l.r.messages.back().text == "failed to post process the configuration");
    };
    check("[global]\n", LogLevel::Error, "No pool defined. at least one pool section must be specified in config file");
    check("[www]\npm = static\n", LogLevel::Alert, "[pool www] no listen address have been defined!");
    check("[www]\nlisten = 9000\n", LogLevel::Alert, "[pool www] the process manager is missing (static, dynamic or ondemand)");
    check("[www]\nlisten = 9000\npm = static\n", LogLevel::Alert, "[pool www] pm.max_children must be a positive value");
    std::string dyn = "[www]\nlisten = 9000\npm = dynamic\npm.max_children = 5\n";
    check(dyn, LogLevel::Alert, "[pool www] pm.min_spare_servers(0) must be a positive value");
    check(dyn + "pm.min_spare_servers = 1\n", LogLevel::Alert, "[pool www] pm.max_spare_servers(0) must be a positive value");
    check(dyn + "pm.min_spare_servers = 1\npm.max_spare_servers = 6\n", LogLevel::Alert,
          "[pool www] pm.min_spare_servers(1) and pm.max_spare_servers(6) cannot be greater than pm.max_children(5)");
    check(dyn + "pm.min_spare_servers = 3\npm.max_spare_servers = 2\n", LogLevel::Alert,
          "[pool www] pm.max_spare_servers(2) must not be less than pm.min_spare_servers(3)");
    check(dyn + "pm.min_spare_servers = 2\npm.max_spare_servers = 3\npm.start_servers = 4\n", LogLevel::Alert,
          "[pool www] pm.start_servers(4) must not be less than pm.min_spare_servers(2) and not greater than pm.max_spare_servers(3)");
    check(dyn + "pm.min_spare_servers = 2\npm.max_spare_servers = 4\npm.max_spawn_rate = 0\n", LogLevel::Alert,
          "[pool www] pm.max_spawn_rate must be a positive value");
    check("[www]\nlisten = 9000\npm = ondemand\npm.max_children = 5\npm.process_idle_timeout = 0\n", LogLevel::Alert,
          "[pool www] pm.process_idle_timeout(0s) must be greater than 0s");
    check(kPool + "process.priority = -30\n", LogLevel::Error, "[pool www] process.priority must be included into [-19,20]");
    check(kPool + "request_slowlog_timeout = 10\n", LogLevel::Error,
          "[pool www] 'slowlog' must be specified for use with 'request_slowlog_timeout'");
    check(kPool + "request_slowlog_timeout = 10\nslowlog = /tmp/s.log\nrequest_terminate_timeout = 5\n", LogLevel::Error,
          "[pool www] 'request_slowlog_timeout' (10) can't be greater than 'request_terminate_timeout' (5)");
    check(kPool + "request_slowlog_trace_depth = 5\n", LogLevel::Error,
          "[pool www] 'slowlog' must be specified for use with 'request_slowlog_trace_depth'");
    check(kPool + "request_slowlog_trace_depth = -1\nslowlog = /tmp/s.log\n", LogLevel::Error,
          "[pool www] 'request_slowlog_trace_depth' (-1) must be a positive value");
    check(kPool + "pm.status_path = status\n", LogLevel::Error, "[pool www] the status path 'status' must start with a '/'");
    check(kPool + "pm.status_path = /st atus\n", LogLevel::Error,
          "[pool www] the status path '/st atus' must contain only the following characters '[alphanum]/_-.~'");
    check(kPool + "ping.path = ping\n", LogLevel::Error, "[pool www] the ping path 'ping' must start with a '/'");
    check(kPool + "[w2]\nlisten = 9000\npm = static\npm.max_children = 1\n", LogLevel::Error,
          "[pool w2] unable to set listen address as it's already used in another pool 'www'");
}

TEST_CASE("config: start_servers notice, defaults filled after checks") {
    Loaded l = load_text("[www]\nlisten = 9000\npm = dynamic\npm.max_children = 5\npm.min_spare_servers = 1\npm.max_spare_servers = 3\n"
                         "ping.path = /ping\npm.status_listen = 9001\nrequest_slowlog_trace_depth = 0\n");
    REQUIRE(l.r.config);
    REQUIRE(l.r.messages.size() == 1);
    CHECK(l.r.messages[0].level == LogLevel::Notice);
    CHECK(l.r.messages[0].text == "[pool www] pm.start_servers is not set. It's been set to 2.");
    const PoolConfig& p = l.r.config->pools[0];
    CHECK(p.pm_start_servers == 2);
    CHECK(p.pm_status_path == "/");
    CHECK(p.request_slowlog_trace_depth == 20);
    CHECK(dumped(*l.r.config, "ping.response") == "pong");
    CHECK(dumped(*l.r.config, "pm.status_path") == "/");
}

TEST_CASE("config: lowphp additions are accepted and dumped only when set") {
    Loaded plain = load_text(kPool);
    REQUIRE(plain.r.config);
    CHECK(dumped(*plain.r.config, "php_ini") == "<absent>");
    Loaded l = load_text(kPool + "php_ini = /etc/lowphp/$pool.ini\nphp_ini_scan_dir = /etc/lowphp/conf.d\n");
    REQUIRE(l.r.config);
    CHECK(l.r.config->pools[0].php_ini == "/etc/lowphp/www.ini");
    std::vector<std::string> d = dump(*l.r.config);
    CHECK(d[d.size() - 3] == "\tphp_ini = /etc/lowphp/www.ini");
    CHECK(d[d.size() - 2] == "\tphp_ini_scan_dir = /etc/lowphp/conf.d");
    CHECK(d.back() == " ");
}

TEST_CASE("config: a missing main file") {
    ParseResult r = load("/nonexistent/lowphp.conf", {});
    CHECK_FALSE(r.config);
    CHECK(texts(r) == std::vector<std::string>{
                          "failed to open configuration file '/nonexistent/lowphp.conf': No such file or directory (2)",
                          "failed to load configuration file '/nonexistent/lowphp.conf'"});
}
