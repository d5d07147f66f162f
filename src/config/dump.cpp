// -tt: the configuration as php-fpm prints it (fpm_conf_dump), one line each.
#include <string>

#include "internal.h"
#include "lowphp/log.h"

namespace lowphp::config {
namespace {

std::string s(const std::string& v) {
    return v.empty() ? "undefined" : v;
}
std::string b(bool v) {
    return v ? "yes" : "no";
}
std::string t(int v) {
    return std::to_string(v) + "s";
}
template <typename T> std::string o(const std::optional<T>& v) {
    return v ? std::to_string(*v) : "undefined";
}
// php-fpm's log_level stays 0 ("unknown value") until the file sets it.
std::string level(const GlobalConfig& g) {
    return g.log_level_set ? log::level_name(g.log_level) : "unknown value";
}
template <typename T> std::string zero(const std::optional<T>& v) {
    return std::to_string(v ? *v : 0);
}
std::string pm(PmStyle p) {
    return p == PmStyle::Static ? "static" : p == PmStyle::Dynamic ? "dynamic" : "ondemand";
}

std::vector<std::string> dump_global(const GlobalConfig& g) {
    return {
        "[global]",
        "\tpid = " + s(g.pid),
        "\terror_log = " + s(g.error_log),
        "\tsyslog.ident = " + g.syslog_ident,
        "\tsyslog.facility = " + std::to_string(syslog_facility_number(g.syslog_facility.c_str())),
        "\tlog_buffering = " + b(g.log_buffering),
        "\tlog_level = " + level(g),
        "\tlog_limit = " + std::to_string(g.log_limit),
        "\temergency_restart_interval = " + t(g.emergency_restart_interval),
        "\temergency_restart_threshold = " + std::to_string(g.emergency_restart_threshold),
        "\tprocess_control_timeout = " + t(g.process_control_timeout),
        "\tprocess.max = " + std::to_string(g.process_max),
        "\tprocess.priority = " + o(g.process_priority),
        "\tdaemonize = " + b(g.daemonize),
        "\trlimit_files = " + zero(g.rlimit_files),
        "\trlimit_core = " + zero(g.rlimit_core),
        "\tevents.mechanism = " +
            (g.events_mechanism.empty() ? std::string("epoll") : g.events_mechanism),
        "\tsystemd_interval = " + t(g.systemd_interval),
        " ",
    };
}

std::vector<std::string> dump_pool(const PoolConfig& p) {
    std::vector<std::string> pool = {
        "[" + p.name + "]",
        "\tprefix = " + s(p.prefix),
        "\tuser = " + s(p.user),
        "\tgroup = " + s(p.group),
        "\tlisten = " + s(p.listen),
        "\tlisten.backlog = " + std::to_string(p.listen_backlog),
        "\tlisten.acl_users = " + s(p.listen_acl_users),
        "\tlisten.acl_groups = " + s(p.listen_acl_groups),
        "\tlisten.owner = " + s(p.listen_owner),
        "\tlisten.group = " + s(p.listen_group),
        "\tlisten.mode = " + s(p.listen_mode),
        "\tlisten.allowed_clients = " + s(p.listen_allowed_clients),
        "\tprocess.priority = " + o(p.process_priority),
        "\tprocess.dumpable = " + b(p.process_dumpable),
        "\tpm = " + pm(p.pm),
        "\tpm.max_children = " + std::to_string(p.pm_max_children),
        "\tpm.start_servers = " + std::to_string(p.pm_start_servers),
        "\tpm.min_spare_servers = " + std::to_string(p.pm_min_spare_servers),
        "\tpm.max_spare_servers = " + std::to_string(p.pm_max_spare_servers),
        "\tpm.max_spawn_rate = " + std::to_string(p.pm_max_spawn_rate),
        "\tpm.process_idle_timeout = " + std::to_string(p.pm_process_idle_timeout),
        "\tpm.max_requests = " + std::to_string(p.pm_max_requests),
        "\tpm.status_path = " + s(p.pm_status_path),
        "\tpm.status_listen = " + s(p.pm_status_listen),
        "\tping.path = " + s(p.ping_path),
        "\tping.response = " + (p.ping_path.empty() ? "undefined" : s(p.ping_response)),
        "\taccess.log = " + s(p.access_log),
        "\taccess.format = " +
            (p.access_format_set || !p.access_log.empty() ? s(p.access_format) : "undefined"),
    };
    // access.suppress_path[] sits right after access.format in php-fpm's dump.
    for (const auto& v : p.access_suppress_path)
        pool.push_back("\taccess.suppress_path[] = " + v);
    std::vector<std::string> rest = {
        "\tslowlog = " + s(p.slowlog),
        "\trequest_slowlog_timeout = " + t(p.request_slowlog_timeout),
        "\trequest_slowlog_trace_depth = " + std::to_string(p.request_slowlog_trace_depth),
        "\trequest_terminate_timeout = " + t(p.request_terminate_timeout),
        "\trequest_terminate_timeout_track_finished = " +
            b(p.request_terminate_timeout_track_finished),
        "\trlimit_files = " + zero(p.rlimit_files),
        "\trlimit_core = " + zero(p.rlimit_core),
        "\tchroot = " + s(p.chroot),
        "\tchdir = " + s(p.chdir),
        "\tcatch_workers_output = " + b(p.catch_workers_output),
        "\tdecorate_workers_output = " + b(p.decorate_workers_output),
        "\tclear_env = " + b(p.clear_env),
        "\tsecurity.limit_extensions = " + s(p.security_limit_extensions),
    };
    pool.insert(pool.end(), rest.begin(), rest.end());
    for (const auto& [k, v] : p.env)
        pool.push_back("\tenv[" + k + "] = " + v);
    for (const auto& v : p.php_values)
        pool.push_back("\tphp_value[" + v.name + "] = " + v.value);
    for (const auto& v : p.php_admin_values)
        pool.push_back("\tphp_admin_value[" + v.name + "] = " + v.value);
    if (!p.php_ini.empty()) pool.push_back("\tphp_ini = " + p.php_ini);
    if (!p.php_ini_scan_dir.empty()) pool.push_back("\tphp_ini_scan_dir = " + p.php_ini_scan_dir);
    if (p.pm_max_memory) pool.push_back("\tpm.max_memory = " + std::to_string(p.pm_max_memory));
    if (p.request_params_max_size != config::PoolConfig::kDefaultParamsMaxSize)
        pool.push_back("\trequest_params_max_size = " + std::to_string(p.request_params_max_size));
    if (p.worker_mode()) {
        pool.push_back("\tworker.script = " + p.worker_script);
        pool.push_back("\tworker.max_requests = " + std::to_string(p.worker_max_requests));
        pool.push_back("\tworker.max_consecutive_failures = " +
                       std::to_string(p.worker_max_consecutive_failures));
        pool.push_back("\tworker.keep_ini = " + p.worker_keep_ini);
        pool.push_back("\tworker.watch = " + p.worker_watch);
        pool.push_back("\tworker.match = " + p.worker_match);
    }
    for (const auto& b : p.backends) {
        pool.push_back("\t" + std::string(backend_kind_name(b.kind)) + "[" + b.name +
                       "] = " + masked_dsn(b));
        pool.push_back("\tconnections.max[" + b.name + "] = " + std::to_string(b.max));
    }
    if (!p.backends.empty())
        pool.push_back(
            "\tconnections.wait_timeout = " + std::to_string(p.connections_wait_timeout_ms) + "ms");
    if (p.connections_reuse) {
        pool.push_back("\tconnections.reuse = yes");
        pool.push_back(
            "\tconnections.idle_timeout = " + std::to_string(p.connections_idle_timeout) + "s");
    }
    pool.push_back(" ");
    return pool;
}

} // namespace

std::vector<std::string> dump(const Config& cfg) {
    std::vector<std::string> out = dump_global(cfg.global);
    for (const auto& p : cfg.pools) {
        std::vector<std::string> pool = dump_pool(p);
        out.insert(out.end(), pool.begin(), pool.end());
    }
    return out;
}

} // namespace lowphp::config
