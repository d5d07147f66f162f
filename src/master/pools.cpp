// The master's side of its pools: making them, routing a reaped child or a
// timer to them, and what they ask of it (pool::Host): readiness, process.max,
// crash counting.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lowphp/log.h"
#include "lowphp/systemd_notify.h"
#include "master_internal.h"

namespace lowphp::master {

// The scoreboard first (every pool's slots, before any fork), then the pools.
bool Master::create_pools() {
    std::vector<std::string> names;
    std::vector<uint32_t> slots;
    std::vector<int> styles;
    std::vector<uint64_t> max_memory;
    std::vector<bool> status_worker;
    for (const auto& p : cfg_.pools) {
        max_memory.push_back(p.pm_max_memory);
        status_worker.push_back(!p.pm_status_listen.empty());
        names.push_back(p.name);
        styles.push_back(static_cast<int>(p.pm));
        slots.push_back(static_cast<uint32_t>(p.pm_max_children));
    }
    if (!scoreboard_.create(names, styles, slots, max_memory, status_worker)) return false;
    for (size_t i = 0; i < cfg_.pools.size(); ++i)
        scoreboard_.pool(i).worker_mode = cfg_.pools[i].worker_mode();
    for (size_t i = 0; i < cfg_.pools.size(); ++i)
        scoreboard_.pool(i).connections_reuse = cfg_.pools[i].connections_reuse;
    if (!backends_.create(cfg_.pools, handover_.backends_fd)) return false;
    handover_.backends_fd = -1;
    pool::Shared shared{base_.get(), &scoreboard_, &backends_, &cfg_, opts_.ini, opts_.run_as_root};
    for (size_t i = 0; i < cfg_.pools.size(); ++i)
        pools_.push_back(std::make_unique<pool::Pool>(i, cfg_.pools[i],
                                                      std::move(identities_.at(i)), shared, *this));
    return true;
}

// After a reload: each pool of the new configuration takes back its parked
// connections and the workers of its previous generation; what belonged to a
// pool that is gone is closed, and its workers are only reaped.
void Master::adopt_previous_generation() {
    auto find = [&](const std::string& name) {
        auto it = std::find_if(pools_.begin(), pools_.end(),
                               [&](const auto& p) { return p->name() == name; });
        return it == pools_.end() ? nullptr : it->get();
    };
    for (auto& [pool_name, fd] : handover_.parked) {
        if (pool::Pool* p = find(pool_name))
            p->adopt_parked(fd);
        else
            close(fd);
    }
    for (auto& [pool_name, c] : handover_.channels)
        for (int fd : {c.park_rx, c.park_tx, c.handoff_rx, c.handoff_tx})
            close(fd);
    for (const auto& child : handover_.retiring) {
        pool::Pool* p = find(child.pool);
        if (p && !child.zygote) {
            p->adopt_retiring(child);
            continue;
        }
        // A zygote was told to stop already (SIGTERM): it is reaped without a word.
        (child.zygote ? previous_zygotes_ : orphans_).insert(child.pid);
        for (int fd : {child.out, child.err})
            if (fd >= 0) close(fd);
    }
    handover_.parked.clear();
    handover_.channels.clear();
    handover_.retiring.clear();
    // A pool that is gone has nothing to wait for: its workers end now.
    for (pid_t pid : orphans_)
        kill(pid, SIGQUIT);
}

// This generation is up: the previous one's idle workers leave now, its busy
// ones after their request, and all of them within process_control_timeout.
void Master::retire_previous_generation() {
    for (auto& p : pools_)
        p->quit_retiring();
    int timeout = cfg_.global.process_control_timeout;
    if (timeout <= 0) return;
    retire_event_ = make_event(base_.get(), -1, 0, [this](evutil_socket_t, short) {
        for (auto& p : pools_)
            p->kill_retiring();
        for (pid_t pid : orphans_)
            kill(pid, SIGKILL);
    });
    struct timeval tv = {timeout, 0};
    retire_event_->add(&tv);
}

void Master::reap_children() {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        backends_.release_pid(pid); // a crashed worker's connection tokens
        bool known = orphans_.erase(pid) > 0 || previous_zygotes_.erase(pid) > 0 ||
                     std::any_of(pools_.begin(), pools_.end(),
                                 [&](auto& p) { return p->on_child_exit(pid, status); });
        // A worker that died before its zygote's reply named it: kept until the reply.
        if (!known) early_exits_[pid] = status;
    }
    child_gone();
}

std::optional<int> Master::take_early_exit(pid_t pid) {
    auto it = early_exits_.find(pid);
    if (it == early_exits_.end()) return std::nullopt;
    int status = it->second;
    early_exits_.erase(it);
    return status;
}

void Master::check_request_timeouts() {
    uint64_t now = mono_us();
    for (auto& p : pools_)
        p->check_request_timeouts(now);
}

// process.max counts every pool's workers, those being forked too.
bool Master::may_spawn() {
    if (cfg_.global.process_max <= 0) return true;
    size_t running = 0;
    for (auto& p : pools_)
        running += p->children();
    if (running >= static_cast<size_t>(cfg_.global.process_max)) {
        if (!process_max_warned_)
            ZLOG_WARNING("The maximum number of processes has been reached. Please review your "
                         "configuration and consider raising 'process.max'");
        process_max_warned_ = true;
        return false;
    }
    process_max_warned_ = false;
    return true;
}

// emergency_restart_threshold failures within emergency_restart_interval: the
// master reloads itself (fpm_children_bury's last_faults ring).
void Master::count_failure() {
    int threshold = cfg_.global.emergency_restart_threshold;
    int interval = cfg_.global.emergency_restart_interval;
    if (threshold <= 0 || interval <= 0) return;
    uint64_t now = mono_us();
    failures_us_.push_back(now);
    if (failures_us_.size() > static_cast<size_t>(threshold))
        failures_us_.erase(failures_us_.begin());
    if (failures_us_.size() < static_cast<size_t>(threshold) ||
        now - failures_us_.front() >= static_cast<uint64_t>(interval) * 1000000u)
        return;
    failures_us_.clear();
    ZLOG_WARNING("failed processes threshold (%d in %d sec) is reached, initiating reload",
                 threshold, interval);
    // From the event loop, not from inside the pool reaping the crashed
    // worker: the reload hands every child to the next image, and that one is gone.
    emergency_reload_ = make_event(base_.get(), -1, 0, [this](evutil_socket_t, short) {
        begin_stop(State::Reloading, false);
    });
    struct timeval at_once = {0, 0};
    emergency_reload_->add(&at_once);
}

// php-fpm's STATUS= heartbeat: the workers of every pool.
void Master::report_to_systemd() {
    int active = 0, idle = 0;
    for (auto& p : pools_) {
        int pool_idle = p->idle_workers();
        idle += pool_idle;
        active += p->total_workers() - pool_idle;
    }
    systemd_notify::report_status(scoreboard_, active, idle, systemd_state_);
}

void Master::start_failed() {
    notify_parent(false);
    begin_stop(State::Terminating);
}

// Start-up ends when every pool is up (see pool::Pool::up).
void Master::pool_ready() {
    if (state_ != State::Starting) return;
    for (auto& p : pools_)
        if (!p->up()) return;
    state_ = State::Running;
    ZLOG_NOTICE("ready to handle connections");
    retire_previous_generation();
    ZLOG_NOTICE("systemd monitor interval set to %dms", cfg_.global.systemd_interval * 1000);
    notify_parent(true);
    if (!systemd_heartbeat_ &&
        systemd_notify::ready(scoreboard_, cfg_.global.systemd_interval, systemd_state_)) {
        systemd_heartbeat_ = make_event(base_.get(), -1, EV_PERSIST,
                                        [this](evutil_socket_t, short) { report_to_systemd(); });
        uint64_t us = systemd_state_.interval_us;
        timeval tv = {static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
        systemd_heartbeat_->add(&tv);
    }
}

} // namespace lowphp::master
