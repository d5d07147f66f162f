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
    std::string path =
        "/tmp/lowphp_test_config_" + std::to_string(getpid()) + "_" + std::to_string(++n) + ".conf";
    std::ofstream(path) << text;
    if (opts.default_prefix.empty()) opts.default_prefix = "/usr";
    Loaded l{path, load(path, opts)};
    unlink(path.c_str());
    return l;
}

std::vector<std::string> texts(const ParseResult& r) {
    std::vector<std::string> out;
    for (const auto& m : r.messages)
        out.push_back(m.text);
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
        return l.r.config ? std::string(l.r.config->global.daemonize ? "yes" : "no")
                          : l.r.messages.at(0).text;
    };
    for (const char* y :
         {"1", "yes", "on", "true", "TRUE", "On", "\"yes\"", "\"true\"", "'yes'", "1|0"})
        CHECK(daemonize(y) == "yes");
    for (const char* n :
         {"0", "", "no", "off", "none", "null", "NULL", "FaLsE", "\"0\"", "\"off\"", "\"no\""})
        CHECK(daemonize(n) == "no");
    for (const char* bad : {"2", "-1", "00", "\" 1\"", "\"On\"", "~0", "\"null\""})
        CHECK(daemonize(bad).find(
                  "] unable to parse value for entry 'daemonize': invalid boolean value") !=
              std::string::npos);
}

TEST_CASE("config: integers, times, enums and rlimit_core") {
    auto global_error = [](const std::string& line) {
        Loaded l = load_text("[global]\n" + line + "\n" + kPool);
        return l.r.config ? std::string() : l.r.messages.at(0).text;
    };
    Loaded l = load_text("[global]\nlog_limit = abc\n" + kPool);
    CHECK(texts(l.r) ==
          std::vector<std::string>{"[" + l.path +
                                       ":2] unable to parse value for entry 'log_limit': is not a "
                                       "valid number (greater or equal than zero)",
                                   "failed to load configuration file '" + l.path + "'"});
    for (const char* bad : {"12abc", "\" 12\"", "1.5", "+3"})
        CHECK(global_error(std::string("log_limit = ") + bad).find("is not a valid number") !=
              std::string::npos);
    CHECK(global_error("emergency_restart_interval = 5x")
              .find("': unknown suffix used in time value") != std::string::npos);
    CHECK(
        global_error("emergency_restart_interval = 5S").find("unknown suffix used in time value") !=
        std::string::npos);
    CHECK(global_error("emergency_restart_interval =").find("': invalid time value") !=
          std::string::npos);
    CHECK(
        global_error("log_level = foo").find("entry 'log_level': invalid value for 'log_level'") !=
        std::string::npos);
    CHECK(global_error("syslog.facility = bogus").find("entry 'syslog.facility': invalid value") !=
          std::string::npos);
    CHECK(global_error("rlimit_core = -1").find("must be greater than zero or 'unlimited'") !=
          std::string::npos);
    CHECK(global_error("rlimit_core = x").find("is not a valid number") != std::string::npos);
    CHECK(global_error("log_limit = 5") == "log_limit must be greater than 512");
    CHECK(global_error("process.max = -1") == "process_max can't be negative");
    CHECK(global_error("process.priority = 50") ==
          "process.priority must be included into [-19,20]");
    CHECK(global_error("events.mechanism = bogus") ==
          "event mechanism 'bogus' is not available on this system");

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
    CHECK(pm.r.messages.at(0).text == "[" + pm.path +
                                          ":3] unable to parse value for entry 'pm': invalid "
                                          "process manager (static, dynamic or ondemand)");
    Loaded pm2 =
        load_text("[www]\nlisten = 9000\npm = Static\npm.max_children = 3\npm.max_requests = -3\n");
    REQUIRE(pm2.r.config);
    CHECK(pm2.r.config->pools[0].pm == PmStyle::Static);
    CHECK(pm2.r.config->pools[0].pm_max_requests == -3);
    CHECK(one_error(kPool + "pm.max_requests = 1-2\n").find("is not a valid number") !=
          std::string::npos);
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
    CHECK(raw("(1") == "PHP:  syntax error, unexpected END_OF_LINE, expecting '^' or '|' or '&' or "
                       "')' in Unknown on line 2");
    CHECK(raw("\"multi") == "PHP:  syntax error, unexpected end of file, expecting TC_DOLLAR_CURLY "
                            "or TC_QUOTED_STRING or '\"' in Unknown on line 2");
    Loaded s = load_text("[foo\n");
    CHECK(s.r.messages.at(0).text ==
          "PHP:  syntax error, unexpected end of file, expecting ']' in Unknown on line 1");
}

TEST_CASE("config: sections, unknown entries and their file:line") {
    Loaded l = load_text("foo = bar\n" + kPool);
    CHECK(texts(l.r) ==
          std::vector<std::string>{"[" + l.path + ":1] unknown entry 'foo'",
                                   "failed to load configuration file '" + l.path + "'"});
    CHECK(l.r.messages[0].level == LogLevel::Error);
    // Before any section, directives belong to [global].
    Loaded g = load_text("daemonize = no\n" + kPool);
    REQUIRE(g.r.config);
    CHECK_FALSE(g.r.config->global.daemonize);
    CHECK(one_error(kPool + "daemonize = yes\n").find(":5] unknown entry 'daemonize'") !=
          std::string::npos);
    CHECK(one_error(kPool + "listen.setfib = 3\n").find(":5] unknown entry 'listen.setfib'") !=
          std::string::npos);
    CHECK(one_error(kPool + "justaword\n").find(":5] value is NULL for a ZEND_INI_PARSER_ENTRY") !=
          std::string::npos);
    CHECK(one_error("#comment\n" + kPool).find(":1] value is NULL for a ZEND_INI_PARSER_ENTRY") !=
          std::string::npos);
    CHECK(one_error(kPool + "# hash = 1\n").find(":5] unknown entry '# hash'") !=
          std::string::npos);
    // After a section only a comment may follow (php-fpm: an entry without value).
    CHECK(one_error("[www] junk\n" + kPool).find(":1] value is NULL for a ZEND_INI_PARSER_ENTRY") !=
          std::string::npos);
    CHECK(one_error("[www]]\n" + kPool).find(":1] value is NULL for a ZEND_INI_PARSER_ENTRY") !=
          std::string::npos);
    REQUIRE(load_text("[global] ; the globals\n" + kPool).r.config);
    // A UTF-8 byte order mark (a file saved by a Windows editor) is not text.
    Loaded bom = load_text("\xEF\xBB\xBF" + kPool);
    REQUIRE(bom.r.config);
    CHECK(bom.r.config->pools.at(0).name == "www");
    // A section seen twice is the same pool; names keep their blanks.
    Loaded again = load_text(
        kPool + "[ sp ]\nlisten = 9005\npm = static\npm.max_children = 1\n[www]\nlisten = 9001\n");
    REQUIRE(again.r.config);
    REQUIRE(again.r.config->pools.size() == 2);
    CHECK(again.r.config->pools[0].listen == "9001");
    CHECK(again.r.config->pools[1].name == " sp ");
}

TEST_CASE("config: arrays keep php-fpm's order, newest first") {
    Loaded l = load_text(
        kPool +
        "env[A]=1\nenv[B]=2\nenv[A]=3\nphp_flag[x] = off\nphp_flag[y] = \"on\"\n"
        "php_admin_flag[z]=1\nphp_value[x]=5\nphp_admin_value[x]=6\nphp_admin_flag[v]=\"\"\n"
        "access.suppress_path[] = /a\naccess.suppress_path[] = /b\nphp_value[ k y ] = "
        "1\nphp_value[\"q\"] = 2\n");
    REQUIRE(l.r.config);
    const PoolConfig& p = l.r.config->pools[0];
    using KV = std::pair<std::string, std::string>;
    CHECK(p.env == std::vector<KV>{{"A", "3"}, {"B", "2"}, {"A", "1"}});
    std::vector<KV> values, admin;
    for (const auto& s : p.php_values)
        values.emplace_back(s.name, s.value);
    for (const auto& s : p.php_admin_values)
        admin.emplace_back(s.name, s.value);
    CHECK(values == std::vector<KV>{{"q", "2"}, {"k y ", "1"}, {"x", "5"}, {"y", "1"}, {"x", "0"}});
    CHECK(admin == std::vector<KV>{{"v", "0"}, {"x", "6"}, {"z", "1"}});
    CHECK(p.access_suppress_path == std::vector<std::string>{"/b", "/a"});

    CHECK(one_error(kPool + "php_value[] = 1\n")
              .find(":5] You must provide a key for field 'php_value'") != std::string::npos);
    CHECK(one_error(kPool + "env[] = 1\n").find(":5] You must provide a key for field 'env'") !=
          std::string::npos);
    CHECK(one_error(kPool + "access.suppress_path[] = a\n")
              .find(":5] Values provided to field 'access.suppress_path' must begin with '/'") !=
          std::string::npos);
    CHECK(one_error(kPool + "access.suppress_path[k] = /a\n")
              .find(":5] Keys provided to field 'access.suppress_path' are ignored") !=
          std::string::npos);
    CHECK(one_error(kPool + "php_flag[x] = maybe\n")
              .find(":5] error while parsing 'php_flag[x]' : invalid boolean value") !=
          std::string::npos);
    CHECK(one_error(kPool + "php_flag[x] = \"On\"\n").find("invalid boolean value") !=
          std::string::npos);
    CHECK(one_error(kPool + "PHP_VALUE[x] = 1\n").find(":5] unknown directive 'PHP_VALUE'") !=
          std::string::npos);
}

TEST_CASE("config: keep_source gives every line read, include= followed where it stands") {
    ParseOptions o;
    o.prefix = kData;
    o.keep_source = true;
    ParseResult r = load(kData + "/inc_main.conf", o);
    REQUIRE(r.config);
    std::vector<std::string> opened;
    for (const auto& l : r.source)
        if (l.kind == SourceLine::Opened) opened.push_back(l.file);
    CHECK(opened == std::vector<std::string>{kData + "/inc_main.conf", kData + "/pool.d/a.conf",
                                             kData + "/pool.d/b.conf"});
    REQUIRE(r.source.size() > 3);
    CHECK(r.source[1].kind == SourceLine::Section);
    CHECK(r.source[2].kind == SourceLine::Entry); // include = pool.d/*.conf, then its files
    CHECK(r.source[3].kind == SourceLine::Opened);
    const SourceLine& last = r.source.back();
    CHECK(last.kind == SourceLine::Entry);
    CHECK(last.file == kData + "/inc_main.conf");
    CHECK(last.text == "php_value[after_include] = yes");
    CHECK(last.name == "php_value");
    CHECK(last.value == "1"); // the scanner reads yes as "1"
    CHECK(last.written_name == "php_value[after_include]");
    CHECK(last.written_value == "yes");
    CHECK(r.source[r.source.size() - 2].kind == SourceLine::Text);
    o.keep_source = false;
    CHECK(load(kData + "/inc_main.conf", o).source.empty()); // only when asked
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
    CHECK(texts(deep) ==
          std::vector<std::string>{
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
    CHECK(none.r.messages[0].text == "Nothing matches the include pattern '" + kData +
                                         "/nomatch*.conf' from " + none.path + " at line 5.");
    Loaded bad = load_text(kPool + "include = rel/*.conf\n");
    CHECK(bad.r.messages.at(0).text ==
          "Unable to globalize '/usr/rel/*.conf' (ret=2) from " + bad.path + " at line 5.");
    // After an include php-fpm numbers on from the included file's line count.
    Loaded count = load_text(kPool + "include = " + kData + "/pool.d/b.conf\nbogus = 1\n");
    CHECK(count.r.messages.at(0).text == "[" + count.path + ":6] unknown entry 'bogus'");
}

TEST_CASE("config: prefix, $prefix and relative paths") {
    Loaded none =
        load_text(kPool + "listen = rel.sock\nslowlog = slow.log\naccess.log = acc.log\n");
    REQUIRE(none.r.config);
    const PoolConfig& p = none.r.config->pools[0];
    CHECK(p.listen == "/usr/rel.sock");
    CHECK(p.slowlog == "/usr/slow.log");
    CHECK(p.access_log == "/usr/acc.log");
    CHECK(dumped(*none.r.config, "access.format") == "%R - %u %t \"%m %r\" %s");

    ParseOptions o;
    o.prefix = kData;
    Loaded pfx = load_text("[global]\npid = run/x.pid\n" + kPool +
                               "listen = rel.sock\nchroot = $prefix/nest\nchdir = /\n",
                           o);
    REQUIRE(pfx.r.config);
    CHECK(pfx.r.config->global.pid == kData + "/run/x.pid");
    CHECK(pfx.r.config->global.error_log == kData + "/log/php-fpm.log");
    CHECK(pfx.r.config->pools[0].listen == kData + "/rel.sock");
    CHECK(pfx.r.config->pools[0].chroot == kData + "//nest");

    Loaded pool_prefix =
        load_text(kPool + "prefix = pool.d\nlisten = rel.sock\nchdir = skipped.conf.d\n", o);
    REQUIRE(pool_prefix.r.config);
    CHECK(pool_prefix.r.config->pools[0].prefix == kData + "/pool.d");
    CHECK(pool_prefix.r.config->pools[0].listen == kData + "/pool.d/rel.sock");
    CHECK(pool_prefix.r.config->pools[0].chdir == kData + "/pool.d/skipped.conf.d");

    Loaded g = load_text("[global]\npid = run/x.pid\nerror_log = syslog\n" + kPool);
    REQUIRE(g.r.config);
    CHECK(g.r.config->global.pid == "/var/run/x.pid");
    CHECK(g.r.config->global.error_log == "syslog");

    CHECK(one_error(kPool + "prefix = /nonexist\n") ==
          "[pool www] the prefix '/nonexist' does not exist or is not a directory");
    CHECK(one_error(kPool + "chroot = $prefix/nonexist\n") ==
          "[pool www] the chroot path '/usr//nonexist' does not exist or is not a directory");
    CHECK(one_error(kPool + "chdir = /nonexist\n") ==
          "[pool www] the chdir path '/nonexist' does not exist or is not a directory");
    CHECK(one_error(kPool + "chroot = /tmp\nchdir = /lowphp-nonexist\n") ==
          "[pool www] the chdir path '/lowphp-nonexist' within the chroot path '/tmp' "
          "('/tmp/lowphp-nonexist') does not exist or is not a directory");
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
    check("[global]\n", LogLevel::Error,
          "No pool defined. at least one pool section must be specified in config file");
    check("[www]\npm = static\n", LogLevel::Alert,
          "[pool www] no listen address have been defined!");
    check("[www]\nlisten = 9000\n", LogLevel::Alert,
          "[pool www] the process manager is missing (static, dynamic or ondemand)");
    check("[www]\nlisten = 9000\npm = static\n", LogLevel::Alert,
          "[pool www] pm.max_children must be a positive value");
    std::string dyn = "[www]\nlisten = 9000\npm = dynamic\npm.max_children = 5\n";
    check(dyn, LogLevel::Alert, "[pool www] pm.min_spare_servers(0) must be a positive value");
    check(dyn + "pm.min_spare_servers = 1\n", LogLevel::Alert,
          "[pool www] pm.max_spare_servers(0) must be a positive value");
    check(dyn + "pm.min_spare_servers = 1\npm.max_spare_servers = 6\n", LogLevel::Alert,
          "[pool www] pm.min_spare_servers(1) and pm.max_spare_servers(6) cannot be greater than "
          "pm.max_children(5)");
    check(dyn + "pm.min_spare_servers = 3\npm.max_spare_servers = 2\n", LogLevel::Alert,
          "[pool www] pm.max_spare_servers(2) must not be less than pm.min_spare_servers(3)");
    check(dyn + "pm.min_spare_servers = 2\npm.max_spare_servers = 3\npm.start_servers = 4\n",
          LogLevel::Alert,
          "[pool www] pm.start_servers(4) must not be less than pm.min_spare_servers(2) and not "
          "greater than pm.max_spare_servers(3)");
    check(dyn + "pm.min_spare_servers = 2\npm.max_spare_servers = 4\npm.max_spawn_rate = 0\n",
          LogLevel::Alert, "[pool www] pm.max_spawn_rate must be a positive value");
    check("[www]\nlisten = 9000\npm = ondemand\npm.max_children = 5\npm.process_idle_timeout = 0\n",
          LogLevel::Alert, "[pool www] pm.process_idle_timeout(0s) must be greater than 0s");
    check(kPool + "process.priority = -30\n", LogLevel::Error,
          "[pool www] process.priority must be included into [-19,20]");
    check(kPool + "request_slowlog_timeout = 10\n", LogLevel::Error,
          "[pool www] 'slowlog' must be specified for use with 'request_slowlog_timeout'");
    check(kPool +
              "request_slowlog_timeout = 10\nslowlog = /tmp/s.log\nrequest_terminate_timeout = 5\n",
          LogLevel::Error,
          "[pool www] 'request_slowlog_timeout' (10) can't be greater than "
          "'request_terminate_timeout' (5)");
    check(kPool + "request_slowlog_trace_depth = 5\n", LogLevel::Error,
          "[pool www] 'slowlog' must be specified for use with 'request_slowlog_trace_depth'");
    check(kPool + "request_slowlog_trace_depth = -1\nslowlog = /tmp/s.log\n", LogLevel::Error,
          "[pool www] 'request_slowlog_trace_depth' (-1) must be a positive value");
    check(kPool + "pm.status_path = status\n", LogLevel::Error,
          "[pool www] the status path 'status' must start with a '/'");
    check(kPool + "pm.status_path = /st atus\n", LogLevel::Error,
          "[pool www] the status path '/st atus' must contain only the following characters "
          "'[alphanum]/_-.~'");
    check(kPool + "ping.path = ping\n", LogLevel::Error,
          "[pool www] the ping path 'ping' must start with a '/'");
    check(kPool + "[w2]\nlisten = 9000\npm = static\npm.max_children = 1\n", LogLevel::Error,
          "[pool w2] unable to set listen address as it's already used in another pool 'www'");
}

TEST_CASE("config: start_servers notice, defaults filled after checks") {
    Loaded l =
        load_text("[www]\nlisten = 9000\npm = dynamic\npm.max_children = 5\npm.min_spare_servers = "
                  "1\npm.max_spare_servers = 3\n"
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
    Loaded l = load_text(
        kPool + "php_ini = /etc/lowphp/$pool.ini\nphp_ini_scan_dir = /etc/lowphp/conf.d\n");
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
    CHECK(texts(r) ==
          std::vector<std::string>{"failed to open configuration file '/nonexistent/lowphp.conf': "
                                   "No such file or directory (2)",
                                   "failed to load configuration file '/nonexistent/lowphp.conf'"});
}

// ---------------------------------------------------------------------------
// The directive types and messages one by one, each checked against
// `php-fpm8.2 -t -R -y FILE` / `-tt`.

namespace {

// A scratch directory for configurations that include one another.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/lowphp_unit_cfg_XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::string cmd = "rm -rf '" + path + "'";
        CHECK(std::system(cmd.c_str()) == 0);
    }
    std::string write(const std::string& name, const std::string& text) const {
        std::string file = path + "/" + name;
        std::string dir = file.substr(0, file.rfind('/'));
        std::string mk = "mkdir -p '" + dir + "'";
        REQUIRE(std::system(mk.c_str()) == 0);
        std::ofstream(file) << text;
        return file;
    }
};

PoolConfig pool_with(const std::string& lines) {
    Loaded l = load_text(kPool + lines);
    INFO(lines);
    REQUIRE(l.r.config);
    CHECK(l.r.messages.empty());
    return l.r.config->pools.at(0);
}

// The two lines php-fpm logs for a value it cannot parse in the 5th line.
std::vector<std::string> parse_failure(const Loaded& l, const std::string& entry,
                                       const std::string& why) {
    return {"[" + l.path + ":5] unable to parse value for entry '" + entry + "': " + why,
            "failed to load configuration file '" + l.path + "'"};
}

} // namespace

TEST_CASE("config: string, int, bool, time, enum and rlimit directives in a pool") {
    PoolConfig p =
        pool_with("user = nobody\ngroup = nogroup\nlisten.owner = www-data\nlisten.mode = 0666\n"
                  "pm.max_requests = 500\nlisten.backlog = 128\npm.status_path = /status\n"
                  "ping.path = /ping\nping.response = alive\n"
                  "catch_workers_output = yes\ndecorate_workers_output = no\nclear_env = off\n"
                  "process.dumpable = true\nrequest_terminate_timeout = 30s\n"
                  "request_terminate_timeout_track_finished = 1\nrlimit_core = unlimited\n"
                  "rlimit_files = 4096\nsecurity.limit_extensions = .php .php8\n");
    CHECK(p.user == "nobody");
    CHECK(p.group == "nogroup");
    CHECK(p.listen_owner == "www-data");
    CHECK(p.listen_mode == "0666");
    CHECK(p.pm_max_requests == 500);
    CHECK(p.listen_backlog == 128);
    CHECK(p.pm_status_path == "/status");
    CHECK(p.ping_path == "/ping");
    CHECK(p.ping_response == "alive");
    CHECK(p.catch_workers_output);
    CHECK_FALSE(p.decorate_workers_output);
    CHECK_FALSE(p.clear_env);
    CHECK(p.process_dumpable);
    CHECK(p.request_terminate_timeout == 30);
    CHECK(p.request_terminate_timeout_track_finished);
    CHECK(p.rlimit_core == -1);
    CHECK(p.rlimit_files == 4096);
    CHECK(p.security_limit_extensions == ".php .php8");
}

TEST_CASE("config: pool defaults a user relies on") {
    PoolConfig p = pool_with("");
    CHECK(p.listen_backlog == -1); // php-fpm 8.2 on Linux (-tt: "listen.backlog = -1"), not 511
    CHECK(p.pm_max_spawn_rate == 32);
    CHECK(p.pm_process_idle_timeout == 10);
    CHECK(p.ping_response == "pong");
    CHECK(p.access_format == "%R - %u %t \"%m %r\" %s");
    CHECK(p.security_limit_extensions == ".php .phar");
    CHECK(p.clear_env);
    CHECK(p.decorate_workers_output);
    CHECK_FALSE(p.catch_workers_output);
    CHECK(p.request_terminate_timeout == 0);
    CHECK_FALSE(p.rlimit_core);
    CHECK(p.env.empty());
    CHECK(p.php_values.empty());
    CHECK(p.php_admin_values.empty());
}

TEST_CASE("config: every boolean spelling on a pool directive") {
    for (const char* yes : {"yes", "YES", "on", "true", "1"}) {
        CAPTURE(yes);
        CHECK(pool_with(std::string("catch_workers_output = ") + yes + "\n").catch_workers_output);
    }
    for (const char* no : {"no", "off", "Off", "false", "0"}) {
        CAPTURE(no);
        CHECK_FALSE(pool_with(std::string("clear_env = ") + no + "\n").clear_env);
    }
}

TEST_CASE("config: time suffixes s, m, h, d and plain seconds") {
    CHECK(pool_with("request_terminate_timeout = 45\n").request_terminate_timeout == 45);
    CHECK(pool_with("request_terminate_timeout = 45s\n").request_terminate_timeout == 45);
    CHECK(pool_with("request_terminate_timeout = 3m\n").request_terminate_timeout == 180);
    CHECK(pool_with("request_terminate_timeout = 2h\n").request_terminate_timeout == 7200);
    CHECK(pool_with("request_terminate_timeout = 1d\n").request_terminate_timeout == 86400);
    CHECK(pool_with("pm.process_idle_timeout = 20s\n").pm_process_idle_timeout == 20);
}

TEST_CASE("config: enums pm and log_level") {
    auto pm = [](const std::string& style) {
        Loaded l = load_text("[www]\nlisten = 9000\npm = " + style +
                             "\npm.max_children = 4\npm.start_servers = 1\npm.min_spare_servers = "
                             "1\npm.max_spare_servers = 2\n");
        REQUIRE(l.r.config);
        return l.r.config->pools[0].pm;
    };
    CHECK(pm("static") == PmStyle::Static);
    CHECK(pm("dynamic") == PmStyle::Dynamic);
    CHECK(pm("ondemand") == PmStyle::Ondemand);

    auto level = [](const std::string& v) {
        Loaded l = load_text("[global]\nlog_level = " + v + "\n" + kPool);
        REQUIRE(l.r.config);
        CHECK(l.r.config->global.log_level_set);
        return l.r.config->global.log_level;
    };
    CHECK(level("debug") == LogLevel::Debug);
    CHECK(level("notice") == LogLevel::Notice);
    CHECK(level("warning") == LogLevel::Warning);
    CHECK(level("error") == LogLevel::Error);
    CHECK(level("alert") == LogLevel::Alert);
}

TEST_CASE("config: parse errors name file and line, then the file") {
    Loaded children = load_text("[www]\nlisten = 9000\npm = static\n\npm.max_children = abc\n");
    CHECK(texts(children.r) == parse_failure(children, "pm.max_children",
                                             "is not a valid number (greater or equal than zero)"));
    Loaded cwo = load_text(kPool + "catch_workers_output = maybe\n");
    CHECK(texts(cwo.r) == parse_failure(cwo, "catch_workers_output", "invalid boolean value"));
    Loaded rtt = load_text(kPool + "request_terminate_timeout = 10x\n");
    CHECK(texts(rtt.r) ==
          parse_failure(rtt, "request_terminate_timeout", "unknown suffix used in time value"));
    Loaded pm = load_text("[www]\nlisten = 9000\npm.max_children = 2\n\npm = sometimes\n");
    CHECK(texts(pm.r) ==
          parse_failure(pm, "pm", "invalid process manager (static, dynamic or ondemand)"));
    for (const Loaded* l : {&children, &cwo, &rtt, &pm}) {
        CHECK_FALSE(l->r.config);
        CHECK(l->r.messages.at(0).level == LogLevel::Error);
    }
    // "-1" is a number to the parser; validation then refuses it.
    Loaded neg = load_text("[www]\nlisten = 9000\npm = static\npm.max_children = -1\n");
    CHECK(texts(neg.r) ==
          std::vector<std::string>{"[pool www] pm.max_children must be a positive value",
                                   "failed to post process the configuration"});
}

TEST_CASE("config: a pool directive in [global] is an unknown entry") {
    Loaded l = load_text("[global]\nlisten = 9000\n" + kPool);
    CHECK_FALSE(l.r.config);
    CHECK(texts(l.r) ==
          std::vector<std::string>{"[" + l.path + ":2] unknown entry 'listen'",
                                   "failed to load configuration file '" + l.path + "'"});
}

TEST_CASE("config: comments, blank lines and double quotes") {
    PoolConfig p = pool_with("; a whole-line comment\n\n   ; indented comment\n"
                             "slowlog = \"/var/log/slow $pool.log\" ; trailing comment\n"
                             "ping.response = \"ok\"\n");
    CHECK(p.slowlog == "/var/log/slow www.log");
    CHECK(p.ping_response == "ok");
}

TEST_CASE("config: $pool and ${ENV} in values") {
    setenv("LOWPHP_TEST_SOCKDIR", "/run/lowphp-test", 1);
    PoolConfig p =
        pool_with("listen = ${LOWPHP_TEST_SOCKDIR}/$pool.sock\nslowlog = /var/log/$pool.slow\n"
                  "env[HOME_DIR] = ${LOWPHP_TEST_SOCKDIR}\n");
    CHECK(p.listen == "/run/lowphp-test/www.sock");
    CHECK(p.slowlog == "/var/log/www.slow");
    REQUIRE(p.env.size() == 1);
    CHECK(p.env[0] == std::make_pair(std::string("HOME_DIR"), std::string("/run/lowphp-test")));
    unsetenv("LOWPHP_TEST_SOCKDIR");
}

TEST_CASE("config: php_flag and php_admin_flag values become \"1\" / \"0\"") {
    auto flag = [](const std::string& directive, const std::string& v) {
        PoolConfig p = pool_with(directive + "[f] = " + v + "\n");
        const auto& list = directive == "php_flag" ? p.php_values : p.php_admin_values;
        REQUIRE(list.size() == 1);
        CHECK(list[0].name == "f");
        return list[0].value;
    };
    for (const char* on : {"on", "yes", "true", "1"}) {
        CAPTURE(on);
        CHECK(flag("php_flag", on) == "1");
        CHECK(flag("php_admin_flag", on) == "1");
    }
    for (const char* off : {"off", "no", "false", "0"}) {
        CAPTURE(off);
        CHECK(flag("php_flag", off) == "0");
        CHECK(flag("php_admin_flag", off) == "0");
    }
    // Values pass through as written.
    PoolConfig p =
        pool_with("php_value[memory_limit] = 256M\nphp_admin_value[open_basedir] = /srv:/tmp\n");
    CHECK(p.php_values.at(0).value == "256M");
    CHECK(p.php_admin_values.at(0).value == "/srv:/tmp");
}

TEST_CASE("config: a key given twice is kept twice, the first definition applied last") {
    // php-fpm 8.2 keeps both (-tt prints the newest first) and applies the
    // list in that order, so the FIRST definition in the file is what PHP
    // and the environment end up with.
    PoolConfig p = pool_with(
        "env[A] = first\nenv[A] = second\nphp_admin_value[x] = 1\nphp_admin_value[x] = 2\n");
    REQUIRE(p.env.size() == 2);
    CHECK(p.env.back().second == "first");
    REQUIRE(p.php_admin_values.size() == 2);
    CHECK(p.php_admin_values.back().value == "1");
}

TEST_CASE("config: include= with absolute and prefix-relative globs, nested") {
    TempDir t;
    t.write("pools/b.conf", "[b]\nlisten = 9002\npm = static\npm.max_children = 1\n");
    t.write("pools/a.conf", "[a]\nlisten = 9001\npm = static\npm.max_children = 1\ninclude = " +
                                t.path + "/extra/*.inc\n");
    t.write("pools/ignored.txt", "[ignored]\nlisten = 9009\n");
    t.write("extra/x.inc", "php_admin_value[from_nested] = yes\n");
    t.write("more/c.conf", "[c]\nlisten = 9003\npm = static\npm.max_children = 1\n");
    std::string main = t.write("php-fpm.conf", "[global]\ninclude = " + t.path +
                                                   "/pools/*.conf\ninclude = more/*.conf\n");

    ParseOptions o;
    o.prefix = t.path;
    ParseResult r = load(main, o);
    REQUIRE(r.config);
    CHECK(r.messages.empty());
    std::vector<std::string> names;
    for (const auto& p : r.config->pools)
        names.push_back(p.name);
    CHECK(names == std::vector<std::string>{"a", "b", "c"}); // glob order, then the next include
    REQUIRE(r.config->pools[0].php_admin_values.size() == 1);
    CHECK(r.config->pools[0].php_admin_values[0].name == "from_nested");
    CHECK(r.config->pools[0].php_admin_values[0].value == "1"); // the INI scanner's yes
    CHECK(r.config->pools[2].listen == "9003");

    // An error inside an included file names that file and its line.
    t.write("bad/z.conf", "[z]\nlisten = 9004\nbogus_entry = 1\n");
    std::string bad_main = t.write("bad.conf", "include = bad/*.conf\n");
    ParseResult bad = load(bad_main, o);
    CHECK_FALSE(bad.config);
    REQUIRE_FALSE(bad.messages.empty());
    CHECK(bad.messages[0].text == "[" + t.path + "/bad/z.conf:3] unknown entry 'bogus_entry'");
}

TEST_CASE("config: validation after parsing") {
    Loaded none = load_text("[global]\n; only a comment\n");
    CHECK(texts(none.r) ==
          std::vector<std::string>{
              "No pool defined. at least one pool section must be specified in config file",
              "failed to post process the configuration"});
    Loaded nolisten = load_text("[www]\npm = static\npm.max_children = 1\n");
    CHECK(texts(nolisten.r) ==
          std::vector<std::string>{"[pool www] no listen address have been defined!",
                                   "failed to post process the configuration"});
    Loaded same = load_text("[a]\nlisten = 9000\npm = static\npm.max_children = 1\n"
                            "[b]\nlisten = 9000\npm = static\npm.max_children = 1\n");
    CHECK_FALSE(same.r.config);
    CHECK(texts(same.r) ==
          std::vector<std::string>{
              "[pool b] unable to set listen address as it's already used in another pool 'a'",
              "failed to post process the configuration"});
    // start_servers = min_spare + (max_spare - min_spare) / 2
    Loaded dyn = load_text("[www]\nlisten = 9000\npm = dynamic\npm.max_children = 10\n"
                           "pm.min_spare_servers = 2\npm.max_spare_servers = 7\n");
    REQUIRE(dyn.r.config);
    CHECK(texts(dyn.r) ==
          std::vector<std::string>{"[pool www] pm.start_servers is not set. It's been set to 4."});
    CHECK(dyn.r.config->pools[0].pm_start_servers == 4);
}

// php-fpm 8.2 compares 'unlimited' case-insensitively (-tt on "rlimit_core =
// UNLIMITED" prints -1).
TEST_CASE("config: rlimit_core = UNLIMITED, any case") {
    Loaded l =
        load_text("[global]\nrlimit_core = UNLIMITED\n" + kPool + "rlimit_core = Unlimited\n");
    REQUIRE(l.r.config);
    CHECK(l.r.config->global.rlimit_core == -1);
    CHECK(l.r.config->pools[0].rlimit_core == -1);
}

TEST_CASE("config: pm.max_memory (lowphp) takes php.ini sizes") {
    for (auto [text, bytes] : {std::pair{"256M", 268435456ull},
                               {"1G", 1073741824ull},
                               {"512k", 524288ull},
                               {"1000", 1000ull}}) {
        Loaded l = load_text(kPool + "pm.max_memory = " + text + "\n");
        REQUIRE(l.r.config);
        CHECK(l.r.config->pools[0].pm_max_memory == bytes);
        CHECK(dumped(*l.r.config, "pm.max_memory") == std::to_string(bytes));
    }
    Loaded none = load_text(kPool);
    REQUIRE(none.r.config);
    CHECK(none.r.config->pools[0].pm_max_memory == 0);
    CHECK(dumped(*none.r.config, "pm.max_memory") == "<absent>"); // -tt stays php-fpm's without it
    CHECK(one_error(kPool + "pm.max_memory = lots\n").find("pm.max_memory") != std::string::npos);
}

TEST_CASE("config: request_params_max_size (lowphp) defaults to 2M, 0 is no limit") {
    Loaded none = load_text(kPool);
    REQUIRE(none.r.config);
    CHECK(none.r.config->pools[0].request_params_max_size == 2097152);
    CHECK(dumped(*none.r.config, "request_params_max_size") == "<absent>");
    for (auto [text, bytes] : {std::pair{"64M", 67108864ull}, {"0", 0ull}}) {
        Loaded l = load_text(kPool + "request_params_max_size = " + text + "\n");
        REQUIRE(l.r.config);
        CHECK(l.r.config->pools[0].request_params_max_size == bytes);
        CHECK(dumped(*l.r.config, "request_params_max_size") == std::to_string(bytes));
    }
    CHECK(one_error(kPool + "request_params_max_size = big\n").find("request_params_max_size") !=
          std::string::npos);
}

TEST_CASE("config: worker.* (lowphp) turn a pool into worker mode") {
    Loaded none = load_text(kPool);
    REQUIRE(none.r.config);
    CHECK_FALSE(none.r.config->pools[0].worker_mode());
    CHECK(dumped(*none.r.config, "worker.script") == "<absent>");
    Loaded l = load_text(kPool + "worker.script = /srv/app/worker.php\nworker.max_requests = 500\n"
                                 "worker.keep_ini = session.save_path precision\n"
                                 "worker.watch = /srv/app/src /srv/app/config/*.yaml\n");
    REQUIRE(l.r.config);
    const PoolConfig& p = l.r.config->pools[0];
    CHECK(p.worker_mode());
    CHECK(p.worker_script == "/srv/app/worker.php");
    CHECK(p.worker_max_requests == 500);
    CHECK(p.worker_max_consecutive_failures == 6);
    CHECK(p.worker_keep_ini == "session.save_path precision");
    CHECK(p.worker_watch == "/srv/app/src /srv/app/config/*.yaml");
    CHECK(dumped(*l.r.config, "worker.watch") == "/srv/app/src /srv/app/config/*.yaml");
    CHECK(dumped(*l.r.config, "worker.max_consecutive_failures") == "6");
    CHECK(one_error(kPool + "worker.script = app/worker.php\n") ==
          "[pool www] 'worker.script' must be an absolute path ('app/worker.php')");
    CHECK(one_error(kPool + "worker.script = /w.php\nworker.max_requests = -1\n") ==
          "[pool www] 'worker.max_requests' can't be negative");
    CHECK(one_error(kPool + "worker.script = /w.php\nworker.max_consecutive_failures = 0\n") ==
          "[pool www] 'worker.max_consecutive_failures' must be a positive value");
    CHECK(one_error(kPool + "worker.max_requests = many\n").find("worker.max_requests") !=
          std::string::npos);
    Loaded match = load_text(kPool + "worker.script = /w.php\nworker.match = \"^/api(/|$)\"\n");
    REQUIRE(match.r.config);
    CHECK(match.r.config->pools[0].worker_match == "^/api(/|$)");
    CHECK(one_error(kPool + "worker.script = /w.php\nworker.match = \"^/api(\"\n")
              .find("[pool www] 'worker.match' is not a valid regular expression ('^/api('): ") ==
          0);
    CHECK(one_error("[www]\nlisten = 9000\npm = static\npm.max_children = 1\n"
                    "worker.script = /w.php\nworker.match = ^/api/\n") ==
          "[pool www] 'worker.match' needs pm = static and pm.max_children >= 2 (half the workers "
          "run the worker script, half run classic requests)");
    CHECK(one_error(kPool + "worker.match = ^/api/\n") ==
          "[pool www] 'worker.match' needs 'worker.script'");
}

// Run as root without -R, php-fpm checks `user` right after the pool's prefix,
// before its listen address and pm values (php-fpm8.2 -t as root).
TEST_CASE("config: a missing user is the first pool error when it is required") {
    ParseOptions opts;
    opts.require_user = true;
    Loaded l = load_text("[www]\nlisten =\npm = static\npm.max_children = 0\n", opts);
    REQUIRE_FALSE(l.r.config);
    REQUIRE(l.r.messages.size() == 2);
    CHECK(l.r.messages[0].level == LogLevel::Alert);
    CHECK(l.r.messages[0].text == "[pool www] user has not been defined");
    CHECK(l.r.messages[1].text == "failed to post process the configuration");
    Loaded with_user = load_text(kPool + "user = nobody\n", opts);
    CHECK(with_user.r.config);
    Loaded not_required = load_text(kPool);
    CHECK(not_required.r.config);
}

TEST_CASE("config: env[] refuses an empty value, php_value[] takes one (php-fpm8.2)") {
    CHECK(one_error(kPool + "env[FOO] =\n").find(":5] empty value") != std::string::npos);
    CHECK(php_value("") == "");
}

namespace {

// A scratch directory for the log files the checks open.
struct ScratchDir {
    std::string path;
    ScratchDir() {
        char tmpl[] = "/tmp/lowphp_test_logs_XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~ScratchDir() { std::system(("rm -rf '" + path + "'").c_str()); }
    bool exists(const std::string& name) const {
        return access((path + "/" + name).c_str(), F_OK) == 0;
    }
};

} // namespace

// php-fpm's post-processing opens (creates) error_log, the slowlog of a pool
// with request_slowlog_timeout and each access.log, so -t fails on one it
// cannot create; the messages are php-fpm8.2's.
TEST_CASE("config: log files are created while checking, and a failure names the file") {
    ScratchDir dir;
    ParseOptions opts;
    opts.open_log_files = true;
    std::string global = "[global]\nerror_log = " + dir.path + "/err.log\n";
    Loaded ok = load_text(global + kPool + "access.log = " + dir.path + "/access.log\n" +
                              "slowlog = " + dir.path + "/slow.log\n",
                          opts);
    REQUIRE(ok.r.config);
    CHECK(dir.exists("err.log"));
    CHECK(dir.exists("access.log"));
    CHECK_FALSE(dir.exists("slow.log")); // no request_slowlog_timeout: php-fpm never opens it

    Loaded slow = load_text(global + kPool + "request_slowlog_timeout = 5\nslowlog = " + dir.path +
                                "/nodir/slow.log\n",
                            opts);
    REQUIRE_FALSE(slow.r.config);
    CHECK(slow.r.messages.at(0).text == "Unable to create or open slowlog(" + dir.path +
                                            "/nodir/slow.log): No such file or directory (2)");
    Loaded access = load_text(global + kPool + "access.log = " + dir.path + "/nodir/a.log\n", opts);
    REQUIRE_FALSE(access.r.config);
    CHECK(access.r.messages.at(0).text == "failed to open access log (" + dir.path +
                                              "/nodir/a.log): No such file or directory (2)");
    Loaded error_log =
        load_text("[global]\nerror_log = " + dir.path + "/nodir/e.log\n" + kPool, opts);
    REQUIRE_FALSE(error_log.r.config);
    CHECK(error_log.r.messages.at(0).text ==
          "failed to open error_log (" + dir.path + "/nodir/e.log): No such file or directory (2)");
    CHECK(error_log.r.messages.at(1).text == "failed to post process the configuration");

    ScratchDir untouched;
    Loaded reading = load_text("[global]\nerror_log = " + untouched.path + "/err.log\n" + kPool);
    REQUIRE(reading.r.config);
    CHECK_FALSE(untouched.exists("err.log")); // without open_log_files nothing is created
}
