// A worker never sits on an idle kept connection while work waits elsewhere,
// and never leaves a request waiting long on an idle connection while it
// serves another one: it watches all its kept connections with the listening
// socket and the handoff queue, serving whichever has work, and its watching
// thread passes on a request that waited a tick while it was busy
// (KeptConnections). php-fpm pins a worker to each kept connection instead,
// which leaves new connections waiting in the backlog (p99 ~ 1 s).
#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connections.h"
#include "lowphp/fd_passing.h"
#include "lowphp/log.h"
#include "lowphp/scoreboard.h"

namespace lowphp::worker {
namespace {

constexpr uint64_t kListen = 1, kHandoff = 2, kWakeup = 4, kRoute = 8, kNudge = 16;

bool add(int epfd, int fd, uint64_t tag, uint32_t extra) {
    struct epoll_event ev {};
    ev.events = EPOLLIN | extra;
    ev.data.u64 = tag;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0;
}

} // namespace

ConnectionSource::ConnectionSource(int listen_fd, int handoff_fd, int queue_fd, int park_fd,
                                   const std::string& allowed_clients, bool inet,
                                   std::function<bool()> someone_idle)
    : listen_fd_(listen_fd), handoff_fd_(handoff_fd), park_fd_(park_fd),
      epoll_(epoll_create1(EPOLL_CLOEXEC)), kept_(epoll_.get()),
      allowed_(inet ? allowed_clients : "") {
    // EPOLLEXCLUSIVE: one idle worker wakes per new connection, not all of them.
    if (!epoll_ || !add(epoll_.get(), listen_fd_, kListen, EPOLLEXCLUSIVE) ||
        (handoff_fd_ >= 0 && !add(epoll_.get(), handoff_fd_, kHandoff, EPOLLEXCLUSIVE))) {
        ZLOG_SYSERROR("unable to set up the worker's event queue");
        epoll_.reset();
        return;
    }
    if (queue_fd >= 0 && park_fd >= 0) {
        idle_ =
            std::make_unique<IdleConnections>(queue_fd, park_fd, kept_, std::move(someone_idle));
        if (!idle_->start()) idle_.reset();
    }
}

bool ConnectionSource::set_routes(int own_queue, int other_queue) {
    route_fd_ = own_queue;
    route_send_fd_ = other_queue;
    if (add(epoll_.get(), route_fd_, kRoute, EPOLLEXCLUSIVE)) return true;
    ZLOG_SYSERROR("unable to watch the worker.match queue");
    return false;
}

// The other kind's queue is read by that kind's workers only. While it is
// full (that kind busy or still booting), this waits a moment for room, then
// leaves the connection with the master, which hands it on: never dropped.
void ConnectionSource::route(int fd) {
    kept_.remove(fd);
    for (int tries = 0; tries < 20; ++tries) {
        if (net::send_fd(route_send_fd_, fd)) {
            close(fd);
            return;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) break;
        struct pollfd room = {route_send_fd_, POLLOUT, 0};
        poll(&room, 1, 10);
    }
    park_with_master(park_fd_, fd);
}

void ConnectionSource::wait_for_rest(int fd, size_t waiting) {
    kept_.remove(fd);
    idle_->add_partial(fd, waiting);
}

void ConnectionSource::retire() {
    idle_.reset(); // stops its thread: the partial requests it holds go to the master
    for (int fd : kept_.take_all())
        park_with_master(park_fd_, fd);
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
        if (fd < 0 && ready_now(route_fd_)) fd = net::recv_fd(route_fd_);
        if (fd < 0 && ready_now(listen_fd_)) fd = accept_one();
        if (fd < 0) return;
        park_with_master(park_fd_, fd);
    }
}

bool ConnectionSource::ready_now(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
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

// The sources take turns: epoll reports one event per wait, and a source
// that stays ready (the listening socket, the queue) goes behind the others
// each time, so none waits behind another that stays busy; a kept connection
// is reported once per request (one shot). Returns -1 when another worker was
// faster, or for the wakeup.
int ConnectionSource::take(const struct epoll_event& event, bool& accepted) {
    uint64_t tag = event.data.u64;
    if (tag & KeptConnections::kTag) {
        int fd = static_cast<int>(tag & ~KeptConnections::kTag);
        return kept_.claim(fd) ? fd : -1;
    }
    if (tag == kHandoff) return receive_handoff();
    if (tag == kRoute) return net::recv_fd(route_fd_);
    if (tag == kNudge && on_nudge_) on_nudge_();
    if (tag != kListen) return -1;
    int fd = accept_one();
    accepted = fd >= 0;
    return fd;
}

bool ConnectionSource::watch_wakeup(int fd) {
    return add(epoll_.get(), fd, kWakeup, 0);
}

// Edge-triggered and never read: every write to the eventfd wakes each
// worker's epoll once, whichever worker it is.
bool ConnectionSource::watch_nudge(int fd, std::function<void()> on_nudge) {
    on_nudge_ = std::move(on_nudge);
    return add(epoll_.get(), fd, kNudge, EPOLLET);
}

// The epoll wait's timeout: none when something waits already, the idle
// timer's rest when armed (its clock starts at the first wait after a
// request), forever otherwise.
int ConnectionSource::wait_ms(bool waiting) {
    if (waiting) return 0;
    if (!idle_deadline_us_) return -1;
    uint64_t now = mono_us();
    if (idle_deadline_us_ == 1) idle_deadline_us_ = now + static_cast<uint64_t>(idle_ms_) * 1000;
    return idle_deadline_us_ > now ? static_cast<int>((idle_deadline_us_ - now + 999) / 1000) : 0;
}

// A SIGQUIT between the check of `stop` and the wait is not lost: its handler
// also makes the wakeup eventfd readable.
int ConnectionSource::next(volatile sig_atomic_t& stop, bool& accepted) {
    struct epoll_event event;
    while (!stop) {
        accepted = false;
        // Idle from here: a connection the watching thread finds from now on
        // it re-arms, for the wait below.
        kept_.set_busy(false);
        // What the watching thread found ready while this worker was busy
        // takes turns with the epoll's sources: served first every time, it
        // left new connections in the backlog for a second under load.
        bool waiting = kept_.has_ready();
        if (waiting && ready_turn_) {
            if (int fd = kept_.take_ready(); fd >= 0) return serving(fd, false);
        }
        int n = epoll_wait(epoll_.get(), &event, 1, wait_ms(waiting));
        if (n < 0) {
            if (errno == EINTR) continue;
            ZLOG_SYSERROR("epoll_wait() failed");
            return -1;
        }
        if (stop) return -1; // a kept connection's spent event: retire() parks it
        if (n == 0 && !waiting && idle_deadline_us_ && mono_us() >= idle_deadline_us_) {
            idle_deadline_us_ = 0;
            on_idle_();
            continue;
        }
        if (int fd = n == 1 ? take(event, accepted) : -1; fd >= 0) return serving(fd, true);
        if (int fd = waiting ? kept_.take_ready() : -1; fd >= 0) return serving(fd, false);
    }
    return -1;
}

// The worker starts serving `fd`: its watching thread ticks again if it
// slept, and the other kind of source goes first next time.
int ConnectionSource::serving(int fd, bool from_epoll) {
    ready_turn_ = from_epoll;
    // Armed from the end of this request: next() is called after it.
    idle_deadline_us_ = idle_ms_ > 0 ? 1 : 0;
    if (kept_.set_busy(true) && idle_) idle_->wake();
    return fd;
}

} // namespace lowphp::worker
