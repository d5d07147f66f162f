// php-fpm.conf and its includes, read with inih line by line, every directive
// checked against php-fpm 8.2's tables and messages (fpm_conf.c).
#include <cstdio>
#include <functional>
#include <glob.h>
#include <map>
#include <memory>
#include <cerrno>
#include <cstring>
#include <strings.h>

#include "lowphp/config.h"
#include "values.h"

namespace lowphp::config {
namespace {

using values::parse_bool;
using values::parse_int;
using values::parse_time;

struct Context; // parse state shared by nested includes

// A directive's setter: returns "" on success or php-fpm's reason text.
using GlobalSetter = std::function<std::string(GlobalConfig&, const std::string&)>;
using PoolSetter = std::function<std::string(PoolConfig&, const std::string&)>;

std::string set_int(long& out, const std::string& v, bool allow_negative = false) {
    long n;
    if (!parse_int(v, n) || (!allow_negative && n < 0))
        return "is not a valid number (greater or equal than zero)";
    out = n;
    return "";
}

template <typename T> GlobalSetter g_int(T GlobalConfig::*field) {
    return [field](GlobalConfig& g, const std::string& v) {
        long n = 0;
        std::string err = set_int(n, v);
        if (err.empty()) g.*field = static_cast<T>(n);
        return err;
    };
}
template <typename T> PoolSetter p_int(T PoolConfig::*field, bool negative = false) {
    return [field, negative](PoolConfig& p, const std::string& v) {
        long n = 0;
        std::string err = set_int(n, v, negative);
        if (err.empty()) p.*field = static_cast<T>(n);
        return err;
    };
}
template <typename C> std::function<std::string(C&, const std::string&)> bool_of(bool C::*field) {
    return [field](C& c, const std::string& v) {
        bool b;
        if (!parse_bool(v, b)) return std::string("invalid boolean value");
        c.*field = b;
        return std::string();
    };
}
template <typename C> std::function<std::string(C&, const std::string&)> time_of(int C::*field) {
    return [field](C& c, const std::string& v) {
        int t;
        if (!parse_time(v, t)) return std::string("unknown suffix used in time value");
        c.*field = t;
        return std::string();
    };
}
template <typename C>
std::function<std::string(C&, const std::string&)> str_of(std::string C::*field) {
    return [field](C& c, const std::string& v) {
        c.*field = v;
        return std::string();
    };
}
template <typename C>
std::function<std::string(C&, const std::string&)> opt_int(std::optional<int> C::*field,
                                                           bool negative) {
    return [field, negative](C& c, const std::string& v) {
        long n = 0;
        std::string err = set_int(n, v, negative);
        if (err.empty()) c.*field = static_cast<int>(n);
        return err;
    };
}
template <typename C>
std::function<std::string(C&, const std::string&)> rlimit_core(std::optional<long> C::*field) {
    return [field](C& c, const std::string& v) {
        if (v == "unlimited") {
            c.*field = -1;
            return std::string();
        }
        long n;
        if (!parse_int(v, n) || n < 0) return std::string("must be greater than zero or 'unlimited'");
        c.*field = n;
        return std::string();
    };
}

const std::map<std::string, GlobalSetter>& global_table() {
    static const std::map<std::string, GlobalSetter> t = {
        {"pid", str_of(&GlobalConfig::pid)},
        {"error_log", str_of(&GlobalConfig::error_log)},
        {"syslog.ident", str_of(&GlobalConfig::syslog_ident)},
        {"syslog.facility", str_of(&GlobalConfig::syslog_facility)},
        {"log_buffering", bool_of(&GlobalConfig::log_buffering)},
        {"log_level",
         [](GlobalConfig& g, const std::string& v) {
             static const std::map<std::string, LogLevel> levels = {
                 {"debug", LogLevel::Debug}, {"notice", LogLevel::Notice},
                 {"warning", LogLevel::Warning}, {"error", LogLevel::Error},
                 {"alert", LogLevel::Alert}};
             for (const auto& [name, level] : levels)
                 if (strcasecmp(name.c_str(), v.c_str()) == 0) return g.log_level = level, std::string();
             return std::string("invalid value for 'log_level'");
         }},
        {"log_limit", g_int(&GlobalConfig::log_limit)},
        {"emergency_restart_threshold", g_int(&GlobalConfig::emergency_restart_threshold)},
        {"emergency_restart_interval", time_of(&GlobalConfig::emergency_restart_interval)},
        {"process_control_timeout", time_of(&GlobalConfig::process_control_timeout)},
        {"process.max", g_int(&GlobalConfig::process_max)},
        {"process.priority", opt_int(&GlobalConfig::process_priority, true)},
        {"daemonize", bool_of(&GlobalConfig::daemonize)},
        {"rlimit_files", opt_int(&GlobalConfig::rlimit_files, false)},
        {"rlimit_core", rlimit_core(&GlobalConfig::rlimit_core)},
        {"events.mechanism", str_of(&GlobalConfig::events_mechanism)},
        {"systemd_interval", time_of(&GlobalConfig::systemd_interval)},
    };
    return t;
}

const std::map<std::string, PoolSetter>& pool_table() {
    static const std::map<std::string, PoolSetter> t = {
        {"prefix", str_of(&PoolConfig::prefix)},
        {"user", str_of(&PoolConfig::user)},
        {"group", str_of(&PoolConfig::group)},
        {"listen", str_of(&PoolConfig::listen)},
        {"listen.backlog", p_int(&PoolConfig::listen_backlog, true)},
        {"listen.owner", str_of(&PoolConfig::listen_owner)},
        {"listen.group", str_of(&PoolConfig::listen_group)},
        {"listen.mode", str_of(&PoolConfig::listen_mode)},
        {"listen.acl_users", str_of(&PoolConfig::listen_acl_users)},
        {"listen.acl_groups", str_of(&PoolConfig::listen_acl_groups)},
        {"listen.allowed_clients", str_of(&PoolConfig::listen_allowed_clients)},
        {"listen.setfib", opt_int(&PoolConfig::listen_setfib, false)},
        {"process.priority", opt_int(&PoolConfig::process_priority, true)},
        {"process.dumpable", bool_of(&PoolConfig::process_dumpable)},
        {"pm",
         [](PoolConfig& p, const std::string& v) {
             if (strcasecmp(v.c_str(), "static") == 0) p.pm = PmStyle::Static;
             else if (strcasecmp(v.c_str(), "dynamic") == 0) p.pm = PmStyle::Dynamic;
             else if (strcasecmp(v.c_str(), "ondemand") == 0) p.pm = PmStyle::Ondemand;
             else return std::string("invalid process manager (static, dynamic or ondemand)");
             p.pm_set = true;
             return std::string();
         }},
        {"pm.max_children", p_int(&PoolConfig::pm_max_children)},
        {"pm.start_servers", p_int(&PoolConfig::pm_start_servers)},
        {"pm.min_spare_servers", p_int(&PoolConfig::pm_min_spare_servers)},
        {"pm.max_spare_servers", p_int(&PoolConfig::pm_max_spare_servers)},
        {"pm.max_spawn_rate", p_int(&PoolConfig::pm_max_spawn_rate)},
        {"pm.process_idle_timeout", time_of(&PoolConfig::pm_process_idle_timeout)},
        {"pm.max_requests", p_int(&PoolConfig::pm_max_requests)},
        {"pm.status_path", str_of(&PoolConfig::pm_status_path)},
        {"pm.status_listen", str_of(&PoolConfig::pm_status_listen)},
        {"ping.path", str_of(&PoolConfig::ping_path)},
        {"ping.response", str_of(&PoolConfig::ping_response)},
        {"access.log", str_of(&PoolConfig::access_log)},
        {"access.format", str_of(&PoolConfig::access_format)},
        {"slowlog", str_of(&PoolConfig::slowlog)},
        {"request_slowlog_timeout", time_of(&PoolConfig::request_slowlog_timeout)},
        {"request_slowlog_trace_depth", p_int(&PoolConfig::request_slowlog_trace_depth)},
        {"request_terminate_timeout", time_of(&PoolConfig::request_terminate_timeout)},
        {"request_terminate_timeout_track_finished",
         bool_of(&PoolConfig::request_terminate_timeout_track_finished)},
        {"rlimit_files", opt_int(&PoolConfig::rlimit_files, false)},
        {"rlimit_core", rlimit_core(&PoolConfig::rlimit_core)},
        {"chroot", str_of(&PoolConfig::chroot)},
        {"chdir", str_of(&PoolConfig::chdir)},
        {"catch_workers_output", bool_of(&PoolConfig::catch_workers_output)},
        {"decorate_workers_output", bool_of(&PoolConfig::decorate_workers_output)},
        {"clear_env", bool_of(&PoolConfig::clear_env)},
        {"security.limit_extensions", str_of(&PoolConfig::security_limit_extensions)},
        {"apparmor_hat", str_of(&PoolConfig::apparmor_hat)},
        {"php_ini", str_of(&PoolConfig::php_ini)},               // lowphp addition
        {"php_ini_scan_dir", str_of(&PoolConfig::php_ini_scan_dir)}, // lowphp addition
    };
    return t;
}

struct Context {
    Config cfg;
    std::vector<Message> messages;
    std::string prefix;
    bool failed = false;
    int depth = 0;
    std::string section;
    int pool = -1; // index in cfg.pools of the current section, -1 for [global]
};

struct FileState {
    Context* ctx;
    std::string path;
    int line = 0;
};

void error(Context& c, std::string text) {
    c.messages.push_back({LogLevel::Error, std::move(text)});
    c.failed = true;
}

bool parse_file(Context& c, const std::string& path);

std::string resolve(const std::string& prefix, const std::string& path) {
    if (path.empty() || path[0] == '/') return path;
    return (prefix.empty() ? std::string("/usr") : prefix) + "/" + path;
}

void include(Context& c, const FileState& f, const std::string& pattern) {
    std::string full = resolve(c.prefix, pattern);
    glob_t g{};
    int rc = glob(full.c_str(), GLOB_ERR | GLOB_MARK, nullptr, &g);
    std::unique_ptr<glob_t, void (*)(glob_t*)> guard(&g, globfree);
    if (rc == GLOB_NOMATCH) {
        c.messages.push_back({LogLevel::Warning, "Nothing matches the include pattern '" + full +
                                                     "' from " + f.path + " at line " +
                                                     std::to_string(f.line) + "."});
        return;
    }
    if (rc != 0) {
        error(c, "Unable to globalize '" + full + "' (ret=" + std::to_string(rc) + ") from " +
                     f.path + " at line " + std::to_string(f.line) + ".");
        return;
    }
    for (size_t i = 0; i < g.gl_pathc; ++i) {
        std::string p = g.gl_pathv[i];
        if (!p.empty() && p.back() == '/') continue; // directories are skipped
        if (!parse_file(c, p)) return;
    }
}

// inih gives "php_value[x]" as the name; php-fpm's arrays keep key order and a
// later key replaces the earlier value.
bool set_array(Context& c, PoolConfig& p, const std::string& name, const std::string& value,
               std::string& err) {
    size_t open = name.find('[');
    if (open == std::string::npos || name.back() != ']') return false;
    std::string base = name.substr(0, open), key = name.substr(open + 1, name.size() - open - 2);
    auto upsert = [&](std::vector<IniSetting>& list, const std::string& v) {
        for (auto& s : list)
            if (s.name == key) return void(s.value = v);
        list.push_back({key, v});
    };
    bool b;
    if (base == "php_value" || base == "php_admin_value") {
        upsert(base == "php_value" ? p.php_values : p.php_admin_values, value);
    } else if (base == "php_flag" || base == "php_admin_flag") {
        if (!parse_bool(value, b)) return err = "invalid boolean value", true;
        upsert(base == "php_flag" ? p.php_values : p.php_admin_values, b ? "1" : "0");
    } else if (base == "env") {
        for (auto& e : p.env)
            if (e.first == key) return e.second = value, true;
        p.env.emplace_back(key, value);
    } else if (base == "access.suppress_path") {
        if (value.empty() || value[0] != '/') return err = "must start with '/'", true;
        p.access_suppress_path.push_back(value);
    } else {
        return false;
    }
    (void)c;
    return true;
}

std::string expand_pool(std::string v, const std::string& pool) {
    for (size_t pos = 0; (pos = v.find("$pool", pos)) != std::string::npos; pos += pool.size())
        v.replace(pos, 5, pool);
    return v;
}

void enter_section(Context& c, const std::string& name) {
    c.section = name;
    c.pool = -1;
    if (name == "global") return;
    for (size_t i = 0; i < c.cfg.pools.size(); ++i)
        if (c.cfg.pools[i].name == name) c.pool = static_cast<int>(i);
    if (c.pool < 0) {
        c.cfg.pools.emplace_back();
        c.cfg.pools.back().name = name;
        c.pool = static_cast<int>(c.cfg.pools.size() - 1);
    }
}

bool on_entry(FileState* f, const std::string& name, const std::string& raw) {
    Context& c = *f->ctx;
    std::string n = values::trim(name);
    std::string v = values::unquote_and_expand(raw);
    std::string where = "[" + f->path + ":" + std::to_string(f->line) + "] ";
    if (n == "include") {
        if (++c.depth > 5) {
            error(c, "Unable to include more than 5 levels of configuration files");
            return 0;
        }
        include(c, *f, v);
        --c.depth;
        return !c.failed;
    }
    if (c.section.empty()) {
        error(c, where + "unknown entry '" + n + "'");
        return false;
    }
    std::string err;
    bool known;
    if (c.pool < 0) {
        auto it = global_table().find(n);
        known = it != global_table().end();
        if (known) err = it->second(c.cfg.global, v);
    } else {
        PoolConfig& pool = c.cfg.pools[static_cast<size_t>(c.pool)];
        v = expand_pool(v, pool.name);
        auto it = pool_table().find(n);
        known = it != pool_table().end();
        if (known) err = it->second(pool, v);
        else known = set_array(c, pool, n, v, err);
    }
    if (!known) error(c, where + "unknown entry '" + n + "'");
    else if (!err.empty()) error(c, where + "unable to parse value for entry '" + n + "': " + err);
    return !c.failed;
}

// Cut a `;` comment that is not inside double quotes.
std::string strip_comment(const std::string& line) {
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
        if (line[i] == '"') quoted = !quoted;
        else if (line[i] == ';' && !quoted) return line.substr(0, i);
    }
    return line;
}

// One line of INI: blank, comment, [section] or name = value. (inih as built by
// Debian stops at 200 bytes a line, too short for php_admin_value lists.)
bool parse_line(FileState& f, const std::string& raw) {
    Context& c = *f.ctx;
    std::string line = values::trim(raw);
    if (line.empty() || line[0] == ';' || line[0] == '#') return true;
    if (line[0] == '[') {
        size_t end = line.find(']');
        if (end == std::string::npos) {
            error(c, "[" + f.path + ":" + std::to_string(f.line) + "] syntax error, unexpected end of line");
            return false;
        }
        enter_section(c, values::trim(line.substr(1, end - 1)));
        return true;
    }
    line = strip_comment(line);
    size_t eq = line.find('=');
    if (eq == std::string::npos) {
        error(c, "[" + f.path + ":" + std::to_string(f.line) + "] syntax error, unexpected end of line, expecting '='");
        return false;
    }
    return on_entry(&f, line.substr(0, eq), line.substr(eq + 1));
}

bool parse_file(Context& c, const std::string& path) {
    std::unique_ptr<FILE, int (*)(FILE*)> fp(fopen(path.c_str(), "r"), fclose);
    if (!fp) {
        error(c, "failed to open configuration file '" + path + "': " + strerror(errno) + " (" +
                     std::to_string(errno) + ")");
        return false;
    }
    FileState f{&c, path};
    std::string saved_section = c.section;
    int saved_pool = c.pool;
    char* buf = nullptr;
    size_t cap = 0;
    bool ok = true;
    while (ok && getline(&buf, &cap, fp.get()) >= 0) {
        ++f.line;
        ok = parse_line(f, buf);
    }
    free(buf);
    // An included file's sections do not leak into the rest of the includer.
    c.section = saved_section;
    c.pool = saved_pool;
    return ok && !c.failed;
}

} // namespace

bool validate(Config& cfg, std::vector<Message>& messages);
void resolve_paths(Config& cfg, const std::string& prefix);

ParseResult load(const std::string& path, const ParseOptions& opts) {
    Context c;
    c.prefix = opts.prefix;
    c.cfg.path = path;
    c.cfg.prefix = opts.prefix;
    ParseResult r;
    bool ok = parse_file(c, path);
    r.messages = std::move(c.messages);
    if (!ok) {
        r.messages.push_back({LogLevel::Error, "failed to load configuration file '" + path + "'"});
        return r;
    }
    resolve_paths(c.cfg, opts.prefix);
    if (!validate(c.cfg, r.messages)) {
        r.messages.push_back({LogLevel::Error, "failed to post process the configuration"});
        return r;
    }
    r.config = std::move(c.cfg);
    return r;
}

} // namespace lowphp::config
