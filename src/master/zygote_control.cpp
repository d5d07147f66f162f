// Master side of the zygotes: fork one per pool, ask it for workers, learn their
// pids. Workers are cloned with CLONE_PARENT, so they are the master's own
// children: it reaps them and sees their exit status directly.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <set>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lowphp/fd_passing.h"
#include "lowphp/log.h"
#include "lowphp/systemd_notify.h"
#include "lowphp/zygote.h"
#include "master_internal.h"

namespace lowphp::master {
namespace {

// A forked zygote must not hold the master's descriptors (event loop, other
// pools' sockets, pipes of other workers): only what it needs stays open.
void close_all_but(const std::set<int>& keep) {
    DIR* dir = opendir("/proc/self/fd");
    if (!dir) return;
    std::vector<int> to_close;
    int dir_fd = dirfd(dir);
    while (struct dirent* e = readdir(dir)) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != dir_fd && !keep.count(fd)) to_close.push_back(fd);
    }
    closedir(dir);
    for (int fd : to_close)
        close(fd);
}

void reset_signals() {
    for (int signo : {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGHUP})
        signal(signo, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
}

} // namespace

bool Master::start_zygote(size_t index) {
    PoolRuntime& pool = pools_[index];
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        ZLOG_SYSERROR("[pool %s] failed to create the zygote control socket",
                      pool.cfg.name.c_str());
        return false;
    }
    pid_t master_pid = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        ZLOG_SYSERROR("[pool %s] fork() failed", pool.cfg.name.c_str());
        close(sv[0]);
        close(sv[1]);
        return false;
    }
    if (pid == 0) {
        // Dies with the master; a master gone before this line is seen by
        // comparing the parent (not with 1: a subreaper may adopt orphans).
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != master_pid) _exit(1);
        reset_signals();
        close(sv[0]);
        // The original stderr: for PHP's start-up messages (zygote::run).
        close_all_but({sv[1], pool.listener.fd.get(), log::fd(), pool.park_tx.get(),
                       pool.handoff_rx.get(), pool.handoff_tx.get(), pool.status_listener.fd.get(),
                       log::original_stderr_fd()});
        zygote::Params p;
        p.config = &cfg_;
        p.pool_index = index;
        p.ini = opts_.ini;
        p.listen_fd = pool.listener.fd.get();
        p.status_listen_fd = pool.status_listener.fd.get();
        p.control_fd = sv[1];
        p.master_pid = master_pid;
        p.park_fd = pool.park_tx.get();
        p.handoff_fd = pool.handoff_rx.get();
        p.handoff_send_fd = pool.handoff_tx.get();
        p.scoreboard = &scoreboard_;
        p.run_as_root = opts_.run_as_root;
        p.identity = &pool.identity;
        zygote::run(p);
    }
    close(sv[1]);
    pool.zygote_pid = pid;
    pool.zygote_started_us = mono_us();
    pool.zygote_ready = false;
    pool.zygote_ctl.reset(sv[0]);
    pool.zygote_ev =
        make_event(base_.get(), sv[0], EV_READ | EV_PERSIST,
                   [this, index](evutil_socket_t, short) { on_zygote_message(index); });
    pool.zygote_ev->add();
    return true;
}

void Master::on_zygote_message(size_t index) {
    PoolRuntime& pool = pools_[index];
    zygote::SpawnReply reply;
    ssize_t n = recv(pool.zygote_ctl.get(), &reply, sizeof reply, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        // The zygote is gone; its exit is handled when it is reaped.
        pool.zygote_ev.reset();
        pool.zygote_ctl.reset();
        return;
    }
    if (n != sizeof reply) return;
    if (reply.slot == zygote::kReadySlot) {
        if (reply.pid < 0) {
            ZLOG_ERROR("[pool %s] PHP start-up failed in the pool's zygote", pool.cfg.name.c_str());
            if (state_ == State::Starting) {
                notify_parent(false);
                begin_stop(State::Terminating);
            }
            return;
        }
        pool.zygote_ready = true;
        spawn_initial(index);
        return;
    }
    pool.pending_spawns--;
    auto pipes = std::move(pool.pending_pipes[reply.slot]);
    pool.pending_pipes.erase(reply.slot);
    bool announce = pool.announced_spawns.erase(reply.slot) > 0;
    uint32_t rel = reply.slot - scoreboard_.pool(index).first_slot;
    if (reply.pid <= 0) {
        errno = -reply.pid;
        ZLOG_SYSERROR("[pool %s] fork() failed", pool.cfg.name.c_str());
        pool.slot_busy[rel] = reply.slot == scoreboard_.pool(index).status_slot;
    } else {
        Worker& w = workers_[reply.pid];
        w.pid = reply.pid;
        w.pool = index;
        w.slot = reply.slot;
        w.status = reply.slot == scoreboard_.pool(index).status_slot;
        w.started_us = mono_us();
        w.out = std::move(pipes.first);
        w.err = std::move(pipes.second);
        watch_output(w);
        if (!w.status) count_new_worker_active(index);
        // fpm_children_make's is_debug: only a replacement is announced; the
        // initial workers and those the pool's pm adds are logged at DEBUG.
        if (announce)
            ZLOG_NOTICE("[pool %s] child %d started", pool.cfg.name.c_str(), reply.pid);
        else
            ZLOG_DEBUG("[pool %s] child %d started", pool.cfg.name.c_str(), reply.pid);
        if (auto early = early_exits_.find(reply.pid); early != early_exits_.end()) {
            int status = early->second; // it already exited: account for it now
            early_exits_.erase(early);
            on_worker_exit(w, status);
            workers_.erase(reply.pid);
            maybe_ready();
            maybe_exit();
            return;
        }
    }
    maybe_ready();
}

// php-fpm counts a child as active from its fork until it first waits for a
// request, so "max active processes" is at least 1 once a worker started.
void Master::count_new_worker_active(size_t index) {
    PoolBoard& board = scoreboard_.pool(index);
    int active = 1;
    for (auto& [pid, w] : workers_)
        if (w.pool == index && !w.status &&
            scoreboard_.slot(w.slot).state.load() > static_cast<int>(WorkerState::Accepting))
            ++active;
    int seen = board.max_active.load();
    while (active > seen && !board.max_active.compare_exchange_weak(seen, active)) {
    }
}

// Start-up ends when every pool's zygote runs and its first workers exist. An
// ondemand pool has no first workers: its socket listens already, and a
// connection that comes before its zygote is up waits in the backlog, so it
// does not hold back the others (129 ondemand pools: php-fpm is ready at once).
void Master::maybe_ready() {
    if (state_ != State::Starting) return;
    for (auto& p : pools_)
        if ((!p.zygote_ready && p.cfg.pm != config::PmStyle::Ondemand) || p.pending_spawns > 0)
            return;
    state_ = State::Running;
    ZLOG_NOTICE("ready to handle connections");
    ZLOG_NOTICE("systemd monitor interval set to %dms", cfg_.global.systemd_interval * 1000);
    notify_parent(true);
    if (!systemd_heartbeat_ &&
        systemd_notify::ready(*this, cfg_.global.systemd_interval, systemd_state_)) {
        systemd_heartbeat_ =
            make_event(base_.get(), -1, EV_PERSIST, [this](evutil_socket_t, short) {
                systemd_notify::report_status(*this, systemd_state_);
            });
        uint64_t us = systemd_state_.interval_us;
        timeval tv = {static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
        systemd_heartbeat_->add(&tv);
    }
}

namespace {

std::unique_ptr<OutputPipe> make_pipe(const char* name, int& write_end) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) return nullptr;
    auto p = std::make_unique<OutputPipe>();
    p->fd.reset(fds[0]);
    p->stream_name = name;
    write_end = fds[1];
    return p;
}

bool send_spawn(int ctl, const zygote::SpawnCommand& cmd, const int* fds, int nfds) {
    return net::send_with_fds(ctl, &cmd, sizeof cmd, fds, static_cast<size_t>(nfds), 0);
}

} // namespace

void Master::request_spawn(size_t index, bool status_worker, bool replacement) {
    PoolRuntime& pool = pools_[index];
    if (!pool.zygote_ready || !pool.zygote_ctl) return;
    uint32_t slot = status_worker ? scoreboard_.pool(index).status_slot : free_slot(index);
    if (slot == UINT32_MAX) return;
    if (cfg_.global.process_max > 0) { // process.max counts every pool's workers
        size_t running = workers_.size();
        for (auto& p : pools_)
            running += static_cast<size_t>(p.pending_spawns);
        if (running >= static_cast<size_t>(cfg_.global.process_max)) {
            if (!process_max_warned_)
                ZLOG_WARNING("The maximum number of processes has been reached. Please review your "
                             "configuration and consider raising 'process.max'");
            process_max_warned_ = true;
            return;
        }
        process_max_warned_ = false;
    }
    scoreboard_.slot(slot).quit.store(false); // before the worker exists, so no stop is lost
    scoreboard_.slot(slot).over_memory.store(0);
    zygote::SpawnCommand cmd{slot, status_worker ? zygote::kStatusWorker : 0u};
    int pipe_ends[2] = {-1, -1};
    int fds[zygote::kMaxSpawnFds];
    int nfds = 0;
    std::unique_ptr<OutputPipe> out, err;
    if (pool.cfg.catch_workers_output) {
        out = make_pipe("stdout", pipe_ends[0]);
        err = make_pipe("stderr", pipe_ends[1]);
        if (out && err) {
            cmd.fds |= zygote::kOutputFds;
            fds[nfds++] = pipe_ends[0];
            fds[nfds++] = pipe_ends[1];
        }
    }
    if (pool.access_log_fd) {
        cmd.fds |= zygote::kAccessLogFd;
        fds[nfds++] = pool.access_log_fd.get();
    }
    if (pool.slowlog_fd) {
        cmd.fds |= zygote::kSlowlogFd;
        fds[nfds++] = pool.slowlog_fd.get();
    }
    bool sent = send_spawn(pool.zygote_ctl.get(), cmd, fds, nfds);
    for (int fd : pipe_ends)
        if (fd >= 0) close(fd);
    if (!sent) {
        ZLOG_SYSERROR("[pool %s] unable to ask the zygote for a worker", pool.cfg.name.c_str());
        return;
    }
    pool.slot_busy[slot - scoreboard_.pool(index).first_slot] = true;
    pool.pending_spawns++;
    pool.pending_pipes[slot] = {std::move(out), std::move(err)};
    if (replacement) pool.announced_spawns.insert(slot);
}

} // namespace lowphp::master
