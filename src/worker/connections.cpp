// A worker never sits on an idle kept connection while work waits elsewhere,
// and never leaves a request waiting on an idle connection while it serves
// another one: the idle one is set aside (IdleConnections), which hands it to
// whichever worker is free once nginx sends a request on it. php-fpm pins a
// worker to each kept connection instead, which leaves new connections waiting
// in the backlog (p99 ~ 1 s).
#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connections.h"
#include "lowphp/fd_passing.h"
#include "lowphp/log.h"

namespace lowphp::worker {
namespace {

constexpr uint64_t kListen = 1, kHandoff = 2, kHome = 3, kWakeup = 4;

bool add(int epfd, int fd, uint64_t tag, uint32_t extra) {
    struct epoll_event ev {};
    ev.events = EPOLLIN | extra;
    ev.data.u64 = tag;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0;
}

} // namespace

ConnectionSource::ConnectionSource(int listen_fd, int handoff_fd, int queue_fd, int park_fd,
                                   const std::string& allowed_clients, bool inet)
    : listen_fd_(listen_fd), handoff_fd_(handoff_fd), park_fd_(park_fd),
      epoll_(epoll_create1(EPOLL_CLOEXEC)), allowed_(inet ? allowed_clients : "") {
    // EPOLLEXCLUSIVE: one idle worker wakes per new connection, not all of them.
    if (!epoll_ || !add(epoll_.get(), listen_fd_, kListen, EPOLLEXCLUSIVE) ||
        (handoff_fd_ >= 0 && !add(epoll_.get(), handoff_fd_, kHandoff, EPOLLEXCLUSIVE))) {
        ZLOG_SYSERROR("unable to set up the worker's event queue");
        epoll_.reset();
        return;
    }
    // Without the thread, idle connections are parked with the master.
    if (queue_fd >= 0 && park_fd >= 0) {
        idle_ = std::make_unique<IdleConnections>(queue_fd, park_fd);
        if (!idle_->start()) idle_.reset();
    }
}

void ConnectionSource::watch_home(int fd) {
    home_ = fd;
    if (!add(epoll_.get(), fd, kHome, 0)) {
        ZLOG_SYSWARNING("epoll_ctl failed for a kept connection");
        close(fd);
        home_ = -1;
    }
}

void ConnectionSource::keep(int fd) {
    if (home_ == fd) return;
    if (home_ >= 0) park_home();
    watch_home(fd);
}

void ConnectionSource::park_home() {
    if (home_ < 0) return;
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, home_, nullptr);
    set_aside(home_);
    home_ = -1;
}

void ConnectionSource::release(int fd) {
    if (fd == home_)
        park_home();
    else
        set_aside(fd);
}

void ConnectionSource::wait_for_rest(int fd, size_t waiting) {
    if (fd == home_) {
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, home_, nullptr);
        home_ = -1;
    }
    idle_->add_partial(fd, waiting);
}

void ConnectionSource::retire() {
    idle_.reset(); // stops its thread: what it holds goes to the master
    park_home();   // and so does the home, now that idle_ is gone
    pass_on_wakeups();
}

// EPOLLEXCLUSIVE wakes one waiting worker per new connection or handoff. A
// worker woken just as it was told to stop took that wakeup with it: the
// connection would wait, while the others sleep, until the next one comes
// (seen at a reload, where the previous generation stops while the next one
// waits). What is ready now goes to the master, which hands it to a worker.
void ConnectionSource::pass_on_wakeups() {
    if (park_fd_ < 0) return; // pm.status_listen's worker: its successor sees the socket ready
    constexpr int kMostWakeups = 8; // as many as could have come in one wait
    for (int i = 0; i < kMostWakeups; ++i) {
        int fd = -1;
        if (ready_now(handoff_fd_)) fd = receive_handoff();
        if (fd < 0 && ready_now(listen_fd_)) fd = accept_one();
        if (fd < 0) return;
        park_with_master(park_fd_, fd);
    }
}

bool ConnectionSource::ready_now(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

void ConnectionSource::set_aside(int fd) {
    if (idle_)
        idle_->add(fd);
    else
        park_with_master(park_fd_, fd);
}

int ConnectionSource::take_home() {
    int fd = home_;
    // It stays registered: it is served now and usually kept again.
    return fd;
}

int ConnectionSource::accept_one() {
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC);
    if (fd < 0) return -1;
    if (!allowed_.allows(reinterpret_cast<sockaddr*>(&addr))) {
        ZLOG_ERROR("Connection disallowed: IP address '%s' has been dropped.",
                   net::AllowedClients::to_string(reinterpret_cast<sockaddr*>(&addr)).c_str());
        close(fd);
        return -1;
    }
    return fd;
}

int ConnectionSource::receive_handoff() {
    return net::recv_fd(handoff_fd_);
}

// The sources take turns (home, then parked, then new connections), so none
// waits behind another that stays ready. epoll cannot give that order: it
// reports level-triggered sources that stay ready in the same order every
// time, so under load a worker took the listening socket first on every call
// and kept connections handed over by the master waited until the load fell
// (p99 above one second with uploads). The home also must not go first every
// time: nginx reuses its most recent cached connection at once, and it would
// overtake both queues for as long as nginx keeps writing on it.
// Returns -1 when another worker was faster to every ready source.
int ConnectionSource::take_next(const struct epoll_event* events, int n, bool& accepted) {
    static constexpr uint64_t kTurns[] = {kHome, kHandoff, kListen};
    for (int step = 1; step <= 3; ++step) {
        uint64_t kind = kTurns[(last_turn_ + step) % 3];
        bool ready = false;
        for (int i = 0; i < n && !ready; ++i)
            ready = events[i].data.u64 == kind;
        if (!ready) continue;
        int fd = kind == kHome ? take_home() : kind == kHandoff ? receive_handoff() : accept_one();
        if (fd < 0) continue; // another worker was faster
        last_turn_ = (last_turn_ + step) % 3;
        accepted = kind == kListen;
        if (kind != kHome) park_home();
        return fd;
    }
    return -1;
}

bool ConnectionSource::watch_wakeup(int fd) {
    return add(epoll_.get(), fd, kWakeup, 0);
}

// A SIGQUIT between the check of `stop` and the wait is not lost: its handler
// also makes the wakeup eventfd readable.
int ConnectionSource::next(volatile sig_atomic_t& stop, bool& accepted) {
    struct epoll_event events[4];
    while (!stop) {
        int n = epoll_wait(epoll_.get(), events, 4, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            ZLOG_SYSERROR("epoll_wait() failed");
            return -1;
        }
        if (stop) return -1;
        if (int fd = take_next(events, n, accepted); fd >= 0) return fd;
    }
    return -1;
}

} // namespace lowphp::worker
