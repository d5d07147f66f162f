// -tt: the configuration as php-fpm prints it (fpm_conf_dump), one line each.
#include <string>

#include "lowphp/config.h"

namespace lowphp::config {
namespace {

std::string s(const std::string& v) { return v.empty() ? "undefined" : v; }
std::string b(bool v) { return v ? "yes" : "no"; }
std::string t(int v) { return std::to_string(v) + "s"; }
template <typename T> std::string o(const std::optional<T>& v) {
    return v ? std::to_string(*v) : "undefined";
}
std::string level(LogLevel l) {
    switch (l) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Notice: return "notice";
    case LogLevel::Warning: return "warning";
    case LogLevel::Error: return "error";
    case LogLevel::Alert: return "alert";
    }
    return "unknown value";
}
std::string pm(PmStyle p) {
    return p == PmStyle::Static ? "static" : p == PmStyle::Dynamic ? "dynamic" : "ondemand";
}

} // namespace

std::vector<std::string> dump(const Config& cfg) {
    const auto& g = cfg.global;
    std::vector<std::string> out = {
        "[global]",
        "\tpid = " + s(g.pid),
        "\terror_log = " + s(g.error_log),
        "\tsyslog.ident = " + g.syslog_ident,
        "\tsyslog.facility = " + g.syslog_facility,
        "\tlog_buffering = " + b(g.log_buffering),
        "\tlog_level = " + level(g.log_level),
        "\tlog_limit = " + std::to_string(g.log_limit),
        "\temergency_restart_interval = " + t(g.emergency_restart_interval),
        "\temergency_restart_threshold = " + std::to_string(g.emergency_restart_threshold),
        "\tprocess_control_timeout = " + t(g.process_control_timeout),
        "\tprocess.max = " + std::to_string(g.process_max),
        "\tprocess.priority = " + o(g.process_priority),
        "\tdaemonize = " + b(g.daemonize),
        "\trlimit_files = " + (g.rlimit_files ? std::to_string(*g.rlimit_files) : "0"),
        "\trlimit_core = " + (g.rlimit_core ? (*g.rlimit_core < 0 ? std::string("unlimited") : std::to_string(*g.rlimit_core)) : "0"),
        "\tevents.mechanism = " + (g.events_mechanism.empty() ? std::string("epoll") : g.events_mechanism),
        "\tsystemd_interval = " + t(g.systemd_interval),
        " ",
    };
    for (const auto& p : cfg.pools) {
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
            "\tping.response = " + s(p.ping_response),
            "\taccess.log = " + s(p.access_log),
            "\taccess.format = " + s(p.access_format),
            "\tslowlog = " + s(p.slowlog),
            "\trequest_slowlog_timeout = " + t(p.request_slowlog_timeout),
            "\trequest_slowlog_trace_depth = " + std::to_string(p.request_slowlog_trace_depth),
            "\trequest_terminate_timeout = " + t(p.request_terminate_timeout),
            "\trequest_terminate_timeout_track_finished = " + b(p.request_terminate_timeout_track_finished),
            "\trlimit_files = " + (p.rlimit_files ? std::to_string(*p.rlimit_files) : "0"),
            "\trlimit_core = " + (p.rlimit_core ? std::to_string(*p.rlimit_core) : "0"),
            "\tchroot = " + s(p.chroot),
            "\tchdir = " + s(p.chdir),
            "\tcatch_workers_output = " + b(p.catch_workers_output),
            "\tdecorate_workers_output = " + b(p.decorate_workers_output),
            "\tclear_env = " + b(p.clear_env),
            "\tsecurity.limit_extensions = " + s(p.security_limit_extensions),
        };
        for (const auto& [k, v] : p.env) pool.push_back("\tenv[" + k + "] = " + v);
        for (const auto& v : p.php_values) pool.push_back("\tphp_value[" + v.name + "] = " + v.value);
        for (const auto& v : p.php_admin_values)
            pool.push_back("\tphp_admin_value[" + v.name + "] = " + v.value);
        if (!p.php_ini.empty()) pool.push_back("\tphp_ini = " + p.php_ini);
        if (!p.php_ini_scan_dir.empty()) pool.push_back("\tphp_ini_scan_dir = " + p.php_ini_scan_dir);
        pool.push_back(" ");
        out.insert(out.end(), pool.begin(), pool.end());
    }
    return out;
}

} // namespace lowphp::config
