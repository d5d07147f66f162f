// A pool's process manager: how many workers it has (pm static / dynamic /
// ondemand), reaping and replacing them, its zygote's restarts.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>

#include "lowphp/exit_codes.h"
#include "lowphp/log.h"
#include "lowphp/pool.h"

namespace lowphp::pool {
namespace {

using config::PmStyle;

// A zygote that lived this long before dying resets the restart backoff.
constexpr uint64_t kZygoteStableUs = 10'000'000;

} // namespace

uint32_t Pool::free_slot() {
    for (size_t i = 0; i < slot_busy_.size(); ++i)
        if (!slot_busy_[i]) return board().first_slot + static_cast<uint32_t>(i);
    return UINT32_MAX;
}

int Pool::total_workers() const {
    int n = pending_spawns_;
    for (auto& [pid, w] : workers_)
        if (!w.status && !w.retiring) ++n;
    return n;
}

size_t Pool::children() const {
    size_t n = static_cast<size_t>(pending_spawns_);
    for (auto& [pid, w] : workers_)
        n += !w.retiring;
    return n;
}

// A pool worker waiting for work, not already being retired.
bool Pool::is_idle(const Worker& w) const {
    return !w.idle_kill && !w.status && !w.retiring &&
           slot(w.slot).state.load(std::memory_order_relaxed) ==
               static_cast<int>(WorkerState::Idle);
}

// Calls fn(slot index) for each worker waiting for work.
template <typename Fn> void Pool::each_idle_slot(Fn fn) const {
    for (auto& [pid, w] : workers_)
        if (is_idle(w)) fn(w.slot);
    // A worker the zygote forked may serve, and wait again, before its pid
    // reaches the master: its slot tells (php-fpm forks itself and knows its
    // child at once). An ondemand pool forked a second worker for the next
    // connection of a client served by the first.
    uint32_t status_slot = shared_.scoreboard->pool(index_).status_slot;
    for (auto& [i, pipes] : pending_pipes_) {
        const WorkerSlot& s = slot(i);
        if (i != status_slot && s.pid.load(std::memory_order_relaxed) != 0 &&
            s.state.load(std::memory_order_relaxed) == static_cast<int>(WorkerState::Idle))
            fn(i);
    }
}

int Pool::idle_workers() const {
    int n = 0;
    each_idle_slot([&n](uint32_t) { ++n; });
    return n;
}

// ondemand: a connection event counts on an idle worker that no earlier event
// counts on. A worker woken for a connection still says Idle until it starts
// the request (longer than the next connection takes to come, on a busy
// machine): the next event finds it claimed and forks. A worker forked for a
// connection is claimed by it. The claim ends with the worker's next request,
// or after a second (the connection went elsewhere).
bool Pool::claim_idle_worker() {
    uint64_t now = mono_us();
    bool claimed = false;
    each_idle_slot([&](uint32_t i) {
        if (claimed) return;
        uint64_t requests = slot(i).requests.load(std::memory_order_relaxed);
        auto it = claims_.find(i);
        if (it != claims_.end() && it->second.requests == requests &&
            now - it->second.at_us < 1000000u)
            return;
        claims_[i] = {now, requests};
        claimed = true;
    });
    return claimed;
}

// Start-up waits for this pool's zygote and first workers. An ondemand pool
// has no first workers: its socket listens already, and a connection that
// comes before its zygote is up waits in the backlog, so it does not hold back
// the others (129 ondemand pools: php-fpm is ready at once).
bool Pool::up() const {
    return (zygote_ready_ || cfg_.pm == PmStyle::Ondemand) && pending_spawns_ == 0;
}

bool Pool::start() {
    // ondemand without pm.status_listen: no PHP until a connection comes
    if (cfg_.pm == PmStyle::Ondemand && !status_listener.fd) {
        zygote_wanted_ = false;
        watch_ondemand();
        return true;
    }
    return start_zygote();
}

void Pool::spawn_initial() {
    int count = cfg_.pm == PmStyle::Static    ? cfg_.pm_max_children
                : cfg_.pm == PmStyle::Dynamic ? cfg_.pm_start_servers
                                              : 0;
    for (int i = 0; i < count; ++i)
        request_spawn();
    if (status_listener.fd) request_spawn(true);
    if (cfg_.pm == PmStyle::Ondemand) {
        watch_ondemand();
        // The connections that came during PHP's start-up are still waiting: a
        // worker for each, as php-fpm forks one per connection event.
        int early = std::max(early_connections_, 1);
        early_connections_ = 0;
        for (int i = 0; i < early && connection_waiting(); ++i)
            on_ondemand_connection(true);
    }
    if (count == 0) host_.pool_ready(); // a pool without initial workers (ondemand) is up now
}

// A connection waits in the pool's backlog.
bool Pool::connection_waiting() const {
    struct pollfd pfd = {listener.fd.get(), POLLIN, 0};
    return poll(&pfd, 1, 0) == 1;
}

// ondemand pools: the listening socket wakes the master (edge-triggered).
void Pool::watch_ondemand() {
    if (ondemand_ev_) return;
    ondemand_ev_ = make_event(shared_.base, listener.fd.get(), EV_READ | EV_PERSIST | EV_ET,
                              [this](evutil_socket_t, short) { on_ondemand_connection(true); });
    ondemand_ev_->add();
}

void Pool::warn_max_children(const char* directive) {
    if (warned_max_children_) return;
    board().max_children_reached.fetch_add(1);
    ZLOG_WARNING("[pool %s] server reached %s setting (%d), consider raising it", name().c_str(),
                 directive, cfg_.pm_max_children);
    warned_max_children_ = true;
}

// fpm_pctl_on_socket_accept: each new connection forks a worker when none is
// idle (one being forked is not idle yet: two connections at once get two;
// one an earlier connection claimed is not either, see claim_idle_worker),
// and it says once (until a spawn succeeds again) when max_children stops it.
// A tick that finds a connection still waiting forks only if none is on its way.
void Pool::on_ondemand_connection(bool edge) {
    if (!zygote_ready_) {
        if (edge) ++early_connections_; // spawn_initial serves them
        if (!zygote_wanted_) {          // its PHP starts with its first connection
            zygote_wanted_ = true;
            start_zygote();
        }
        return;
    }
    if (edge ? claim_idle_worker() : idle_workers() > 0 || pending_spawns_ > 0) return;
    // A worker that just became free may have taken the connection already (its
    // slot no longer says Idle): a worker forked for it would only idle out.
    // php-fpm forks regardless, and then retires the spare.
    if (edge && !connection_waiting()) return;
    if (total_workers() >= cfg_.pm_max_children) {
        warn_max_children("max_children");
        return;
    }
    warned_max_children_ = false;
    // The new worker is this connection's: the next one does not count on it.
    uint32_t i = request_spawn();
    if (i != UINT32_MAX) claims_[i] = {mono_us(), 0};
}

// The 1-second maintenance of php-fpm's fpm_pctl_perform_idle_server_maintenance.
void Pool::manage() {
    int idle = idle_workers(), total = total_workers();
    if (cfg_.pm == PmStyle::Ondemand) // also before its first worker, as php-fpm
        ZLOG_DEBUG("[pool %s] currently %d active children, %d spare children", name().c_str(),
                   total - idle, idle);
    if (!zygote_ready_) {
        if (zygote_wanted_ && zygote_pid_ == 0 && mono_us() >= zygote_retry_at_us_) start_zygote();
        if (!zygote_wanted_ && cfg_.pm == PmStyle::Ondemand && connection_waiting())
            on_ondemand_connection(false); // edge missed: look now
        return;
    }
    if (cfg_.pm == PmStyle::Ondemand) manage_ondemand();
    if (cfg_.pm == PmStyle::Dynamic) manage_dynamic(idle, total);
}

void Pool::manage_ondemand() {
    // The accept event is edge-triggered; connections still waiting are seen here.
    if (connection_waiting()) on_ondemand_connection(false);
    // One per tick, the first started idle worker, idle for more than
    // process_idle_timeout in whole seconds (php-fpm's comparison).
    Worker* w = first_started_idle();
    if (!w) return;
    uint64_t last_s = std::max(w->started_us, slot(w->slot).idle_since_us.load()) / 1000000u;
    if (last_s + static_cast<uint64_t>(cfg_.pm_process_idle_timeout) < mono_us() / 1000000u) {
        w->idle_kill = true;
        quit_worker(*w);
    }
}

void Pool::manage_dynamic(int idle, int total) {
    ZLOG_DEBUG("[pool %s] currently %d active children, %d spare children, %d running "
               "children. Spawning rate %d",
               name().c_str(), total - idle, idle, total, idle_spawn_rate_);
    if (idle > cfg_.pm_max_spare_servers) {
        kill_idle_worker();
        idle_spawn_rate_ = 1;
        return;
    }
    if (idle >= cfg_.pm_min_spare_servers) {
        idle_spawn_rate_ = 1;
        return;
    }
    if (total >= cfg_.pm_max_children) {
        warn_max_children("pm.max_children");
        idle_spawn_rate_ = 1;
        return;
    }
    warned_max_children_ = false;
    int children_to_fork = std::min(idle_spawn_rate_, cfg_.pm_min_spare_servers - idle);
    children_to_fork = std::min(children_to_fork, cfg_.pm_max_children - total);
    if (idle_spawn_rate_ >= 8)
        ZLOG_WARNING("[pool %s] seems busy (you may need to increase pm.start_servers, or "
                     "pm.min/max_spare_servers), spawning %d children, there are %d idle, and "
                     "%d total children",
                     name().c_str(), idle_spawn_rate_, idle, total);
    for (int k = 0; k < children_to_fork; ++k)
        request_spawn();
    idle_spawn_rate_ = std::min(idle_spawn_rate_ * 2, cfg_.pm_max_spawn_rate);
}

// php-fpm's last_idle_child: of the pool's idle workers, the one started first.
Worker* Pool::first_started_idle() {
    Worker* first = nullptr;
    for (auto& [pid, w] : workers_)
        if (is_idle(w) && (!first || w.started_us < first->started_us)) first = &w;
    return first;
}

// Dynamic pm shrinks by one worker a tick: the first started idle one.
void Pool::kill_idle_worker() {
    Worker* w = first_started_idle();
    if (!w) return;
    w->idle_kill = true;
    quit_worker(*w);
}

// A graceful stop: the worker ends after its current request. False if it is gone.
bool Pool::quit_worker(Worker& w) {
    if (!w.retiring) slot(w.slot).quit.store(true); // its slot is in the old board
    return kill(w.pid, SIGQUIT) == 0;
}

void Pool::quit_workers() {
    for (auto& [pid, w] : workers_)
        quit_worker(w);
}

void Pool::restart(const std::string& why) {
    if (restart_requested_ || zygote_pid_ <= 0) return; // under way, or nothing runs yet
    ZLOG_NOTICE("[pool %s] %s: restarting the pool's zygote and workers", name().c_str(),
                why.c_str());
    // A script that failed at boot gets another chance (the 503 state ends).
    for (uint32_t i = board().first_slot; i < board().first_slot + board().slot_count; ++i)
        slot(i).boot_failures.store(0);
    boot_failures_announced_ = false;
    restart_requested_ = replace_workers_ = true;
    kill(zygote_pid_, SIGTERM);
}

// nginx's order: the previous generation's workers served until this one was
// up; now its idle ones leave at once and its busy ones after their request.
void Pool::quit_retiring() {
    for (auto& [pid, w] : workers_)
        if (w.retiring) quit_worker(w);
}

void Pool::kill_retiring() {
    for (auto& [pid, w] : workers_)
        if (w.retiring) kill(pid, SIGKILL);
}

// fpm_pctl_kill_all's part for this pool, with its debug lines.
int Pool::signal_workers(int signo) {
    int alive = 0;
    for (auto& [pid, w] : workers_) {
        alive += signo == SIGQUIT ? quit_worker(w) : kill(pid, signo) == 0;
        ZLOG_DEBUG("[pool %s] sending signal %d %s to child %d", name().c_str(), signo,
                   log::signal_name(signo).c_str(), static_cast<int>(pid));
    }
    return alive;
}

bool Pool::on_child_exit(pid_t pid, int status) {
    if (auto it = workers_.find(pid); it != workers_.end()) {
        on_worker_exit(it->second, status);
        workers_.erase(it);
        return true;
    }
    if (pid != zygote_pid_ || pid == 0) return false;
    on_zygote_exit(status);
    return true;
}

void Pool::free_worker_slot(const Worker& w) {
    WorkerSlot& s = slot(w.slot);
    if (uint64_t rss = s.over_memory.exchange(0)) {
        board().memory_recycles.fetch_add(1);
        ZLOG_NOTICE("[pool %s] child %d exceeded pm.max_memory (%lu > %lu bytes) after its "
                    "request, recycling",
                    name().c_str(), static_cast<int>(w.pid), static_cast<unsigned long>(rss),
                    static_cast<unsigned long>(cfg_.pm_max_memory));
    }
    claims_.erase(w.slot);
    s.pid = 0;
    s.state = static_cast<int>(WorkerState::Idle);
    s.request_started_us = 0;
    s.idle_since_us = 0;
    slot_busy_[w.slot - board().first_slot] = w.status; // its slot stays reserved
}

// Worker mode: the script failed before its first request (the worker counted
// it on its slot and waited its backoff before leaving).
void Pool::report_boot_failure(const Worker& w) {
    uint32_t failures = slot(w.slot).boot_failures.load();
    auto max = static_cast<uint32_t>(cfg_.worker_max_consecutive_failures);
    if (failures < max) {
        ZLOG_WARNING("[pool %s] child %d: worker script '%s' failed before serving a request "
                     "(%u in a row)",
                     name().c_str(), static_cast<int>(w.pid), cfg_.worker_script.c_str(), failures);
    } else if (!std::exchange(boot_failures_announced_, true)) {
        ZLOG_ERROR("[pool %s] worker script '%s' failed %u times in a row before serving a "
                   "request: its workers answer 503 until the pool is reloaded",
                   name().c_str(), cfg_.worker_script.c_str(), failures);
    }
}

void Pool::on_worker_exit(Worker& w, int status) {
    for (OutputPipe* p : {w.out.get(), w.err.get()}) {
        if (!p) continue;
        if (p->ev) on_output(p); // what is still in the pipe
        flush_output(p);
    }
    if (!w.retiring) free_worker_slot(w);
    // A worker of the previous generation leaves as in a stopping master.
    bool is_stopping = host_.stopping() || w.retiring;
    log::LogLevel severity = log::LogLevel::Notice;
    bool restart = true;
    char how[128];
    if (WIFEXITED(status)) {
        snprintf(how, sizeof how, "with code %d", WEXITSTATUS(status));
        if (w.idle_kill) restart = false;
        if (WEXITSTATUS(status) != 0) severity = log::LogLevel::Warning;
    } else {
        int sig = WTERMSIG(status);
        snprintf(how, sizeof how, "on signal %d (%s%s)", sig, log::signal_name(sig).c_str(),
                 WCOREDUMP(status) ? " - core dumped" : "");
        if (w.idle_kill && sig == SIGQUIT) restart = false;
        if (sig != SIGQUIT) severity = log::LogLevel::Warning;
    }
    uint64_t lived = mono_us() - w.started_us;
    auto secs = static_cast<unsigned long>(lived / 1000000u);
    auto usecs = static_cast<unsigned long>(lived % 1000000u);
    // fpm_children_bury: a worker the process manager retired is not news.
    if (!restart) {
        ZLOG_DEBUG("[pool %s] child %d has been killed by the process management after "
                   "%lu.%06lu seconds from start",
                   name().c_str(), static_cast<int>(w.pid), secs, usecs);
    } else {
        if (is_stopping) severity = log::LogLevel::Debug;
        log::write(severity, __func__, __LINE__, false,
                   "[pool %s] child %d exited %s after %lu.%06lu seconds from start",
                   name().c_str(), static_cast<int>(w.pid), how, secs, usecs);
        // Replaced in every pm mode (an ondemand pool too, as fpm_children_make
        // does in the event loop), and announced: php-fpm logs it at NOTICE.
        if (!is_stopping) request_spawn(w.status, true);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == kExitWorkerBoot && !is_stopping)
        report_boot_failure(w);
    // Only crashes count towards emergency_restart_threshold (php-fpm: SEGV, BUS).
    if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS) &&
        !is_stopping)
        host_.worker_crashed();
}

void Pool::on_zygote_exit(int status) {
    zygote_pid_ = 0;
    zygote_ready_ = false;
    zygote_ev_.reset();
    zygote_ctl_.reset();
    pending_spawns_ = 0;
    for (auto& [i, pipes] : pending_pipes_)
        slot_busy_[i - board().first_slot] = i == board().status_slot;
    pending_pipes_.clear();
    announced_spawns_.clear();
    if (host_.stopping()) return;
    if (std::exchange(restart_requested_, false)) {
        start_zygote();
        return;
    }
    // Back off 1, 2, 4 ... 30 s between restarts so a broken php.ini does not spin;
    // a zygote that ran for a while was healthy: the next restart is immediate again.
    if (mono_us() - zygote_started_us_ >= kZygoteStableUs) zygote_restarts_ = 0;
    int delay = std::min(30, 1 << std::min(zygote_restarts_, 5));
    zygote_restarts_++;
    zygote_retry_at_us_ = mono_us() + static_cast<uint64_t>(delay - 1) * 1000000u;
    const char* how = WIFEXITED(status) ? "exited" : "was killed";
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status);
    ZLOG_WARNING("[pool %s] zygote %s (%d), restarting it", name().c_str(), how, code);
    if (host_.starting()) {
        host_.start_failed();
        return;
    }
    // No pause owed: start it now rather than on the next 1-second tick.
    if (zygote_wanted_ && mono_us() >= zygote_retry_at_us_) start_zygote();
}

} // namespace lowphp::pool
