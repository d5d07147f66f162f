// Post-processing of a parsed configuration as php-fpm 8.2's fpm_conf_post_process
// and fpm_conf_process_all_pools do it: defaults, path resolution, checks, with
// their messages, levels and order. With ParseOptions::open_log_files it also
// opens (creates) error_log, each slowlog and access log where php-fpm does, so
// -t fails on a log the server could not write.
//
// Left to main (they need the system's user database): user/group lookups
// ("cannot get uid for user '%s'").
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <regex.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "internal.h"
#include "lowphp/access_format.h"
#include "lowphp/log.h"

namespace lowphp::config {
namespace {

// Debian's PHP_LOCALSTATEDIR: where pid and error_log land without -p.
constexpr const char* kLocalStateDir = "/var";

struct Checker {
    std::vector<Message>& out;
    bool fail(LogLevel level, std::string text) {
        out.push_back({level, std::move(text), false});
        return false;
    }
};

// Opens (creating) a log file as php-fpm does while checking its configuration;
// on failure, php-fpm's ": <strerror> (<errno>)" suffix.
std::optional<std::string> open_failure(const std::string& path) {
    int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, S_IRUSR | S_IWUSR);
    if (fd >= 0) {
        close(fd);
        return std::nullopt;
    }
    return log::errno_suffix(errno);
}

bool is_dir(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// fpm_evaluate_full_path: absolute paths stay, others go under `prefix`;
// with `expand`, a leading "$prefix" becomes the prefix (php-fpm keeps the '/').
std::string full_path(const std::string& path, const std::string& prefix, bool expand = false) {
    if (path.empty() || path[0] == '/') return path;
    if (expand && path.rfind("$prefix", 0) == 0) return prefix + "/" + path.substr(7);
    return prefix + "/" + path;
}

// A FastCGI socket path (not host:port, not a bare port) is relative to the prefix.
bool is_unix_address(const std::string& listen) {
    if (listen.find(':') != std::string::npos) return false;
    return listen.find_first_not_of("0123456789") != std::string::npos;
}

bool valid_http_path(Checker& ck, const PoolConfig& p, const std::string& path, const char* what) {
    std::string head = "[pool " + p.name + "] the " + what + " path '" + path + "' must ";
    if (path[0] != '/') return ck.fail(LogLevel::Error, head + "start with a '/'");
    for (char ch : path)
        if (!isalnum(static_cast<unsigned char>(ch)) && !strchr("/_.~-", ch))
            return ck.fail(LogLevel::Error,
                           head + "contain only the following characters '[alphanum]/_-.~'");
    return true;
}

bool check_dynamic(Checker& ck, PoolConfig& p) {
    auto alert = [&](const std::string& t) {
        return ck.fail(LogLevel::Alert, "[pool " + p.name + "] " + t);
    };
    auto n = [](int v) { return "(" + std::to_string(v) + ")"; };
    int min = p.pm_min_spare_servers, max = p.pm_max_spare_servers;
    if (min <= 0) return alert("pm.min_spare_servers" + n(min) + " must be a positive value");
    if (max <= 0) return alert("pm.max_spare_servers" + n(max) + " must be a positive value");
    if (min > p.pm_max_children || max > p.pm_max_children)
        return alert("pm.min_spare_servers" + n(min) + " and pm.max_spare_servers" + n(max) +
                     " cannot be greater than pm.max_children" + n(p.pm_max_children));
    if (max < min)
        return alert("pm.max_spare_servers" + n(max) +
                     " must not be less than pm.min_spare_servers" + n(min));
    if (p.pm_start_servers <= 0) {
        p.pm_start_servers = min + (max - min) / 2;
        ck.out.push_back({LogLevel::Notice,
                          "[pool " + p.name + "] pm.start_servers is not set. It's been set to " +
                              std::to_string(p.pm_start_servers) + ".",
                          false});
    } else if (p.pm_start_servers < min || p.pm_start_servers > max) {
        return alert("pm.start_servers" + n(p.pm_start_servers) +
                     " must not be less than pm.min_spare_servers" + n(min) +
                     " and not greater than pm.max_spare_servers" + n(max));
    }
    if (p.pm_max_spawn_rate < 1) return alert("pm.max_spawn_rate must be a positive value");
    return true;
}

bool check_pm(Checker& ck, PoolConfig& p) {
    std::string pool = "[pool " + p.name + "] ";
    if (p.process_priority && (*p.process_priority < -19 || *p.process_priority > 20))
        return ck.fail(LogLevel::Error, pool + "process.priority must be included into [-19,20]");
    if (!p.pm_set)
        return ck.fail(LogLevel::Alert,
                       pool + "the process manager is missing (static, dynamic or ondemand)");
    if (p.pm_max_children < 1)
        return ck.fail(LogLevel::Alert, pool + "pm.max_children must be a positive value");
    if (p.pm == PmStyle::Dynamic) return check_dynamic(ck, p);
    if (p.pm == PmStyle::Ondemand && p.pm_process_idle_timeout < 1)
        return ck.fail(LogLevel::Alert, pool + "pm.process_idle_timeout(" +
                                            std::to_string(p.pm_process_idle_timeout) +
                                            "s) must be greater than 0s");
    return true;
}

bool check_status_ping(Checker& ck, PoolConfig& p) {
    if (!p.pm_status_listen.empty() && p.pm_status_path.empty()) p.pm_status_path = "/";
    if (!p.pm_status_path.empty() && !valid_http_path(ck, p, p.pm_status_path, "status"))
        return false;
    return p.ping_path.empty() || valid_http_path(ck, p, p.ping_path, "ping");
}

bool check_slowlog(Checker& ck, PoolConfig& p, const ParseState::Pool& seen,
                   const ParseOptions& opts) {
    std::string pool = "[pool " + p.name + "] ";
    if (p.request_slowlog_timeout) {
        if (p.slowlog.empty())
            return ck.fail(
                LogLevel::Error,
                pool + "'slowlog' must be specified for use with 'request_slowlog_timeout'");
        if (auto err = opts.open_log_files ? open_failure(p.slowlog) : std::nullopt)
            return ck.fail(LogLevel::Error,
                           "Unable to create or open slowlog(" + p.slowlog + ")" + *err);
        if (p.request_terminate_timeout && p.request_slowlog_timeout > p.request_terminate_timeout)
            return ck.fail(LogLevel::Error,
                           pool + "'request_slowlog_timeout' (" +
                               std::to_string(p.request_slowlog_timeout) +
                               ") can't be greater than 'request_terminate_timeout' (" +
                               std::to_string(p.request_terminate_timeout) + ")");
    }
    // php-fpm's field is 0 until given; 0 then means the default depth of 20.
    bool given =
        seen.seen.count("request_slowlog_trace_depth") && p.request_slowlog_trace_depth != 0;
    if (!given) {
        p.request_slowlog_trace_depth = 20;
        return true;
    }
    if (p.slowlog.empty())
        return ck.fail(
            LogLevel::Error,
            pool + "'slowlog' must be specified for use with 'request_slowlog_trace_depth'");
    if (p.request_slowlog_trace_depth < 0)
        return ck.fail(LogLevel::Error, pool + "'request_slowlog_trace_depth' (" +
                                            std::to_string(p.request_slowlog_trace_depth) +
                                            ") must be a positive value");
    return true;
}

bool check_dirs(Checker& ck, PoolConfig& p, const std::string& base) {
    std::string pool = "[pool " + p.name + "] ";
    p.chroot = full_path(p.chroot, base, true);
    if (!p.chroot.empty() && !is_dir(p.chroot))
        return ck.fail(LogLevel::Error, pool + "the chroot path '" + p.chroot +
                                            "' does not exist or is not a directory");
    p.chdir = full_path(p.chdir, base);
    if (p.chdir.empty()) return true;
    if (p.chroot.empty() && !is_dir(p.chdir))
        return ck.fail(LogLevel::Error, pool + "the chdir path '" + p.chdir +
                                            "' does not exist or is not a directory");
    std::string inside = p.chroot + p.chdir;
    if (!p.chroot.empty() && !is_dir(inside))
        return ck.fail(LogLevel::Error, pool + "the chdir path '" + p.chdir +
                                            "' within the chroot path '" + p.chroot + "' ('" +
                                            inside + "') does not exist or is not a directory");
    return true;
}

// worker.match splits the pool's workers in two kinds by slot (worker mode,
// classic, in turn): a fixed number of each, at least one.
bool check_worker_match(Checker& ck, const PoolConfig& p) {
    std::string pool = "[pool " + p.name + "] ";
    if (p.worker_match.empty()) return true;
    regex_t re;
    if (int rc = regcomp(&re, p.worker_match.c_str(), REG_EXTENDED | REG_NOSUB); rc != 0) {
        char why[256];
        regerror(rc, &re, why, sizeof why);
        return ck.fail(LogLevel::Error, pool +
                                            "'worker.match' is not a valid regular expression ('" +
                                            p.worker_match + "'): " + why);
    }
    regfree(&re);
    if (p.pm != PmStyle::Static || p.pm_max_children < 2)
        return ck.fail(LogLevel::Error,
                       pool + "'worker.match' needs pm = static and pm.max_children >= 2 (half "
                              "the workers run the worker script, half run classic requests)");
    return true;
}

// Worker mode: the script is opened by the worker, after chroot (so an
// absolute path inside it, as SCRIPT_FILENAME would be).
bool check_worker(Checker& ck, const PoolConfig& p) {
    std::string pool = "[pool " + p.name + "] ";
    if (!p.worker_mode())
        return p.worker_match.empty()
                   ? true
                   : ck.fail(LogLevel::Error, pool + "'worker.match' needs 'worker.script'");
    if (p.worker_script[0] != '/')
        return ck.fail(LogLevel::Error, pool + "'worker.script' must be an absolute path ('" +
                                            p.worker_script + "')");
    if (p.worker_max_requests < 0)
        return ck.fail(LogLevel::Error, pool + "'worker.max_requests' can't be negative");
    if (p.worker_max_consecutive_failures < 1)
        return ck.fail(LogLevel::Error,
                       pool + "'worker.max_consecutive_failures' must be a positive value");
    return check_worker_match(ck, p);
}

// Backends: connections.max[] must name a declared backend; the others get
// one connection per worker.
bool check_backends(Checker& ck, PoolConfig& p) {
    std::string err = apply_connections_max(p);
    return err.empty() ? true : ck.fail(LogLevel::Error, "[pool " + p.name + "] " + err);
}

bool process_pool(Checker& ck, PoolConfig& p, const ParseState::Pool& seen,
                  const std::string& prefix, const ParseOptions& opts) {
    if (!p.prefix.empty()) {
        p.prefix = full_path(p.prefix, prefix);
        if (!is_dir(p.prefix))
            return ck.fail(LogLevel::Error, "[pool " + p.name + "] the prefix '" + p.prefix +
                                                "' does not exist or is not a directory");
    }
    if (opts.require_user && p.user.empty())
        return ck.fail(LogLevel::Alert, "[pool " + p.name + "] user has not been defined");
    const std::string& base = p.prefix.empty() ? prefix : p.prefix;
    if (p.listen.empty())
        return ck.fail(LogLevel::Alert,
                       "[pool " + p.name + "] no listen address have been defined!");
    if (is_unix_address(p.listen)) p.listen = full_path(p.listen, base);
    if (!check_pm(ck, p) || !check_status_ping(ck, p)) return false;
    p.access_log = full_path(p.access_log, base);
    p.slowlog = full_path(p.slowlog, base);
    return check_slowlog(ck, p, seen, opts) && check_dirs(ck, p, base) && check_worker(ck, p) &&
           check_backends(ck, p);
}

// fpm_log_open, then the access.format of each pool: after every pool passed.
bool check_access_logs(Checker& ck, const std::vector<PoolConfig>& pools,
                       const ParseOptions& opts) {
    for (const auto& p : pools)
        if (auto err = !p.access_log.empty() && opts.open_log_files ? open_failure(p.access_log)
                                                                    : std::nullopt)
            return ck.fail(LogLevel::Error,
                           "failed to open access log (" + p.access_log + ")" + *err);
    for (const auto& p : pools) {
        if (p.access_log.empty()) continue;
        std::string warning = check_access_format(p.access_format);
        if (warning.empty()) continue;
        ck.out.push_back({LogLevel::Warning, warning, false});
        return ck.fail(LogLevel::Error, "[pool " + p.name + "] wrong format for access.format '" +
                                            p.access_format + "'");
    }
    return true;
}

bool check_global(Checker& ck, GlobalConfig& g, const ParseOptions& opts) {
    const std::string& base = opts.prefix.empty() ? std::string(kLocalStateDir) : opts.prefix;
    g.pid = full_path(g.pid, base);
    if (g.log_limit < 512) return ck.fail(LogLevel::Error, "log_limit must be greater than 512");
    if (g.process_max < 0) return ck.fail(LogLevel::Error, "process_max can't be negative");
    if (g.process_priority && (*g.process_priority < -19 || *g.process_priority > 20))
        return ck.fail(LogLevel::Error, "process.priority must be included into [-19,20]");
    if (g.error_log.empty()) g.error_log = "log/php-fpm.log";
    if (g.error_log != "syslog") {
        g.error_log = full_path(g.error_log, base);
        if (auto err = opts.open_log_files ? open_failure(g.error_log) : std::nullopt)
            return ck.fail(LogLevel::Error,
                           "failed to open error_log (" + g.error_log + ")" + *err);
    }
    return true;
}

// fpm_event_pre_init, after error_log is open.
bool check_events_mechanism(Checker& ck, const GlobalConfig& g) {
    const std::string& ev = g.events_mechanism;
    if (!ev.empty() && strcasecmp(ev.c_str(), "epoll") && strcasecmp(ev.c_str(), "poll") &&
        strcasecmp(ev.c_str(), "select"))
        return ck.fail(LogLevel::Error,
                       "event mechanism '" + ev + "' is not available on this system");
    return true;
}

// Two pools on one address: php-fpm names the later pool first.
bool check_listen_unique(Checker& ck, const std::vector<PoolConfig>& pools) {
    for (size_t i = 0; i < pools.size(); ++i)
        for (size_t j = i + 1; j < pools.size(); ++j)
            if (pools[i].listen == pools[j].listen)
                return ck.fail(
                    LogLevel::Error,
                    "[pool " + pools[j].name +
                        "] unable to set listen address as it's already used in another pool '" +
                        pools[i].name + "'");
    return true;
}

} // namespace

int syslog_facility_number(const char* name) {
    static const std::pair<const char*, int> names[] = {
        {"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV}, {"cron", LOG_CRON},
        {"daemon", LOG_DAEMON}, {"ftp", LOG_FTP},           {"kern", LOG_KERN},
        {"lpr", LOG_LPR},       {"mail", LOG_MAIL},         {"news", LOG_NEWS},
        {"syslog", LOG_SYSLOG}, {"user", LOG_USER},         {"uucp", LOG_UUCP},
        {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},     {"local2", LOG_LOCAL2},
        {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},     {"local5", LOG_LOCAL5},
        {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7}};
    for (const auto& [n, v] : names)
        if (strcasecmp(n, name) == 0) return v;
    return -1;
}

bool post_process(Config& cfg, const ParseState& state, const ParseOptions& opts,
                  std::vector<Message>& messages, bool& global_ok) {
    Checker ck{messages};
    global_ok = check_global(ck, cfg.global, opts);
    if (!global_ok || !check_events_mechanism(ck, cfg.global)) return false;
    if (cfg.pools.empty())
        return ck.fail(
            LogLevel::Error,
            "No pool defined. at least one pool section must be specified in config file");
    std::string prefix = !opts.prefix.empty()
                             ? opts.prefix
                             : (!opts.default_prefix.empty() ? opts.default_prefix : "/usr");
    for (size_t i = 0; i < cfg.pools.size(); ++i)
        if (!process_pool(ck, cfg.pools[i], state.pools[i], prefix, opts)) return false;
    return check_listen_unique(ck, cfg.pools) && check_access_logs(ck, cfg.pools, opts);
}

} // namespace lowphp::config
