// sd_notify without libsystemd: the master tells systemd (Type=notify) when it
// is ready, reloading or stopping, and sends a STATUS= line (plus WATCHDOG=1
// when the unit has a watchdog) every systemd_interval, as php-fpm does.
#include "lowphp/systemd_notify.h"
#include "lowphp/scoreboard.h"

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lowphp/log.h"
#include "lowphp/unique_fd.h"

namespace lowphp::systemd_notify {
namespace {

const char* socket_name() {
    const char* name = getenv("NOTIFY_SOCKET");
    return name && (name[0] == '/' || name[0] == '@') && name[1] ? name : nullptr;
}

uint64_t accepted_connections(Scoreboard& board) {
    uint64_t total = 0;
    for (size_t i = 0; i < board.pool_count(); ++i)
        total += board.pool(i).accepted_conn.load();
    return total;
}

} // namespace

bool enabled() {
    return socket_name() != nullptr;
}

bool send(const std::string& state) {
    const char* name = socket_name();
    if (!name) return true;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    size_t len = strlen(name);
    if (len >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return false;
    }
    memcpy(addr.sun_path, name, len);
    if (name[0] == '@') addr.sun_path[0] = '\0'; // abstract namespace, not NUL-terminated
    socklen_t addr_len =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len + (name[0] == '@' ? 0 : 1));
    UniqueFd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return false;
    ssize_t n;
    do
        n = sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                   reinterpret_cast<const sockaddr*>(&addr), addr_len);
    while (n < 0 && errno == EINTR);
    return n == static_cast<ssize_t>(state.size());
}

uint64_t heartbeat_interval_us(int systemd_interval_s, bool& watchdog) {
    watchdog = false;
    const char* usec = getenv("WATCHDOG_USEC");
    const char* pid = getenv("WATCHDOG_PID");
    if (usec && (!pid || strtol(pid, nullptr, 10) == getpid())) {
        uint64_t period = strtoull(usec, nullptr, 10);
        if (period > 0) {
            watchdog = true;
            return period / 2 > 0 ? period / 2 : 1;
        }
    }
    return systemd_interval_s > 0 ? static_cast<uint64_t>(systemd_interval_s) * 1000000 : 0;
}

bool ready(Scoreboard& board, int systemd_interval_s, Heartbeat& hb) {
    if (!enabled()) return false;
    if (!send("READY=1\nSTATUS=Ready to handle connections\nMAINPID=" + std::to_string(getpid())))
        ZLOG_SYSWARNING("failed to notify start to systemd");
    hb.interval_us = heartbeat_interval_us(systemd_interval_s, hb.watchdog);
    if (hb.watchdog)
        ZLOG_NOTICE("systemd watchdog configured to %.3gsec",
                    static_cast<double>(hb.interval_us) / 1e6);
    hb.last_requests = accepted_connections(board);
    return hb.interval_us > 0;
}

void report_status(Scoreboard& board, int active, int idle, Heartbeat& hb) {
    uint64_t requests = accepted_connections(board);
    double traffic = static_cast<double>(requests - hb.last_requests) * 1e6 /
                     static_cast<double>(hb.interval_us);
    hb.last_requests = requests;
    char status[256];
    snprintf(status, sizeof status,
             "STATUS=Processes active: %d, idle: %d, Requests: %llu, Traffic: %.3greq/sec%s",
             active, idle, static_cast<unsigned long long>(requests), traffic,
             hb.watchdog ? "\nWATCHDOG=1" : "");
    if (!send(status)) ZLOG_SYSWARNING("failed to notify status to systemd");
}

void stopping(bool reloading) {
    if (!enabled()) return;
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t mono =
        static_cast<uint64_t>(now.tv_sec) * 1000000 + static_cast<uint64_t>(now.tv_nsec) / 1000;
    std::string state =
        reloading ? "RELOADING=1\nSTATUS=Reloading\nMONOTONIC_USEC=" + std::to_string(mono)
                  : "STOPPING=1\nSTATUS=Stopping";
    if (!send(state))
        ZLOG_SYSWARNING("failed to notify %s to systemd", reloading ? "reload" : "stop");
}

} // namespace lowphp::systemd_notify
