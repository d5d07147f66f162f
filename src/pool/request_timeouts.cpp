// request_terminate_timeout and request_slowlog_timeout, checked by the master on
// php-fpm's heartbeat (fpm_pctl_heartbeat → fpm_request_check_timed_out), with
// its log lines. The slow request's backtrace is taken by the worker itself (its
// slowlog thread, woken through the scoreboard), so no ptrace is needed.
#include <climits>
#include <csignal>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lowphp/log.h"
#include "lowphp/pool.h"

namespace lowphp::pool {
namespace {

// The stages php-fpm watches: from reading headers to the end of execution;
// with request_terminate_timeout_track_finished also after fastcgi_finish_request.
bool in_request(int state, bool track_finished) {
    if (state <= static_cast<int>(WorkerState::Accepting)) return false;
    return state < static_cast<int>(WorkerState::Ending) || track_finished;
}

std::string request_text(const SlotCopy& s) {
    return s.method + " " + s.uri + (s.query.empty() ? "" : "?" + s.query);
}

void wake_slowlog_thread(WorkerSlot& slot) {
    slot.trace_requests.fetch_add(1);
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&slot.trace_requests), FUTEX_WAKE, INT_MAX,
            nullptr, nullptr, 0);
}

} // namespace

void Pool::check_request_timeouts(uint64_t now) {
    const config::PoolConfig& cfg = cfg_;
    if (!cfg.request_terminate_timeout && !cfg.request_slowlog_timeout) return;
    for (auto& [pid, w] : workers_) {
        if (w.retiring) continue; // its slot is in the previous generation's board
        WorkerSlot& worker_slot = slot(w.slot);
        SlotCopy s = read_slot(worker_slot);
        if (s.pid != pid || !in_request(s.state, cfg.request_terminate_timeout_track_finished))
            continue;
        uint64_t elapsed = now > s.request_started_us ? now - s.request_started_us : 0;
        unsigned sec = static_cast<unsigned>(elapsed / 1000000u),
                 usec = static_cast<unsigned>(elapsed % 1000000u);
        bool executing = s.state < static_cast<int>(WorkerState::Ending);
        if (cfg.request_slowlog_timeout && executing &&
            w.slow_logged_request != s.request_started_us &&
            elapsed > static_cast<uint64_t>(cfg.request_slowlog_timeout) * 1000000u) {
            w.slow_logged_request = s.request_started_us;
            board().slow_requests.fetch_add(1);
            ZLOG_WARNING("[pool %s] child %d, script '%s' (request: \"%s\") executing too slow "
                         "(%u.%06u sec), "
                         "logging",
                         cfg.name.c_str(), static_cast<int>(pid), s.script.c_str(),
                         request_text(s).c_str(), sec, usec);
            wake_slowlog_thread(worker_slot);
        }
        if (cfg.request_terminate_timeout && w.terminated_request != s.request_started_us &&
            elapsed > static_cast<uint64_t>(cfg.request_terminate_timeout) * 1000000u) {
            w.terminated_request = s.request_started_us;
            ZLOG_WARNING("[pool %s] child %d, script '%s' (request: \"%s\") execution timed out "
                         "(%u.%06u sec), "
                         "terminating",
                         cfg.name.c_str(), static_cast<int>(pid), s.script.c_str(),
                         request_text(s).c_str(), sec, usec);
            kill(pid, SIGTERM);
        }
    }
}

} // namespace lowphp::pool
