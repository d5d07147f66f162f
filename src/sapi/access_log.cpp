// access.log: one line per request, written by the worker before the request's
// shutdown (where php-fpm's fpm_log_write runs), so %s and %{...}o see the
// response as PHP left it.
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lowphp/access_log.h"
#include "lowphp/log.h"
#include "sapi_internal.h"

namespace lowphp::sapi {

int access_log_fd = -1;

namespace {

// fcgi_get_last_client_ip: the peer of an inet connection; nothing for unix ones.
std::string client_ip(int fd) {
    struct sockaddr_storage sa {};
    socklen_t len = sizeof sa;
    if (fd < 0 || getpeername(fd, reinterpret_cast<struct sockaddr*>(&sa), &len) != 0) return {};
    char buf[INET6_ADDRSTRLEN] = {0};
    if (sa.ss_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<struct sockaddr_in*>(&sa)->sin_addr, buf, sizeof buf);
    else if (sa.ss_family == AF_INET6) {
        const struct in6_addr& a6 = reinterpret_cast<struct sockaddr_in6*>(&sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&a6)) // an IPv4 client of a [::] listener, shown as php-fpm does
            inet_ntop(AF_INET, &a6.s6_addr[12], buf, sizeof buf);
        else
            inet_ntop(AF_INET6, &a6, buf, sizeof buf);
    }
    return buf;
}

std::optional<std::string> response_header(const std::string& name) {
    zend_llist_position pos;
    auto* h =
        static_cast<sapi_header_struct*>(zend_llist_get_first_ex(&SG(sapi_headers).headers, &pos));
    for (; h; h = static_cast<sapi_header_struct*>(
                  zend_llist_get_next_ex(&SG(sapi_headers).headers, &pos))) {
        if (h->header_len <= name.size() + 2 || strncmp(h->header, name.c_str(), name.size()) != 0)
            continue;
        if (h->header[name.size()] != ':' || h->header[name.size() + 1] != ' ') continue;
        return std::string(h->header + name.size() + 2);
    }
    return std::nullopt;
}

// access.suppress_path: 2xx answers to exactly these URIs are not logged, for
// GET and HEAD without a body only; the URI is SCRIPT_NAME plus "?query" when
// there is one (checked on php-fpm8.2 and its tests).
bool suppressed(const status::AccessRecord& r) {
    const std::string& uri = r.uri;
    const std::string& query = r.query;
    int status = r.status;
    if (status < 200 || status >= 300 || r.content_length != 0) return false;
    if (r.method != "GET" && r.method != "HEAD") return false;
    std::string full = query.empty() ? uri : uri + "?" + query;
    for (const auto& path : current_pool->access_suppress_path)
        if (path == full) return true;
    return false;
}

} // namespace

void write_access_log(RequestContext& ctx, const RequestTimes& t) {
    if (access_log_fd < 0 || !current_slot) return;
    SlotCopy slot = read_slot(*current_slot);
    status::AccessRecord r;
    r.duration_us = t.duration_us;
    r.cpu_user = t.cpu_user;
    r.cpu_system = t.cpu_system;
    r.script = slot.script;
    r.method = slot.method;
    r.query = slot.query;
    r.uri = slot.uri;
    r.user = slot.auth_user;
    r.content_length = slot.content_length;
    r.memory = slot.last_memory;
    r.status = SG(sapi_headers).http_response_code;
    if (suppressed(r)) return;
    r.remote_ip = client_ip(ctx.conn->fd());
    r.pool = current_pool->name;
    r.pid = getpid();
    r.ppid = getppid();
    r.accepted = static_cast<time_t>(slot.request_accepted_s);
    r.now = time(nullptr);
    r.param = [&ctx](const std::string& name) -> std::optional<std::string> {
        const std::string_view* v = ctx.params.find(name);
        return v ? std::optional<std::string>(*v) : std::nullopt;
    };
    r.header = response_header;
    bool truncated = false;
    std::string line = status::format_access_line(current_pool->access_format, r, truncated);
    if (truncated)
        ZLOG_NOTICE("the log buffer is full (%zu). The access log request has been truncated.",
                    status::kAccessLineMax);
    if (line.empty()) return;
    line += '\n';
    if (write(access_log_fd, line.data(), line.size()) < 0 && errno != EAGAIN)
        ZLOG_SYSWARNING("[pool %s] unable to write the access log", current_pool->name.c_str());
}

} // namespace lowphp::sapi
