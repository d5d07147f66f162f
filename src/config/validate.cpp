// Post-processing of a parsed configuration: php-fpm's defaults, path
// resolution and checks (fpm_conf_process_all_pools), with its messages.
#include <cstring>
#include <map>
#include <string>

#include "lowphp/config.h"

namespace lowphp::config {
namespace {

// Relative paths: against the pool prefix, else -p, else php-fpm's defaults.
std::string full_path(const std::string& path, const std::string& prefix, const char* fallback) {
    if (path.empty() || path[0] == '/' || path == "syslog") return path;
    return (prefix.empty() ? std::string(fallback) : prefix) + "/" + path;
}

bool valid_path_chars(const std::string& p) {
    for (char ch : p)
        if (!isalnum(static_cast<unsigned char>(ch)) && !strchr("/_.~-", ch)) return false;
    return true;
}

bool check_http_path(const PoolConfig& p, const std::string& path, const char* what,
                     std::vector<Message>& m) {
    if (path.empty()) return true;
    if (path[0] != '/') {
        m.push_back({LogLevel::Error, "[pool " + p.name + "] the " + what + " path '" + path +
                                          "' must start with a '/'"});
        return false;
    }
    if (!valid_path_chars(path)) {
        m.push_back({LogLevel::Error, "[pool " + p.name + "] the " + what + " path '" + path +
                                          "' must contain only the following characters "
                                          "'[alphanum]/_-.~'"});
        return false;
    }
    return true;
}

bool check_dynamic(PoolConfig& p, std::vector<Message>& m) {
    auto err = [&](const std::string& t) {
        m.push_back({LogLevel::Alert, "[pool " + p.name + "] " + t});
        return false;
    };
    if (p.pm_min_spare_servers <= 0)
        return err("pm.min_spare_servers(" + std::to_string(p.pm_min_spare_servers) +
                   ") must be a positive value");
    if (p.pm_max_spare_servers <= 0)
        return err("pm.max_spare_servers(" + std::to_string(p.pm_max_spare_servers) +
                   ") must be a positive value");
    if (p.pm_min_spare_servers > p.pm_max_children || p.pm_max_spare_servers > p.pm_max_children)
        return err("pm.min_spare_servers(" + std::to_string(p.pm_min_spare_servers) +
                   ") and pm.max_spare_servers(" + std::to_string(p.pm_max_spare_servers) +
                   ") cannot be greater than pm.max_children(" +
                   std::to_string(p.pm_max_children) + ")");
    if (p.pm_max_spare_servers < p.pm_min_spare_servers)
        return err("pm.max_spare_servers(" + std::to_string(p.pm_max_spare_servers) +
                   ") must not be less than pm.min_spare_servers(" +
                   std::to_string(p.pm_min_spare_servers) + ")");
    if (p.pm_start_servers <= 0) {
        p.pm_start_servers =
            p.pm_min_spare_servers + (p.pm_max_spare_servers - p.pm_min_spare_servers) / 2;
        m.push_back({LogLevel::Notice, "[pool " + p.name + "] pm.start_servers is not set. It's "
                                           "been set to " + std::to_string(p.pm_start_servers) + "."});
    } else if (p.pm_start_servers < p.pm_min_spare_servers ||
               p.pm_start_servers > p.pm_max_spare_servers) {
        return err("pm.start_servers(" + std::to_string(p.pm_start_servers) +
                   ") must not be less than pm.min_spare_servers(" +
                   std::to_string(p.pm_min_spare_servers) +
                   ") and not greater than pm.max_spare_servers(" +
                   std::to_string(p.pm_max_spare_servers) + ")");
    }
    return true;
}

bool check_pool(PoolConfig& p, std::vector<Message>& m) {
    auto alert = [&](const std::string& t) {
        m.push_back({LogLevel::Alert, "[pool " + p.name + "] " + t});
        return false;
    };
    if (p.listen.empty()) return alert("no listen address have been defined!");
    if (!p.pm_set) return alert("the process manager is missing (static, dynamic or ondemand)");
    if (p.pm_max_children < 1) return alert("pm.max_children must be a positive value");
    if (p.pm == PmStyle::Dynamic && !check_dynamic(p, m)) return false;
    if (p.pm == PmStyle::Ondemand && p.pm_process_idle_timeout < 1)
        return alert("pm.process_idle_timeout(" + std::to_string(p.pm_process_idle_timeout) +
                     "s) must be greater than 0s");
    if (p.pm_max_spawn_rate < 1)
        return alert("pm.max_spawn_rate must be a positive value");
    if (p.request_slowlog_timeout > 0 && p.request_terminate_timeout > 0 &&
        p.request_slowlog_timeout > p.request_terminate_timeout)
        m.push_back({LogLevel::Warning,
                     "[pool " + p.name + "] 'request_slowlog_timeout' (" +
                         std::to_string(p.request_slowlog_timeout) +
                         ") can't be greater than 'request_terminate_timeout' (" +
                         std::to_string(p.request_terminate_timeout) + ")"});
    return check_http_path(p, p.pm_status_path, "status", m) &&
           check_http_path(p, p.ping_path, "ping", m);
}

} // namespace

void resolve_paths(Config& cfg, const std::string& prefix) {
    auto& g = cfg.global;
    if (g.error_log.empty()) g.error_log = "log/php-fpm.log";
    g.error_log = full_path(g.error_log, prefix, "/var");
    g.pid = full_path(g.pid, prefix, "/var");
    for (auto& p : cfg.pools) {
        const std::string& base = p.prefix.empty() ? prefix : p.prefix;
        if (!p.listen.empty() && p.listen.find('/') != std::string::npos)
            p.listen = full_path(p.listen, base, "/usr");
        p.slowlog = full_path(p.slowlog, base, "/var");
        p.access_log = full_path(p.access_log, base, "/var");
        if (p.chroot.rfind("$prefix", 0) == 0) p.chroot.replace(0, 7, base.empty() ? "/usr" : base);
    }
}

bool validate(Config& cfg, std::vector<Message>& messages) {
    if (cfg.pools.empty()) {
        messages.push_back({LogLevel::Error, "No pool defined. at least one pool section must be "
                                             "specified in config file"});
        return false;
    }
    std::map<std::string, std::string> listeners;
    for (auto& p : cfg.pools) {
        if (!check_pool(p, messages)) return false;
        auto [it, fresh] = listeners.emplace(p.listen, p.name);
        if (!fresh) {
            messages.push_back({LogLevel::Error, "[pool " + p.name +
                                                     "] unable to set listen address as it's "
                                                     "already used in another pool '" +
                                                     it->second + "'"});
            return false;
        }
    }
    return true;
}

} // namespace lowphp::config
