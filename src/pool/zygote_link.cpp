// The pool's side of its zygote: fork it, ask it for workers, learn their
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
#include <utility>

#include "lowphp/fd_passing.h"
#include "lowphp/log.h"
#include "lowphp/pool.h"
#include "lowphp/zygote.h"

namespace lowphp::pool {
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

bool Pool::start_zygote() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        ZLOG_SYSERROR("[pool %s] failed to create the zygote control socket", name().c_str());
        return false;
    }
    pid_t master_pid = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        ZLOG_SYSERROR("[pool %s] fork() failed", name().c_str());
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
        close_all_but({sv[1], listener.fd.get(), log::fd(), park_tx_.get(), handoff_rx_.get(),
                       handoff_tx_.get(), status_listener.fd.get(), log::original_stderr_fd(),
                       route_rx_[0].get(), route_tx_[0].get(), route_rx_[1].get(),
                       route_tx_[1].get(), shared_.backends->nudge_fd(index_)});
        zygote::Params p;
        p.config = shared_.config;
        p.pool_index = index_;
        p.ini = shared_.ini;
        p.listen_fd = listener.fd.get();
        p.status_listen_fd = status_listener.fd.get();
        p.control_fd = sv[1];
        p.master_pid = master_pid;
        p.park_fd = park_tx_.get();
        p.handoff_fd = handoff_rx_.get();
        p.handoff_send_fd = handoff_tx_.get();
        for (int kind = 0; kind < 2; ++kind) {
            p.route_fd[kind] = route_rx_[kind].get();
            p.route_send_fd[kind] = route_tx_[kind].get();
        }
        p.scoreboard = shared_.scoreboard;
        p.backends = shared_.backends;
        p.run_as_root = shared_.run_as_root;
        p.identity = &identity_;
        zygote::run(p);
    }
    close(sv[1]);
    zygote_pid_ = pid;
    zygote_started_us_ = mono_us();
    zygote_ready_ = false;
    zygote_ctl_.reset(sv[0]);
    zygote_ev_ = make_event(shared_.base, sv[0], EV_READ | EV_PERSIST,
                            [this](evutil_socket_t, short) { on_zygote_message(); });
    zygote_ev_->add();
    return true;
}

void Pool::on_zygote_message() {
    zygote::SpawnReply reply;
    ssize_t n = recv(zygote_ctl_.get(), &reply, sizeof reply, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        // The zygote is gone; its exit is handled when it is reaped.
        zygote_ev_.reset();
        zygote_ctl_.reset();
        return;
    }
    if (n != sizeof reply) return;
    if (reply.slot == zygote::kReadySlot) {
        if (reply.pid < 0) {
            ZLOG_ERROR("[pool %s] PHP start-up failed in the pool's zygote", name().c_str());
            if (host_.starting()) host_.start_failed();
            return;
        }
        zygote_ready_ = true;
        // restart(): each old worker leaves after its request and is replaced
        // from this zygote as it goes.
        if (std::exchange(replace_workers_, false)) quit_workers();
        spawn_initial();
        return;
    }
    pending_spawns_--;
    if (reply.pid > 0) {
        on_worker_forked(reply.pid, reply.slot);
    } else {
        pending_pipes_.erase(reply.slot);
        announced_spawns_.erase(reply.slot);
        errno = -reply.pid;
        ZLOG_SYSERROR("[pool %s] fork() failed", name().c_str());
        slot_busy_[reply.slot - board().first_slot] = reply.slot == board().status_slot;
    }
    host_.pool_ready();
}

void Pool::on_worker_forked(pid_t pid, uint32_t slot_index) {
    auto pipes = std::move(pending_pipes_[slot_index]);
    pending_pipes_.erase(slot_index);
    bool announce = announced_spawns_.erase(slot_index) > 0;
    Worker& w = workers_[pid];
    w.pid = pid;
    w.slot = slot_index;
    w.status = slot_index == board().status_slot;
    w.started_us = mono_us();
    w.out = std::move(pipes.first);
    w.err = std::move(pipes.second);
    watch_output(w);
    if (!w.status) count_new_worker_active();
    // fpm_children_make's is_debug: only a replacement is announced; the
    // initial workers and those the pool's pm adds are logged at DEBUG.
    if (announce)
        ZLOG_NOTICE("[pool %s] child %d started", name().c_str(), pid);
    else
        ZLOG_DEBUG("[pool %s] child %d started", name().c_str(), pid);
    if (std::optional<int> status = host_.take_early_exit(pid)) {
        on_worker_exit(w, *status); // it already exited: account for it now
        workers_.erase(pid);
        host_.child_gone();
    }
}

// php-fpm counts a child as active from its fork until it first waits for a
// request, so "max active processes" is at least 1 once a worker started.
void Pool::count_new_worker_active() {
    int active = 1;
    for (auto& [pid, w] : workers_)
        if (!w.status && !w.retiring &&
            slot(w.slot).state.load() > static_cast<int>(WorkerState::Accepting))
            ++active;
    int seen = board().max_active.load();
    while (active > seen && !board().max_active.compare_exchange_weak(seen, active)) {
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

} // namespace

uint32_t Pool::request_spawn(bool status_worker, bool replacement) {
    if (!zygote_ready_ || !zygote_ctl_) return UINT32_MAX;
    uint32_t slot_index = status_worker ? board().status_slot : free_slot();
    if (slot_index == UINT32_MAX || !host_.may_spawn()) return UINT32_MAX;
    slot(slot_index).quit.store(false); // before the worker exists, so no stop is lost
    slot(slot_index).over_memory.store(0);
    zygote::SpawnCommand cmd{slot_index, status_worker ? zygote::kStatusWorker : 0u};
    int pipe_ends[2] = {-1, -1};
    int fds[zygote::kMaxSpawnFds];
    size_t nfds = 0;
    std::unique_ptr<OutputPipe> out, err;
    if (cfg_.catch_workers_output) {
        out = make_pipe("stdout", pipe_ends[0]);
        err = make_pipe("stderr", pipe_ends[1]);
        if (out && err) {
            cmd.fds |= zygote::kOutputFds;
            fds[nfds++] = pipe_ends[0];
            fds[nfds++] = pipe_ends[1];
        }
    }
    if (access_log_fd_) {
        cmd.fds |= zygote::kAccessLogFd;
        fds[nfds++] = access_log_fd_.get();
    }
    if (slowlog_fd_) {
        cmd.fds |= zygote::kSlowlogFd;
        fds[nfds++] = slowlog_fd_.get();
    }
    bool sent = net::send_with_fds(zygote_ctl_.get(), &cmd, sizeof cmd, fds, nfds, 0);
    for (int fd : pipe_ends)
        if (fd >= 0) close(fd);
    if (!sent) {
        ZLOG_SYSERROR("[pool %s] unable to ask the zygote for a worker", name().c_str());
        return UINT32_MAX;
    }
    slot_busy_[slot_index - board().first_slot] = true;
    pending_spawns_++;
    pending_pipes_[slot_index] = {std::move(out), std::move(err)};
    if (replacement) announced_spawns_.insert(slot_index);
    return slot_index;
}

} // namespace lowphp::pool
