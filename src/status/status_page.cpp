// php-fpm's status page, format by format (fpm_status.c of PHP 8.2, checked
// against php-fpm8.2's output): the same labels, order, padding and escapes.
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "lowphp/config.h"
#include "lowphp/status.h"

namespace lowphp::status {
namespace {

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
    char stack[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(stack, sizeof stack, fmt, ap);
    va_end(ap);
    if (n < 0) return {};
    if (static_cast<size_t>(n) < sizeof stack) return std::string(stack, static_cast<size_t>(n));
    std::string out(static_cast<size_t>(n) + 1, '\0');
    va_start(ap, fmt);
    vsnprintf(out.data(), out.size(), fmt, ap);
    va_end(ap);
    out.resize(static_cast<size_t>(n));
    return out;
}

const char* pm_name(int pm) {
    switch (static_cast<config::PmStyle>(pm)) {
    case config::PmStyle::Static:
        return "static";
    case config::PmStyle::Dynamic:
        return "dynamic";
    case config::PmStyle::Ondemand:
        return "ondemand";
    }
    return "unknown";
}

// Linux exposes a TCP listener's queue through TCP_INFO (php-fpm's HAVE_FPM_LQ):
// unacked = connections waiting, sacked = the backlog. Unix sockets report 0.
void listen_queue(int fd, PoolStatus& p) {
    struct tcp_info info {};
    socklen_t len = sizeof info;
    if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return;
    p.listen_queue = info.tcpi_unacked;
    p.listen_queue_len = static_cast<int>(info.tcpi_sacked);
}

std::string time_text(uint64_t epoch, bool human) {
    if (!human) return std::to_string(epoch);
    time_t t = static_cast<time_t>(epoch);
    struct tm tm;
    localtime_r(&t, &tm);
    char buf[64];
    strftime(buf, sizeof buf, "%d/%b/%Y:%H:%M:%S %z", &tm);
    return buf;
}

const std::string& or_dash(const std::string& s) {
    static const std::string dash = "-";
    return s.empty() ? dash : s;
}

// The fields as one format shows them: escaped strings, times as text or epoch.
struct Shown {
    std::string pool, start_time;
};

struct ShownProc {
    std::string start_time, method, uri_query, user, script;
};

using Escape = std::string (*)(const std::string&);

std::string keep(const std::string& s) {
    return s;
}

ShownProc show(const ProcStatus& p, Escape esc, bool human_time) {
    ShownProc s;
    s.start_time = time_text(p.start_time, human_time);
    s.method = esc(or_dash(p.method));
    s.uri_query = esc(or_dash(p.uri)) + (p.query.empty() ? "" : "?" + esc(p.query));
    s.user = esc(or_dash(p.user));
    s.script = esc(or_dash(p.script));
    return s;
}

// connections.reuse: the pool's kept database connections (text and html).
std::vector<std::pair<std::string, uint64_t>> reuse_fields(const PoolStatus& p) {
    if (!p.connections_reuse) return {};
    return {{"kept connections", p.kept_connections},
            {"connection reuses", p.reuses},
            {"connection resets", p.resets},
            {"connection rollbacks", p.rollbacks},
            {"connection reconnects", p.reconnects}};
}

// Text and html: one line (row) per backend field.
std::vector<std::pair<std::string, std::string>> backend_fields(const Snapshot& s) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const BackendStatus& b : s.backends) {
        std::string who = "backend " + b.name + " (" + b.type + ") ";
        auto add = [&](const char* field, uint64_t v) {
            out.emplace_back(who + field, std::to_string(v));
        };
        add("max connections", b.max);
        add("open connections", b.open);
        add("busy connections", b.busy);
        add("idle connections", b.open - b.busy);
        add("waits", b.waits);
        add("wait time", b.wait_us);
        add("errors", b.errors);
        add("reconnects", b.reconnects);
    }
    return out;
}

std::string render_text(const Snapshot& s, bool full) {
    const PoolStatus& p = s.pool;
    std::string out = format(
        "pool:                 %s\n"
        "process manager:      %s\n"
        "start time:           %s\n"
        "start since:          %" PRIu64 "\n"
        "accepted conn:        %" PRIu64 "\n"
        "listen queue:         %u\n"
        "max listen queue:     %u\n"
        "listen queue len:     %d\n"
        "idle processes:       %d\n"
        "active processes:     %d\n"
        "total processes:      %d\n"
        "max active processes: %d\n"
        "max children reached: %u\n"
        "slow requests:        %" PRIu64 "\n",
        p.pool.c_str(), p.process_manager.c_str(), time_text(p.start_time, true).c_str(),
        p.start_since, p.accepted_conn, p.listen_queue, p.max_listen_queue, p.listen_queue_len,
        p.idle, p.active, p.total, p.max_active, p.max_children_reached, p.slow_requests);
    if (p.max_memory)
        out += format("max memory:           %" PRIu64 "\nmemory recycles:      %" PRIu64 "\n",
                      p.max_memory, p.memory_recycles);
    if (p.worker_mode)
        out += format("mode:                 worker\nworker boot failures: %" PRIu64 "\n",
                      p.worker_boot_failures);
    for (const auto& [name, value] : reuse_fields(p))
        out += format("%-22s%" PRIu64 "\n", (name + ":").c_str(), value);
    for (const auto& [name, value] : backend_fields(s))
        out += name + ": " + value + "\n";
    if (!full) return out;
    for (const ProcStatus& pr : s.procs) {
        ShownProc v = show(pr, keep, true);
        out +=
            format("\n************************\n"
                   "pid:                  %d\n"
                   "state:                %s\n"
                   "start time:           %s\n"
                   "start since:          %" PRIu64 "\n"
                   "requests:             %" PRIu64 "\n"
                   "request duration:     %" PRIu64 "\n"
                   "request method:       %s\n"
                   "request URI:          %s\n"
                   "content length:       %" PRIu64 "\n"
                   "user:                 %s\n"
                   "script:               %s\n"
                   "last request cpu:     %.2f\n"
                   "last request memory:  %" PRIu64 "\n",
                   pr.pid, pr.state.c_str(), v.start_time.c_str(), pr.start_since, pr.requests,
                   pr.request_duration_us, v.method.c_str(), v.uri_query.c_str(), pr.content_length,
                   v.user.c_str(), v.script.c_str(), pr.last_cpu, pr.last_memory);
    }
    return out;
}

std::string render_html(const Snapshot& s, bool full) {
    const PoolStatus& p = s.pool;
    std::string out =
        format("<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" "
               "\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\n"
               "<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n"
               "<head><title>PHP-FPM Status Page</title></head>\n"
               "<body>\n"
               "<table>\n"
               "<tr><th>pool</th><td>%s</td></tr>\n"
               "<tr><th>process manager</th><td>%s</td></tr>\n"
               "<tr><th>start time</th><td>%s</td></tr>\n"
               "<tr><th>start since</th><td>%" PRIu64 "</td></tr>\n"
               "<tr><th>accepted conn</th><td>%" PRIu64 "</td></tr>\n"
               "<tr><th>listen queue</th><td>%u</td></tr>\n"
               "<tr><th>max listen queue</th><td>%u</td></tr>\n"
               "<tr><th>listen queue len</th><td>%d</td></tr>\n"
               "<tr><th>idle processes</th><td>%d</td></tr>\n"
               "<tr><th>active processes</th><td>%d</td></tr>\n"
               "<tr><th>total processes</th><td>%d</td></tr>\n"
               "<tr><th>max active processes</th><td>%d</td></tr>\n"
               "<tr><th>max children reached</th><td>%u</td></tr>\n"
               "<tr><th>slow requests</th><td>%" PRIu64 "</td></tr>\n"
               "</table>\n",
               escape_html(p.pool).c_str(), p.process_manager.c_str(),
               time_text(p.start_time, true).c_str(), p.start_since, p.accepted_conn,
               p.listen_queue, p.max_listen_queue, p.listen_queue_len, p.idle, p.active, p.total,
               p.max_active, p.max_children_reached, p.slow_requests);
    if (p.max_memory)
        out.insert(out.size() - strlen("</table>\n"),
                   format("<tr><th>max memory</th><td>%" PRIu64
                          "</td></tr>\n<tr><th>memory recycles</th><td>%" PRIu64 "</td></tr>\n",
                          p.max_memory, p.memory_recycles));
    if (p.worker_mode)
        out.insert(out.size() - strlen("</table>\n"),
                   format("<tr><th>mode</th><td>worker</td></tr>\n<tr><th>worker boot "
                          "failures</th><td>%" PRIu64 "</td></tr>\n",
                          p.worker_boot_failures));
    for (const auto& [name, value] : reuse_fields(p))
        out.insert(out.size() - strlen("</table>\n"),
                   format("<tr><th>%s</th><td>%" PRIu64 "</td></tr>\n", name.c_str(), value));
    for (const auto& [name, value] : backend_fields(s))
        out.insert(out.size() - strlen("</table>\n"), "<tr><th>" + escape_html(name) + "</th><td>" +
                                                          escape_html(value) + "</td></tr>\n");
    if (!full) return out + "</body></html>";
    out +=
        "<table border=\"1\">\n"
        "<tr><th>pid</th><th>state</th><th>start time</th><th>start since</th><th>requests</th>"
        "<th>request duration</th><th>request method</th><th>request uri</th><th>content "
        "length</th>"
        "<th>user</th><th>script</th><th>last request cpu</th><th>last request memory</th></tr>\n";
    for (const ProcStatus& pr : s.procs) {
        ShownProc v = show(pr, escape_html, true);
        out +=
            format("<tr><td>%d</td><td>%s</td><td>%s</td><td>%" PRIu64 "</td><td>%" PRIu64
                   "</td><td>%" PRIu64 "</td><td>%s</td><td>%s</td><td>%" PRIu64
                   "</td><td>%s</td><td>%s</td><td>%.2f</td><td>%" PRIu64 "</td></tr>\n",
                   pr.pid, pr.state.c_str(), v.start_time.c_str(), pr.start_since, pr.requests,
                   pr.request_duration_us, v.method.c_str(), v.uri_query.c_str(), pr.content_length,
                   v.user.c_str(), v.script.c_str(), pr.last_cpu, pr.last_memory);
    }
    return out + "</table></body></html>";
}

std::string render_xml(const Snapshot& s, bool full) {
    const PoolStatus& p = s.pool;
    std::string out =
        format("<?xml version=\"1.0\" ?>\n"
               "<status>\n"
               "<pool>%s</pool>\n"
               "<process-manager>%s</process-manager>\n"
               "<start-time>%" PRIu64 "</start-time>\n"
               "<start-since>%" PRIu64 "</start-since>\n"
               "<accepted-conn>%" PRIu64 "</accepted-conn>\n"
               "<listen-queue>%u</listen-queue>\n"
               "<max-listen-queue>%u</max-listen-queue>\n"
               "<listen-queue-len>%d</listen-queue-len>\n"
               "<idle-processes>%d</idle-processes>\n"
               "<active-processes>%d</active-processes>\n"
               "<total-processes>%d</total-processes>\n"
               "<max-active-processes>%d</max-active-processes>\n"
               "<max-children-reached>%u</max-children-reached>\n"
               "<slow-requests>%" PRIu64 "</slow-requests>\n",
               escape_html(p.pool).c_str(), p.process_manager.c_str(), p.start_time, p.start_since,
               p.accepted_conn, p.listen_queue, p.max_listen_queue, p.listen_queue_len, p.idle,
               p.active, p.total, p.max_active, p.max_children_reached, p.slow_requests);
    if (p.max_memory)
        out += format("<max-memory>%" PRIu64 "</max-memory>\n<memory-recycles>%" PRIu64
                      "</memory-recycles>\n",
                      p.max_memory, p.memory_recycles);
    if (p.worker_mode)
        out += format("<mode>worker</mode>\n<worker-boot-failures>%" PRIu64
                      "</worker-boot-failures>\n",
                      p.worker_boot_failures);
    if (p.connections_reuse)
        out += format("<kept-connections>%" PRIu64 "</kept-connections><connection-reuses>%" PRIu64
                      "</connection-reuses>\n<connection-resets>%" PRIu64
                      "</connection-resets><connection-rollbacks>%" PRIu64
                      "</connection-rollbacks>\n<connection-reconnects>%" PRIu64
                      "</connection-reconnects>\n",
                      p.kept_connections, p.reuses, p.resets, p.rollbacks, p.reconnects);
    if (!s.backends.empty()) {
        out += "<backends>\n";
        for (const BackendStatus& b : s.backends)
            out += format(
                "<backend><name>%s</name><type>%s</type><max-connections>%u</max-connections>"
                "<open-connections>%u</open-connections><busy-connections>%u</busy-connections>"
                "<idle-connections>%u</idle-connections><waits>%" PRIu64 "</waits>"
                "<wait-time>%" PRIu64 "</wait-time><errors>%" PRIu64 "</errors>"
                "<reconnects>%" PRIu64 "</reconnects></backend>\n",
                escape_html(b.name).c_str(), b.type.c_str(), b.max, b.open, b.busy, b.open - b.busy,
                b.waits, b.wait_us, b.errors, b.reconnects);
        out += "</backends>\n";
    }
    if (!full) return out + "</status>";
    out += "<processes>\n";
    for (const ProcStatus& pr : s.procs) {
        ShownProc v = show(pr, escape_html, false);
        out += format(
            "<process><pid>%d</pid><state>%s</state><start-time>%s</start-time>"
            "<start-since>%" PRIu64 "</start-since><requests>%" PRIu64 "</requests>"
            "<request-duration>%" PRIu64 "</request-duration><request-method>%s</request-method>"
            "<request-uri>%s</request-uri><content-length>%" PRIu64 "</content-length>"
            "<user>%s</user><script>%s</script><last-request-cpu>%.2f</last-request-cpu>"
            "<last-request-memory>%" PRIu64 "</last-request-memory></process>\n",
            pr.pid, pr.state.c_str(), v.start_time.c_str(), pr.start_since, pr.requests,
            pr.request_duration_us, v.method.c_str(), v.uri_query.c_str(), pr.content_length,
            v.user.c_str(), v.script.c_str(), pr.last_cpu, pr.last_memory);
    }
    return out + "</processes>\n</status>";
}

std::string render_json(const Snapshot& s, bool full) {
    const PoolStatus& p = s.pool;
    std::string out =
        format("{\"pool\":\"%s\",\"process manager\":\"%s\",\"start time\":%" PRIu64
               ",\"start since\":%" PRIu64 ",\"accepted conn\":%" PRIu64
               ",\"listen queue\":%u,\"max listen queue\":%u,\"listen queue "
               "len\":%d,\"idle processes\":%d,\"active processes\":%d,\"total "
               "processes\":%d,\"max active "
               "processes\":%d,\"max children reached\":%u,\"slow requests\":%" PRIu64,
               escape_json(p.pool).c_str(), p.process_manager.c_str(), p.start_time, p.start_since,
               p.accepted_conn, p.listen_queue, p.max_listen_queue, p.listen_queue_len, p.idle,
               p.active, p.total, p.max_active, p.max_children_reached, p.slow_requests);
    if (p.max_memory)
        out += format(",\"max memory\":%" PRIu64 ",\"memory recycles\":%" PRIu64, p.max_memory,
                      p.memory_recycles);
    if (p.worker_mode)
        out += format(",\"mode\":\"worker\",\"worker boot failures\":%" PRIu64,
                      p.worker_boot_failures);
    if (p.connections_reuse)
        out += format(",\"kept connections\":%" PRIu64 ",\"connection reuses\":%" PRIu64
                      ",\"connection resets\":%" PRIu64 ",\"connection rollbacks\":%" PRIu64
                      ",\"connection reconnects\":%" PRIu64,
                      p.kept_connections, p.reuses, p.resets, p.rollbacks, p.reconnects);
    if (!s.backends.empty()) {
        out += ",\"backends\":[";
        for (size_t i = 0; i < s.backends.size(); ++i) {
            const BackendStatus& b = s.backends[i];
            out += format("%s{\"name\":\"%s\",\"type\":\"%s\",\"max connections\":%u,"
                          "\"open connections\":%u,\"busy connections\":%u,\"idle connections\":%u,"
                          "\"waits\":%" PRIu64 ",\"wait time\":%" PRIu64 ",\"errors\":%" PRIu64
                          ",\"reconnects\":%" PRIu64 "}",
                          i ? "," : "", escape_json(b.name).c_str(), b.type.c_str(), b.max, b.open,
                          b.busy, b.open - b.busy, b.waits, b.wait_us, b.errors, b.reconnects);
        }
        out += "]";
    }
    if (!full) return out + "}";
    out += ", \"processes\":[";
    bool first = true;
    for (const ProcStatus& pr : s.procs) {
        ShownProc v = show(pr, escape_json, false);
        if (!first) out += ",";
        first = false;
        out +=
            format("{\"pid\":%d,\"state\":\"%s\",\"start time\":%s,\"start since\":%" PRIu64
                   ",\"requests\":%" PRIu64 ",\"request duration\":%" PRIu64
                   ",\"request method\":\"%s\",\"request uri\":\"%s\",\"content length\":%" PRIu64
                   ",\"user\":\"%s\",\"script\":\"%s\",\"last request cpu\":%.2f,\"last request "
                   "memory\":%" PRIu64 "}",
                   pr.pid, pr.state.c_str(), v.start_time.c_str(), pr.start_since, pr.requests,
                   pr.request_duration_us, v.method.c_str(), v.uri_query.c_str(), pr.content_length,
                   v.user.c_str(), v.script.c_str(), pr.last_cpu, pr.last_memory);
    }
    return out + "]}";
}

// One OpenMetrics family; php-fpm prints listen_queue_length's TYPE before its HELP.
void metric(std::string& out, const char* name, const char* type, const std::string& help,
            uint64_t value, bool type_first = false) {
    std::string h = "# HELP phpfpm_" + std::string(name) + " " + help + "\n";
    std::string t = "# TYPE phpfpm_" + std::string(name) + " " + type + "\n";
    out += type_first ? t + h : h + t;
    out += "phpfpm_" + std::string(name) + " " + std::to_string(value) + "\n";
}

// One family per field, a sample per backend, labelled by name and type.
void backend_metrics(std::string& out, const std::vector<BackendStatus>& backends) {
    if (backends.empty()) return;
    struct Family {
        const char* name;
        const char* type;
        const char* help;
        std::string (*value)(const BackendStatus&);
    };
    static const Family families[] = {
        {"backend_max_connections", "gauge", "The connections.max of the backend (lowphp-fpm).",
         [](const BackendStatus& b) { return std::to_string(b.max); }},
        {"backend_open_connections", "gauge", "Open connections to the backend (lowphp-fpm).",
         [](const BackendStatus& b) { return std::to_string(b.open); }},
        {"backend_busy_connections", "gauge", "Connections leased by a request (lowphp-fpm).",
         [](const BackendStatus& b) { return std::to_string(b.busy); }},
        {"backend_idle_connections", "gauge", "Open connections no request holds (lowphp-fpm).",
         [](const BackendStatus& b) { return std::to_string(b.open - b.busy); }},
        {"backend_waits", "counter", "Requests that waited for a connection (lowphp-fpm).",
         [](const BackendStatus& b) { return std::to_string(b.waits); }},
        {"backend_wait_seconds", "counter", "Time requests waited for a connection (lowphp-fpm).",
         [](const BackendStatus& b) {
             return format("%.6f", static_cast<double>(b.wait_us) / 1e6);
         }},
        {"backend_errors", "counter", "BackendExceptions thrown (lowphp-fpm).",
         [](const BackendStatus& b) { return std::to_string(b.errors); }},
        {"backend_reconnects", "counter", "Connections replaced after being lost (lowphp-fpm).",
         [](const BackendStatus& b) { return std::to_string(b.reconnects); }},
    };
    for (const Family& f : families) {
        std::string name = std::string("phpfpm_") + f.name;
        out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n";
        std::string sample = std::string(f.type) == "counter" ? name + "_total" : name;
        for (const BackendStatus& b : backends)
            out += sample + "{backend=\"" + b.name + "\",type=\"" + b.type + "\"} " + f.value(b) +
                   "\n";
    }
}

std::string render_openmetrics(const Snapshot& s) {
    const PoolStatus& p = s.pool;
    std::string out;
    metric(out, "up", "gauge",
           "Could pool " + p.pool + " using a " + p.process_manager + " PM on PHP-FPM be reached?",
           1);
    metric(out, "start_since", "counter", "The number of seconds since FPM has started.",
           p.start_since);
    metric(out, "accepted_connections", "counter", "The number of requests accepted by the pool.",
           p.accepted_conn);
    metric(out, "listen_queue", "gauge",
           "The number of requests in the queue of pending connections.", p.listen_queue);
    metric(
        out, "max_listen_queue", "counter",
        "The maximum number of requests in the queue of pending connections since FPM has started.",
        p.max_listen_queue);
    metric(out, "listen_queue_length", "gauge",
           "The size of the socket queue of pending connections.",
           static_cast<uint64_t>(p.listen_queue_len), true);
    metric(out, "idle_processes", "gauge", "The number of idle processes.",
           static_cast<uint64_t>(p.idle));
    metric(out, "active_processes", "gauge", "The number of active processes.",
           static_cast<uint64_t>(p.active));
    metric(out, "total_processes", "gauge", "The number of idle + active processes.",
           static_cast<uint64_t>(p.total));
    metric(out, "max_active_processes", "counter",
           "The maximum number of active processes since FPM has started.",
           static_cast<uint64_t>(p.max_active));
    metric(out, "max_children_reached", "counter",
           "The number of times, the process limit has been reached, when pm tries to start more "
           "children (works only for pm 'dynamic' and 'ondemand').",
           p.max_children_reached);
    metric(out, "slow_requests", "counter",
           "The number of requests that exceeded your 'request_slowlog_timeout' value.",
           p.slow_requests);
    if (p.max_memory) {
        metric(out, "max_memory_bytes", "gauge", "The pm.max_memory of the pool (lowphp-fpm).",
               p.max_memory);
        metric(out, "memory_recycles", "counter",
               "The number of workers recycled for exceeding pm.max_memory (lowphp-fpm).",
               p.memory_recycles);
    }
    if (p.worker_mode)
        metric(out, "worker_boot_failures", "gauge",
               "Worker-mode boot failures in a row of the pool's worker.script (lowphp-fpm).",
               p.worker_boot_failures);
    if (p.connections_reuse) {
        metric(out, "kept_connections", "gauge",
               "Database connections the pool's workers keep between requests (lowphp-fpm).",
               p.kept_connections);
        metric(out, "connection_reuses", "counter",
               "Connects answered with a kept connection (lowphp-fpm).", p.reuses);
        metric(out, "connection_resets", "counter",
               "Kept connections reset after a request (lowphp-fpm).", p.resets);
        metric(out, "connection_rollbacks", "counter",
               "Transactions left open by a request and rolled back (lowphp-fpm).", p.rollbacks);
        metric(out, "connection_reconnects", "counter",
               "Kept connections found closed or unusable and dropped (lowphp-fpm).", p.reconnects);
    }
    backend_metrics(out, s.backends);
    return out + "# EOF\n";
}

ProcStatus proc_status(const SlotCopy& c, Now now) {
    ProcStatus p;
    p.pid = c.pid;
    p.state = state_name(c.state);
    bool idle = c.state <= static_cast<int>(WorkerState::Accepting);
    p.start_time = c.process_started_us / 1000000u;
    p.start_since = now.wall_us / 1000000u - p.start_time;
    p.requests = c.requests;
    p.request_duration_us =
        idle ? c.last_duration_us
             : (now.mono_us > c.request_started_us ? now.mono_us - c.request_started_us : 0);
    p.method = c.method;
    p.uri = c.uri;
    p.query = c.query;
    p.user = c.auth_user;
    p.script = c.script;
    p.content_length = c.content_length;
    p.last_cpu = idle ? c.last_cpu_percent : 0.;
    p.last_memory = idle ? c.last_memory : 0;
    return p;
}

} // namespace

Snapshot take_snapshot(Scoreboard& board, size_t index, int listen_fd, Now now) {
    PoolBoard& pb = board.pool(index);
    Snapshot s;
    PoolStatus& p = s.pool;
    p.pool = pb.name;
    p.process_manager = pm_name(pb.pm);
    p.start_time = pb.start_time_s;
    p.start_since = now.wall_us / 1000000u - pb.start_time_s;
    p.accepted_conn = pb.accepted_conn.load();
    for (uint32_t i = 0; i < pb.slot_count; ++i) {
        SlotCopy c = read_slot(board.slot(pb.first_slot + i));
        if (c.pid <= 0) continue;
        ProcStatus proc = proc_status(c, now);
        (c.state <= static_cast<int>(WorkerState::Accepting) ? p.idle : p.active)++;
        p.kept_connections += board.slot(pb.first_slot + i).kept_connections.load();
        s.procs.push_back(std::move(proc));
    }
    p.total = p.idle + p.active;
    int seen = pb.max_active.load();
    while (p.active > seen && !pb.max_active.compare_exchange_weak(seen, p.active)) {
    }
    p.max_active = std::max(seen, p.active);
    listen_queue(listen_fd, p);
    uint32_t lq_max = pb.max_listen_queue.load();
    while (p.listen_queue > lq_max &&
           !pb.max_listen_queue.compare_exchange_weak(lq_max, p.listen_queue)) {
    }
    p.max_listen_queue = std::max(lq_max, p.listen_queue);
    p.max_children_reached = pb.max_children_reached.load();
    p.slow_requests = pb.slow_requests.load();
    p.max_memory = pb.max_memory;
    p.memory_recycles = pb.memory_recycles.load();
    p.worker_mode = pb.worker_mode;
    p.connections_reuse = pb.connections_reuse;
    p.reuses = pb.reuses.load();
    p.resets = pb.resets.load();
    p.rollbacks = pb.rollbacks.load();
    p.reconnects = pb.reconnects.load();
    for (uint32_t i = pb.first_slot; i < pb.first_slot + pb.slot_count; ++i)
        p.worker_boot_failures =
            std::max<uint64_t>(p.worker_boot_failures, board.slot(i).boot_failures.load());
    return s;
}

Page render(const Snapshot& s, Format f, bool full) {
    switch (f) {
    case Format::Html:
        return {"text/html", render_html(s, full)};
    case Format::Xml:
        return {"text/xml", render_xml(s, full)};
    case Format::Json:
        return {"application/json", render_json(s, full)};
    case Format::OpenMetrics:
        return {"application/openmetrics-text; version=1.0.0; charset=utf-8",
                render_openmetrics(s)};
    case Format::Text:
        break;
    }
    return {"text/plain", render_text(s, full)};
}

namespace {

constexpr uint32_t kInvalid = 0xffffffff;

bool utf8_lead(unsigned char c) {
    return c < 0x80 || (c >= 0xc2 && c <= 0xf4);
}
bool utf8_trail(unsigned char c) {
    return c >= 0x80 && c <= 0xbf;
}

// One code point at s[i], advancing i; kInvalid for a broken sequence, and
// then i skips exactly the bytes PHP's decoder (php_next_utf8_char) skips,
// because the JSON page drops them and must keep what PHP keeps.
uint32_t next_utf8(const std::string& s, size_t& i) {
    auto at = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
    unsigned char c = at(0);
    size_t avail = s.size() - i;
    size_t need = c < 0x80 ? 1 : c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
    if (need == 0) {
        ++i;
        return kInvalid;
    }
    bool broken = false;
    for (size_t k = 1; k < need; ++k) {
        if (k >= avail || utf8_lead(at(k))) { // stop before a byte that may start a character
            i += k;
            return kInvalid;
        }
        broken = broken || !utf8_trail(at(k));
    }
    if (broken) {
        i += need;
        return kInvalid;
    }
    uint32_t cp = need == 1 ? c : c & (0x7f >> need);
    for (size_t k = 1; k < need; ++k)
        cp = (cp << 6) | (at(k) & 0x3f);
    i += need;
    static constexpr uint32_t kShortest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kShortest[need] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return kInvalid;
    return cp;
}

// XML 1.0's Char production: what htmlspecialchars(ENT_XML1 | ENT_DISALLOWED) keeps.
bool xml_char(uint32_t cp) {
    return cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
           (cp >= 0xe000 && cp <= 0x10ffff && cp != 0xfffe && cp != 0xffff);
}

} // namespace

// php-fpm 8.2 escapes html and xml alike, as htmlspecialchars with ENT_XML1 |
// ENT_COMPAT | ENT_DISALLOWED, UTF-8 and no ENT_SUBSTITUTE (seen against
// php8.2-fpm): characters XML forbids become U+FFFD, single quotes stay, and
// any broken UTF-8 empties the whole value.
std::string escape_html(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        size_t from = i;
        uint32_t cp = next_utf8(s, i);
        if (cp == kInvalid) return {};
        switch (cp) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        default:
            if (xml_char(cp))
                out.append(s, from, i - from);
            else
                out += "\xef\xbf\xbd";
        }
    }
    return out;
}

// json_encode's defaults plus JSON_INVALID_UTF8_IGNORE, as php-fpm 8.2: "/"
// escaped, non-ASCII as \uXXXX (UTF-16 pairs), broken UTF-8 dropped.
std::string escape_json(const std::string& s) {
    std::string out;
    char buf[16];
    for (size_t i = 0; i < s.size();) {
        uint32_t cp = next_utf8(s, i);
        switch (cp) {
        case kInvalid:
            continue;
        case '"':
            out += "\\\"";
            continue;
        case '\\':
            out += "\\\\";
            continue;
        case '/':
            out += "\\/";
            continue;
        case '\b':
            out += "\\b";
            continue;
        case '\f':
            out += "\\f";
            continue;
        case '\n':
            out += "\\n";
            continue;
        case '\r':
            out += "\\r";
            continue;
        case '\t':
            out += "\\t";
            continue;
        }
        if (cp >= 0x20 && cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp >= 0x10000) {
            cp -= 0x10000;
            snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
            out += buf;
        } else {
            snprintf(buf, sizeof buf, "\\u%04x", cp);
            out += buf;
        }
    }
    return out;
}

} // namespace lowphp::status
