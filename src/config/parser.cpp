// php-fpm.conf and its includes, read line by line as fpm_conf_load_ini_file
// does, every directive checked against php-fpm 8.2's tables and messages.
//
// Not libinih: php-fpm hands each line to the Zend INI scanner (quotes that
// concatenate, ${VAR}, yes/no keywords, E_ALL & ~E_NOTICE expressions, per-line
// syntax errors), which inih cannot reproduce; values.cpp does that scanning.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <glob.h>
#include <map>
#include <memory>
#include <strings.h>

#include "internal.h"
#include "lowphp/log.h"
#include "values.h"

namespace lowphp::config {
namespace {

using values::parse_bool;
using values::parse_int;
using values::parse_time;

// A directive's setter: "" on success or php-fpm's reason text.
template <typename C> using Setter = std::function<std::string(C&, const std::string&)>;

template <typename C, typename T> Setter<C> int_of(T C::*field) {
    return [field](C& c, const std::string& v) {
        int n = 0;
        std::string err = parse_int(v, n);
        if (err.empty()) c.*field = n;
        return err;
    };
}
template <typename C> Setter<C> bool_of(bool C::*field) {
    return [field](C& c, const std::string& v) {
        bool b = false;
        std::string err = parse_bool(v, b);
        if (err.empty()) c.*field = b;
        return err;
    };
}
template <typename C> Setter<C> time_of(int C::*field) {
    return [field](C& c, const std::string& v) {
        int t = 0;
        std::string err = parse_time(v, t);
        if (err.empty()) c.*field = t;
        return err;
    };
}
template <typename C> Setter<C> str_of(std::string C::*field) {
    return [field](C& c, const std::string& v) {
        c.*field = v;
        return std::string();
    };
}
template <typename C> Setter<C> rlimit_core(std::optional<long> C::*field) {
    return [field](C& c, const std::string& v) {
        if (strcasecmp(v.c_str(), "unlimited") == 0) return c.*field = -1, std::string();
        int n = 0;
        std::string err = parse_int(v, n);
        if (err.empty() && n < 0) err = "must be greater than zero or 'unlimited'";
        if (err.empty()) c.*field = n;
        return err;
    };
}

std::string set_log_level(GlobalConfig& g, const std::string& v) {
    static const std::pair<const char*, LogLevel> levels[] = {{"debug", LogLevel::Debug},
                                                              {"notice", LogLevel::Notice},
                                                              {"warning", LogLevel::Warning},
                                                              {"error", LogLevel::Error},
                                                              {"alert", LogLevel::Alert}};
    for (const auto& [name, level] : levels)
        if (strcasecmp(name, v.c_str()) == 0) {
            g.log_level = level;
            g.log_level_set = true;
            return "";
        }
    return "invalid value for 'log_level'";
}

std::string set_facility(GlobalConfig& g, const std::string& v) {
    if (syslog_facility_number(v.c_str()) < 0) return "invalid value";
    g.syslog_facility = v;
    return "";
}

std::string set_pm(PoolConfig& p, const std::string& v) {
    static const std::pair<const char*, PmStyle> styles[] = {{"static", PmStyle::Static},
                                                             {"dynamic", PmStyle::Dynamic},
                                                             {"ondemand", PmStyle::Ondemand}};
    for (const auto& [name, style] : styles)
        if (strcasecmp(name, v.c_str()) == 0) {
            p.pm = style;
            p.pm_set = true;
            return "";
        }
    return "invalid process manager (static, dynamic or ondemand)";
}

const std::map<std::string, Setter<GlobalConfig>>& global_table() {
    using G = GlobalConfig;
    static const std::map<std::string, Setter<G>> t = {
        {"pid", str_of(&G::pid)},
        {"error_log", str_of(&G::error_log)},
        {"syslog.ident", str_of(&G::syslog_ident)},
        {"syslog.facility", set_facility},
        {"log_buffering", bool_of(&G::log_buffering)},
        {"log_level", set_log_level},
        {"log_limit", int_of(&G::log_limit)},
        {"emergency_restart_threshold", int_of(&G::emergency_restart_threshold)},
        {"emergency_restart_interval", time_of(&G::emergency_restart_interval)},
        {"process_control_timeout", time_of(&G::process_control_timeout)},
        {"process.max", int_of(&G::process_max)},
        {"process.priority", int_of(&G::process_priority)},
        {"daemonize", bool_of(&G::daemonize)},
        {"rlimit_files", int_of(&G::rlimit_files)},
        {"rlimit_core", rlimit_core(&G::rlimit_core)},
        {"events.mechanism", str_of(&G::events_mechanism)},
        {"systemd_interval", time_of(&G::systemd_interval)},
    };
    return t;
}

// listen.setfib is FreeBSD-only: php-fpm 8.2 on Linux calls it an unknown entry.
const std::map<std::string, Setter<PoolConfig>>& pool_table() {
    using P = PoolConfig;
    static const std::map<std::string, Setter<P>> t = {
        {"prefix", str_of(&P::prefix)},
        {"user", str_of(&P::user)},
        {"group", str_of(&P::group)},
        {"listen", str_of(&P::listen)},
        {"listen.backlog", int_of(&P::listen_backlog)},
        {"listen.owner", str_of(&P::listen_owner)},
        {"listen.group", str_of(&P::listen_group)},
        {"listen.mode", str_of(&P::listen_mode)},
        {"listen.acl_users", str_of(&P::listen_acl_users)},
        {"listen.acl_groups", str_of(&P::listen_acl_groups)},
        {"listen.allowed_clients", str_of(&P::listen_allowed_clients)},
        {"process.priority", int_of(&P::process_priority)},
        {"process.dumpable", bool_of(&P::process_dumpable)},
        {"pm", set_pm},
        {"pm.max_children", int_of(&P::pm_max_children)},
        {"pm.start_servers", int_of(&P::pm_start_servers)},
        {"pm.min_spare_servers", int_of(&P::pm_min_spare_servers)},
        {"pm.max_spare_servers", int_of(&P::pm_max_spare_servers)},
        {"pm.max_spawn_rate", int_of(&P::pm_max_spawn_rate)},
        {"pm.process_idle_timeout", time_of(&P::pm_process_idle_timeout)},
        {"pm.max_requests", int_of(&P::pm_max_requests)},
        {"pm.status_path", str_of(&P::pm_status_path)},
        {"pm.status_listen", str_of(&P::pm_status_listen)},
        {"ping.path", str_of(&P::ping_path)},
        {"ping.response", str_of(&P::ping_response)},
        {"access.log", str_of(&P::access_log)},
        {"access.format",
         [](P& p, const std::string& v) {
             p.access_format = v;
             p.access_format_set = true;
             return std::string();
         }},
        {"slowlog", str_of(&P::slowlog)},
        {"request_slowlog_timeout", time_of(&P::request_slowlog_timeout)},
        {"request_slowlog_trace_depth", int_of(&P::request_slowlog_trace_depth)},
        {"request_terminate_timeout", time_of(&P::request_terminate_timeout)},
        {"request_terminate_timeout_track_finished",
         bool_of(&P::request_terminate_timeout_track_finished)},
        {"rlimit_files", int_of(&P::rlimit_files)},
        {"rlimit_core", rlimit_core(&P::rlimit_core)},
        {"chroot", str_of(&P::chroot)},
        {"chdir", str_of(&P::chdir)},
        {"catch_workers_output", bool_of(&P::catch_workers_output)},
        {"decorate_workers_output", bool_of(&P::decorate_workers_output)},
        {"clear_env", bool_of(&P::clear_env)},
        {"security.limit_extensions", str_of(&P::security_limit_extensions)},
        {"apparmor_hat", str_of(&P::apparmor_hat)},
        {"php_ini", str_of(&P::php_ini)},                   // lowphp addition
        {"php_ini_scan_dir", str_of(&P::php_ini_scan_dir)}, // lowphp addition
        {"pm.max_memory",                                   // lowphp addition
         [](P& p, const std::string& v) { return values::parse_size(v, p.pm_max_memory); }},
        {"worker.script", str_of(&P::worker_script)},             // lowphp addition
        {"worker.max_requests", int_of(&P::worker_max_requests)}, // lowphp addition
        {"worker.max_consecutive_failures",                       // lowphp addition
         int_of(&P::worker_max_consecutive_failures)},
        {"worker.keep_ini", str_of(&P::worker_keep_ini)},                    // lowphp addition
        {"worker.watch", str_of(&P::worker_watch)},                          // lowphp addition
        {"worker.match", str_of(&P::worker_match)},                          // lowphp addition
        {"connections.reuse", bool_of(&P::connections_reuse)},               // lowphp addition
        {"connections.idle_timeout", time_of(&P::connections_idle_timeout)}, // lowphp addition
        {"connections.wait_timeout",                                         // lowphp addition
         [](P& p, const std::string& v) {
             return values::parse_duration_ms(v, p.connections_wait_timeout_ms);
         }},
        {"request_params_max_size", // lowphp addition
         [](P& p, const std::string& v) {
             return values::parse_size(v, p.request_params_max_size);
         }},
    };
    return t;
}

std::string lower(std::string s) {
    for (char& ch : s)
        ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
    return s;
}

std::string expand_pool(std::string v, const std::string& pool) {
    for (size_t pos = 0; (pos = v.find("$pool", pos)) != std::string::npos; pos += pool.size())
        v.replace(pos, 5, pool);
    return v;
}

// Parse state shared by nested includes. Like php-fpm's globals, the current
// section and the line counter are NOT restored when an include returns: lines
// after an include go to the included file's last section and are numbered on
// from the included file's count (php-fpm reports them that way).
struct Context {
    Config cfg;
    ParseState state;
    std::vector<Message> messages;
    std::string prefix; // where relative include= lands
    int recursion = 0;
    int lineno = 0;
    int pool = -1; // index in cfg.pools of the current section, -1 for [global]
    std::vector<SourceLine>* source = nullptr; // ParseOptions::keep_source

    void error(std::string text) { messages.push_back({LogLevel::Error, std::move(text), false}); }
    std::string where(const std::string& file) const {
        return "[" + file + ":" + std::to_string(lineno) + "] ";
    }
};

bool load_file(Context& c, const std::string& path);

bool include(Context& c, const std::string& file, const std::string& pattern) {
    std::string full = pattern[0] == '/' ? pattern : c.prefix + "/" + pattern;
    glob_t g{};
    int rc = glob(full.c_str(), GLOB_ERR | GLOB_MARK, nullptr, &g);
    std::unique_ptr<glob_t, void (*)(glob_t*)> guard(&g, globfree);
    std::string from = " from " + file + " at line ";
    if (rc == GLOB_NOMATCH) {
        c.messages.push_back({LogLevel::Warning,
                              "Nothing matches the include pattern '" + full + "'" + from +
                                  std::to_string(c.lineno) + ".",
                              false});
        return true;
    }
    if (rc != 0) {
        c.error("Unable to globalize '" + full + "' (ret=" + std::to_string(rc) + ")" + from +
                std::to_string(c.lineno) + ".");
        return false;
    }
    for (size_t i = 0; i < g.gl_pathc; ++i) {
        std::string p = g.gl_pathv[i];
        if (p.empty() || p.back() == '/') continue; // directories are skipped
        if (!load_file(c, p)) {
            c.error("Unable to include " + p + from + std::to_string(c.lineno));
            return false;
        }
    }
    return true;
}

// php_value[k], env[K], access.suppress_path[] (fpm_conf_ini_parser_array).
std::string set_array(PoolConfig& p, const std::string& name, const std::string& key,
                      const std::string& value) {
    if (name == "pgsql") return set_backend(p, BackendKind::Pgsql, key, value);
    if (name == "mysql") return set_backend(p, BackendKind::Mysql, key, value);
    if (name == "redis") return set_backend(p, BackendKind::Redis, key, value);
    if (name == "connections.max") return set_connections_max(p, key, value);
    if (name == "access.suppress_path") {
        if (!key.empty()) return "Keys provided to field 'access.suppress_path' are ignored";
        if (value.empty() || value[0] != '/')
            return "Values provided to field 'access.suppress_path' must begin with '/'";
        p.access_suppress_path.insert(p.access_suppress_path.begin(), value);
        return "";
    }
    bool flag = name == "php_flag" || name == "php_admin_flag";
    bool admin = name == "php_admin_value" || name == "php_admin_flag";
    if (name != "env" && name != "php_value" && !flag && !admin)
        return "unknown directive '" + name + "'";
    if (key.empty()) return "You must provide a key for field '" + name + "'";
    if (name == "env") {
        if (value.empty()) return "empty value"; // php-fpm: env[] only, php_value[] may be ""
        p.env.insert(p.env.begin(), {key, value});
        return "";
    }
    std::string stored = value;
    if (flag) {
        bool b = false;
        std::string err = parse_bool(value, b);
        if (!err.empty()) return "error while parsing '" + name + "[" + key + "]' : " + err;
        stored = b ? "1" : "0";
    }
    auto& list = admin ? p.php_admin_values : p.php_values;
    list.insert(list.begin(), IniSetting{key, stored});
    return "";
}

template <typename C>
bool apply(Context& c, const std::string& file, const std::map<std::string, Setter<C>>& table,
           C& target, const std::string& name, const std::string& value) {
    auto it = table.find(lower(name));
    if (it == table.end()) {
        c.error(c.where(file) + "unknown entry '" + name + "'");
        return false;
    }
    std::string err = it->second(target, value);
    if (!err.empty())
        c.error(c.where(file) + "unable to parse value for entry '" + name + "': " + err);
    return err.empty();
}

bool on_entry(Context& c, const std::string& file, const values::Line& l) {
    if (strcasecmp(l.name.c_str(), "include") == 0 && !l.offset)
        return l.value.empty() || include(c, file, l.value);
    if (c.pool < 0) {
        if (l.offset) {
            c.error(c.where(file) + "Array are not allowed in the global section");
            return false;
        }
        return apply(c, file, global_table(), c.cfg.global, l.name, l.value);
    }
    PoolConfig& p = c.cfg.pools[static_cast<size_t>(c.pool)];
    std::string value = expand_pool(l.value, p.name);
    if (!l.offset) {
        c.state.pools[static_cast<size_t>(c.pool)].seen.insert(lower(l.name));
        return apply(c, file, pool_table(), p, l.name, value);
    }
    std::string err = set_array(p, l.name, *l.offset, value);
    if (!err.empty()) c.error(c.where(file) + err);
    return err.empty();
}

void enter_section(Context& c, const std::string& name) {
    c.pool = -1;
    if (strcasecmp(name.c_str(), "global") == 0) return;
    for (size_t i = 0; i < c.cfg.pools.size(); ++i)
        if (c.cfg.pools[i].name == name) c.pool = static_cast<int>(i);
    if (c.pool >= 0) return;
    c.cfg.pools.emplace_back();
    c.cfg.pools.back().name = name;
    c.state.pools.emplace_back();
    c.pool = static_cast<int>(c.cfg.pools.size() - 1);
}

// The line for --migrate. A line the loader refuses fails the load, so it
// is kept as mere text.
void keep(Context& c, const std::string& file, const std::string& text, const values::Line& l) {
    if (!c.source) return;
    SourceLine::Kind kind = l.kind == values::Line::Section ? SourceLine::Section
                            : l.kind == values::Line::Entry ? SourceLine::Entry
                                                            : SourceLine::Text;
    std::string line = text.ends_with('\n') ? text.substr(0, text.size() - 1) : text;
    c.source->push_back(
        {kind, file, std::move(line), l.name, l.value, l.written_name, l.written_value});
}

bool on_line(Context& c, const std::string& file, const std::string& text) {
    values::Line l = values::scan_line(text);
    keep(c, file, text, l);
    switch (l.kind) {
    case values::Line::Empty:
        return true;
    case values::Line::Section:
        enter_section(c, l.name);
        return true;
    case values::Line::SyntaxError:
        c.messages.push_back({LogLevel::Error, "PHP:  " + l.value, true});
        return false;
    case values::Line::NoValue:
        c.error(c.where(file) + "value is NULL for a ZEND_INI_PARSER_ENTRY");
        return false;
    case values::Line::Entry:
        return on_entry(c, file, l);
    }
    return false;
}

// getline()'s buffer, freed whatever way the loop ends.
struct LineBuffer {
    char* data = nullptr;
    size_t cap = 0;
    LineBuffer() = default;
    LineBuffer(const LineBuffer&) = delete;
    LineBuffer& operator=(const LineBuffer&) = delete;
    ~LineBuffer() { free(data); }
};

bool read_lines(Context& c, const std::string& path, FILE* fp) {
    LineBuffer buf;
    bool ended_with_newline = true;
    for (ssize_t n; (n = getline(&buf.data, &buf.cap, fp)) >= 0;) {
        ++c.lineno;
        ended_with_newline = n > 0 && buf.data[n - 1] == '\n';
        // A UTF-8 byte order mark (editors on Windows) is not part of the text.
        const char* line = buf.data;
        if (c.lineno == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0) line += 3;
        if (!on_line(c, path, line)) return false;
    }
    // php-fpm parses the empty remainder after the last newline as one more line.
    if (ended_with_newline) ++c.lineno;
    return true;
}

bool load_file(Context& c, const std::string& path) {
    if (c.recursion++ > 4) {
        c.error("failed to include more than 5 files recursively");
        --c.recursion;
        return false;
    }
    std::unique_ptr<FILE, int (*)(FILE*)> fp(fopen(path.c_str(), "r"), fclose);
    if (!fp) {
        c.error("failed to open configuration file '" + path + "'" + log::errno_suffix(errno));
        --c.recursion;
        return false;
    }
    if (c.source) c.source->push_back({SourceLine::Opened, path, "", "", "", "", ""});
    c.lineno = 0;
    bool ok = read_lines(c, path, fp.get());
    --c.recursion;
    return ok;
}

} // namespace

ParseResult load(const std::string& path, const ParseOptions& opts) {
    ParseResult r;
    Context c;
    if (opts.keep_source) c.source = &r.source;
    c.prefix = !opts.prefix.empty() ? opts.prefix
                                    : (!opts.default_prefix.empty() ? opts.default_prefix : "/usr");
    c.cfg.path = path;
    c.cfg.prefix = opts.prefix;
    bool ok = load_file(c, path);
    r.messages = std::move(c.messages);
    if (!ok) {
        r.messages.push_back(
            {LogLevel::Error, "failed to load configuration file '" + path + "'", false});
        return r;
    }
    size_t before = r.messages.size();
    bool global_ok = false;
    bool processed = post_process(c.cfg, c.state, opts, r.messages, global_ok);
    if (global_ok) {
        r.global = c.cfg.global;
        r.error_log_from = before;
    }
    if (!processed) {
        r.messages.push_back({LogLevel::Error, "failed to post process the configuration", false});
        return r;
    }
    r.config = std::move(c.cfg);
    return r;
}

} // namespace lowphp::config
