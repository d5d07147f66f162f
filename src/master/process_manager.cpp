// Process management: how many workers each pool has (pm static / dynamic /
// ondemand), reaping and replacing them, and their captured output.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lowphp/log.h"
#include "master_internal.h"

namespace lowphp::master {
namespace {

using config::PmStyle;

// A zygote that lived this long before dying resets the restart backoff.
constexpr uint64_t kZygoteStableUs = 10'000'000;

} // namespace

std::string signal_name(int signo) {
    const char* abbrev = sigabbrev_np(signo);
    return abbrev ? std::string("SIG") + abbrev : std::string();
}

uint32_t Master::free_slot(size_t index) {
    PoolRuntime& pool = pools_[index];
    for (size_t i = 0; i < pool.slot_busy.size(); ++i)
        if (!pool.slot_busy[i])
            return scoreboard_.pool(index).first_slot + static_cast<uint32_t>(i);
    return UINT32_MAX;
}

int Master::total_workers(size_t index) {
    int n = pools_[index].pending_spawns;
    for (auto& [pid, w] : workers_)
        if (w.pool == index && !w.status) ++n;
    return n;
}

// A pool worker waiting for work, not already being retired.
bool Master::is_idle(const Worker& w, size_t index) {
    return w.pool == index && !w.idle_kill && !w.status &&
           scoreboard_.slot(w.slot).state.load(std::memory_order_relaxed) ==
               static_cast<int>(WorkerState::Idle);
}

int Master::idle_workers(size_t index) {
    int n = 0;
    for (auto& [pid, w] : workers_)
        if (is_idle(w, index)) ++n;
    // A worker the zygote forked may serve, and wait again, before its pid
    // reaches the master: its slot tells (php-fpm forks itself and knows its
    // child at once). An ondemand pool forked a second worker for the next
    // connection of a client served by the first.
    uint32_t status_slot = scoreboard_.pool(index).status_slot;
    for (auto& [slot, pipes] : pools_[index].pending_pipes) {
        WorkerSlot& s = scoreboard_.slot(slot);
        if (slot != status_slot && s.pid.load(std::memory_order_relaxed) != 0 &&
            s.state.load(std::memory_order_relaxed) == static_cast<int>(WorkerState::Idle))
            ++n;
    }
    return n;
}

void Master::spawn_initial(size_t index) {
    const auto& cfg = pools_[index].cfg;
    int count = cfg.pm == PmStyle::Static    ? cfg.pm_max_children
                : cfg.pm == PmStyle::Dynamic ? cfg.pm_start_servers
                                             : 0;
    for (int i = 0; i < count; ++i)
        request_spawn(index);
    if (pools_[index].status_listener.fd) request_spawn(index, true);
    if (cfg.pm == PmStyle::Ondemand) {
        watch_ondemand(index);
        // The connections that came during PHP's start-up are still waiting: a
        // worker for each, as php-fpm forks one per connection event.
        int early = std::max(pools_[index].early_connections, 1);
        pools_[index].early_connections = 0;
        for (int i = 0; i < early && connection_waiting(index); ++i)
            on_ondemand_connection(index, true);
    }
    if (count == 0) maybe_ready(); // a pool without initial workers (ondemand) is ready now
}

// A connection waits in the pool's backlog.
bool Master::connection_waiting(size_t index) {
    struct pollfd pfd = {pools_[index].listener.fd.get(), POLLIN, 0};
    return poll(&pfd, 1, 0) == 1;
}

// ondemand pools: the listening socket wakes the master (edge-triggered).
void Master::watch_ondemand(size_t index) {
    if (pools_[index].ondemand_ev) return;
    pools_[index].ondemand_ev =
        make_event(base_.get(), pools_[index].listener.fd.get(), EV_READ | EV_PERSIST | EV_ET,
                   [this, index](evutil_socket_t, short) { on_ondemand_connection(index, true); });
    pools_[index].ondemand_ev->add();
}

// fpm_pctl_on_socket_accept: each new connection forks a worker when none is
// idle (one being forked is not idle yet: two connections at once get two),
// and it says once (until a spawn succeeds again) when max_children stops it.
// A tick that finds a connection still waiting forks only if none is on its way.
void Master::on_ondemand_connection(size_t index, bool edge) {
    PoolRuntime& pool = pools_[index];
    if (!pool.zygote_ready) {
        if (edge) ++pool.early_connections; // spawn_initial serves them
        if (!pool.zygote_wanted) {          // its PHP starts with its first connection
            pool.zygote_wanted = true;
            start_zygote(index);
        }
        return;
    }
    if (idle_workers(index) > 0 || (!edge && spawning(index))) return;
    // A worker that just became free may have taken the connection already (its
    // slot no longer says Idle): a worker forked for it would only idle out.
    // php-fpm forks regardless, and then retires the spare.
    if (edge && !connection_waiting(index)) return;
    if (total_workers(index) >= pool.cfg.pm_max_children) {
        if (!pool.warned_max_children) {
            scoreboard_.pool(index).max_children_reached.fetch_add(1);
            ZLOG_WARNING("[pool %s] server reached max_children setting (%d), consider raising it",
                         pool.cfg.name.c_str(), pool.cfg.pm_max_children);
            pool.warned_max_children = true;
        }
        return;
    }
    pool.warned_max_children = false;
    request_spawn(index);
}

// The 1-second maintenance of php-fpm's fpm_pctl_perform_idle_server_maintenance.
void Master::manage_pools() {
    for (size_t i = 0; i < pools_.size(); ++i) {
        PoolRuntime& pool = pools_[i];
        const auto& cfg = pool.cfg;
        int idle = idle_workers(i), total = total_workers(i);
        if (cfg.pm == PmStyle::Ondemand) // also before its first worker, as php-fpm
            ZLOG_DEBUG("[pool %s] currently %d active children, %d spare children",
                       cfg.name.c_str(), total - idle, idle);
        if (!pool.zygote_ready) {
            if (pool.zygote_wanted && pool.zygote_pid == 0 && mono_us() >= pool.zygote_retry_at_us)
                start_zygote(i);
            if (!pool.zygote_wanted && cfg.pm == PmStyle::Ondemand) { // edge missed: look now
                if (connection_waiting(i)) on_ondemand_connection(i, false);
            }
            continue;
        }
        if (cfg.pm == PmStyle::Ondemand) {
            // The accept event is edge-triggered; connections still waiting are seen here.
            if (connection_waiting(i)) on_ondemand_connection(i, false);
            // One per tick, the first started idle worker, idle for more than
            // process_idle_timeout in whole seconds (php-fpm's comparison).
            if (Worker* w = first_started_idle(i)) {
                WorkerSlot& s = scoreboard_.slot(w->slot);
                uint64_t last_s = std::max(w->started_us, s.idle_since_us.load()) / 1000000u;
                uint64_t now_s = mono_us() / 1000000u;
                if (last_s + static_cast<uint64_t>(cfg.pm_process_idle_timeout) < now_s) {
                    w->idle_kill = true;
                    quit_worker(*w);
                }
            }
            continue;
        }
        if (cfg.pm != PmStyle::Dynamic) continue;
        ZLOG_DEBUG("[pool %s] currently %d active children, %d spare children, %d running "
                   "children. Spawning rate %d",
                   cfg.name.c_str(), total - idle, idle, total, pool.idle_spawn_rate);
        if (idle > cfg.pm_max_spare_servers) {
            kill_idle_worker(i);
            pool.idle_spawn_rate = 1;
            continue;
        }
        if (idle >= cfg.pm_min_spare_servers) {
            pool.idle_spawn_rate = 1;
            continue;
        }
        if (total >= cfg.pm_max_children) {
            if (!pool.warned_max_children) {
                scoreboard_.pool(i).max_children_reached.fetch_add(1);
                ZLOG_WARNING("[pool %s] server reached pm.max_children setting (%d), consider "
                             "raising it",
                             cfg.name.c_str(), cfg.pm_max_children);
                pool.warned_max_children = true;
            }
            pool.idle_spawn_rate = 1;
            continue;
        }
        pool.warned_max_children = false;
        int children_to_fork = std::min(pool.idle_spawn_rate, cfg.pm_min_spare_servers - idle);
        children_to_fork = std::min(children_to_fork, cfg.pm_max_children - total);
        if (pool.idle_spawn_rate >= 8)
            ZLOG_WARNING("[pool %s] seems busy (you may need to increase pm.start_servers, or "
                         "pm.min/max_spare_servers), spawning %d children, there are %d idle, and "
                         "%d total children",
                         cfg.name.c_str(), pool.idle_spawn_rate, idle, total);
        for (int k = 0; k < children_to_fork; ++k)
            request_spawn(i);
        pool.idle_spawn_rate = std::min(pool.idle_spawn_rate * 2, cfg.pm_max_spawn_rate);
    }
}

// php-fpm's last_idle_child: of the pool's idle workers, the one started first.
Worker* Master::first_started_idle(size_t index) {
    Worker* first = nullptr;
    for (auto& [pid, w] : workers_)
        if (is_idle(w, index) && (!first || w.started_us < first->started_us)) first = &w;
    return first;
}

// Dynamic pm shrinks by one worker a tick: the first started idle one.
void Master::kill_idle_worker(size_t index) {
    Worker* w = first_started_idle(index);
    if (!w) return;
    w->idle_kill = true;
    quit_worker(*w);
}

void Master::reap_children() {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        auto it = workers_.find(pid);
        if (it != workers_.end()) {
            on_worker_exit(it->second, status);
            workers_.erase(it);
            continue;
        }
        bool zygote = false;
        for (size_t i = 0; i < pools_.size(); ++i)
            if (pools_[i].zygote_pid == pid) {
                on_zygote_exit(i, status);
                zygote = true;
            }
        // A worker that died before its zygote's reply named it: kept until the reply.
        if (!zygote) early_exits_[pid] = status;
    }
    maybe_exit();
}

void Master::on_worker_exit(Worker& w, int status) {
    PoolRuntime& pool = pools_[w.pool];
    for (OutputPipe* p : {w.out.get(), w.err.get()}) {
        if (!p) continue;
        if (p->ev) on_output(p); // what is still in the pipe
        flush_output(p, true);
    }
    WorkerSlot& slot = scoreboard_.slot(w.slot);
    if (uint64_t rss = slot.over_memory.exchange(0)) {
        scoreboard_.pool(w.pool).memory_recycles.fetch_add(1);
        ZLOG_NOTICE("[pool %s] child %d exceeded pm.max_memory (%lu > %lu bytes) after its "
                    "request, recycling",
                    pool.cfg.name.c_str(), static_cast<int>(w.pid), static_cast<unsigned long>(rss),
                    static_cast<unsigned long>(pool.cfg.pm_max_memory));
    }
    slot.pid = 0;
    slot.state = static_cast<int>(WorkerState::Idle);
    slot.request_started_us = 0;
    slot.idle_since_us = 0;
    pool.slot_busy[w.slot - scoreboard_.pool(w.pool).first_slot] =
        w.status; // its slot stays reserved

    bool is_stopping = stopping();
    log::LogLevel severity = log::LogLevel::Notice;
    bool restart = true;
    char how[128];
    if (WIFEXITED(status)) {
        snprintf(how, sizeof how, "with code %d", WEXITSTATUS(status));
        if (w.idle_kill) restart = false;
        if (WEXITSTATUS(status) != 0) severity = log::LogLevel::Warning;
    } else {
        int sig = WTERMSIG(status);
        snprintf(how, sizeof how, "on signal %d (%s%s)", sig, signal_name(sig).c_str(),
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
                   pool.cfg.name.c_str(), static_cast<int>(w.pid), secs, usecs);
    } else {
        if (is_stopping) severity = log::LogLevel::Debug;
        log::write(severity, __func__, __LINE__, false,
                   "[pool %s] child %d exited %s after %lu.%06lu seconds from start",
                   pool.cfg.name.c_str(), static_cast<int>(w.pid), how, secs, usecs);
        // Replaced in every pm mode (an ondemand pool too, as fpm_children_make
        // does in the event loop), and announced: php-fpm logs it at NOTICE.
        if (!is_stopping) request_spawn(w.pool, w.status, true);
    }
    // Only crashes count towards emergency_restart_threshold (php-fpm: SEGV, BUS).
    if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS) &&
        !is_stopping)
        count_failure();
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
    begin_stop(State::Reloading, false);
}

void Master::on_zygote_exit(size_t index, int status) {
    PoolRuntime& pool = pools_[index];
    pool.zygote_pid = 0;
    pool.zygote_ready = false;
    pool.zygote_ev.reset();
    pool.zygote_ctl.reset();
    pool.pending_spawns = 0;
    for (auto& [slot, pipes] : pool.pending_pipes) {
        pool.slot_busy[slot - scoreboard_.pool(index).first_slot] =
            slot == scoreboard_.pool(index).status_slot;
        (void)pipes;
    }
    pool.pending_pipes.clear();
    pool.announced_spawns.clear();
    if (stopping()) return;
    // Back off 1, 2, 4 ... 30 s between restarts so a broken php.ini does not spin;
    // a zygote that ran for a while was healthy: the next restart is immediate again.
    if (mono_us() - pool.zygote_started_us >= kZygoteStableUs) pool.zygote_restarts = 0;
    int delay = std::min(30, 1 << std::min(pool.zygote_restarts, 5));
    pool.zygote_restarts++;
    pool.zygote_retry_at_us = mono_us() + static_cast<uint64_t>(delay - 1) * 1000000u;
    const char* how = WIFEXITED(status) ? "exited" : "was killed";
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status);
    ZLOG_WARNING("[pool %s] zygote %s (%d), restarting it", pool.cfg.name.c_str(), how, code);
    if (state_ == State::Starting) {
        notify_parent(false);
        begin_stop(State::Terminating);
        return;
    }
    // No pause owed: start it now rather than on the next 1-second tick.
    if (pool.zygote_wanted && mono_us() >= pool.zygote_retry_at_us) start_zygote(index);
}

void Master::watch_output(Worker& w) {
    for (OutputPipe* p : {w.out.get(), w.err.get()}) {
        if (!p) continue;
        p->pid = w.pid;
        p->pool = w.pool;
        const auto& cfg = pools_[w.pool].cfg;
        p->lines.emplace(log::child_output_room(static_cast<size_t>(cfg_.global.log_limit),
                                                cfg.decorate_workers_output, cfg.name, w.pid,
                                                p->stream_name));
        p->ev = make_event(base_.get(), p->fd.get(), EV_READ | EV_PERSIST,
                           [this, p](evutil_socket_t, short) { on_output(p); });
        p->ev->add();
    }
    if (w.out && w.err) {
        w.out->other = w.err.get();
        w.err->other = w.out.get();
        w.err->is_stderr = true;
    }
}

// php-fpm's master keeps one log stream per worker: output on one pipe first
// ends the line left open on the other (fpm_stdio_child_said). What stderr
// brings (a message, the end-of-request marker) was written after what stdout
// holds now: stdout is read first, so a request's unterminated stdout line is
// logged at its end, before its stderr.
void Master::on_output(OutputPipe* pipe) {
    if (pipe->is_stderr && pipe->other && pipe->other->ev) on_output(pipe->other);
    char buf[4096];
    std::vector<std::string> lines;
    bool first = true;
    for (;;) {
        ssize_t n = read(pipe->fd.get(), buf, sizeof buf);
        if (n > 0) {
            if (first && pipe->other) flush_output(pipe->other, true);
            first = false;
            pipe->lines->feed(buf, static_cast<size_t>(n), lines);
            continue;
        }
        if (n == 0) pipe->ev.reset(); // the worker closed it (exited)
        break;                        // EOF or EAGAIN
    }
    log_output(pipe, lines);
    if (!pipe->ev) flush_output(pipe, true);
}

// php-fpm's fpm_stdio_child_said: one log line per output line (wrapped to log_limit).
void Master::log_output(OutputPipe* pipe, const std::vector<std::string>& lines) {
    const auto& cfg = pools_[pipe->pool].cfg;
    for (const std::string& line : lines) {
        if (cfg.decorate_workers_output)
            ZLOG_WARNING("[pool %s] child %d said into %s: \"%s\"", cfg.name.c_str(),
                         static_cast<int>(pipe->pid), pipe->stream_name, line.c_str());
        else
            log::write_raw(line);
    }
}

// At the worker's exit: what it left unterminated is a line too.
void Master::flush_output(OutputPipe* pipe, bool all) {
    if (!all || !pipe->lines) return;
    std::vector<std::string> lines;
    pipe->lines->finish(lines);
    log_output(pipe, lines);
}

} // namespace lowphp::master
