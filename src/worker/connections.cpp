// A worker never sits on an idle kept connection while work waits elsewhere,
// and never holds an idle connection while it serves another one: the idle one
// is parked with the master, which hands it to whichever worker is free once
// nginx sends a request on it. php-fpm pins a worker to each kept connection
// instead, which leaves new connections waiting in the backlog (p99 ~ 1 s).
#include <cerrno>
#include <cstring>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connections.h"
#include "lowphp/fd_passing.h"
#include "lowphp/log.h"

namespace lowphp::worker {
namespace {

constexpr uint64_t kListen = 1, kHandoff = 2, kHome = 3;

bool add(int epfd, int fd, uint64_t tag, uint32_t extra) {
    struct epoll_event ev {};
    ev.events = EPOLLIN | extra;
    ev.data.u64 = tag;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0;
}

} // namespace

ConnectionSource::ConnectionSource(int listen_fd, int handoff_fd, int park_fd,
                                   const std::string& allowed_clients, bool inet)
    : listen_fd_(listen_fd), handoff_fd_(handoff_fd), park_fd_(park_fd),
      epoll_(epoll_create1(EPOLL_CLOEXEC)), allowed_(inet ? allowed_clients : "") {
    // EPOLLEXCLUSIVE: one idle worker wakes per new connection, not all of them.
    if (!epoll_ || !add(epoll_.get(), listen_fd_, kListen, EPOLLEXCLUSIVE) ||
        (handoff_fd_ >= 0 && !add(epoll_.get(), handoff_fd_, kHandoff, EPOLLEXCLUSIVE))) {
        ZLOG_SYSERROR("unable to set up the worker's event queue");
        epoll_.reset();
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
    // Without a master to hold it (or if it refuses) the connection is closed:
    // nginx sees the close on its idle cached connection and drops it.
    if (park_fd_ < 0 || !net::send_fd(park_fd_, home_)) shutdown(home_, SHUT_RDWR);
    close(home_);
    home_ = -1;
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

int ConnectionSource::next(const sigset_t& mask, volatile sig_atomic_t& stop, bool& accepted) {
    struct epoll_event events[3];
    while (!stop) {
        int n = epoll_pwait(epoll_.get(), events, 3, -1, &mask);
        if (n < 0) {
            if (errno == EINTR) continue;
            ZLOG_SYSERROR("epoll_wait() failed");
            return -1;
        }
        // The home costs no handoff, so it goes first, but not twice in a row
        // while new or parked connections wait too: nginx reuses its most recent
        // cached connection at once, and a home always served first would let it
        // overtake them for as long as nginx keeps writing on it (php-fpm's
        // starvation, on a smaller scale: p99 0.1-1 s with 1 ms requests).
        bool home_ready = false, other_ready = false;
        for (int i = 0; i < n; ++i)
            (events[i].data.u64 == kHome ? home_ready : other_ready) = true;
        if (home_ready && !(other_ready && home_went_first_)) {
            home_went_first_ = other_ready;
            accepted = false;
            return take_home();
        }
        home_went_first_ = false;
        for (int i = 0; i < n; ++i) {
            if (events[i].data.u64 == kHome) continue;
            int fd = events[i].data.u64 == kHandoff ? receive_handoff() : accept_one();
            if (fd < 0) continue; // another worker was faster
            accepted = events[i].data.u64 == kListen;
            park_home();
            return fd;
        }
    }
    return -1;
}

} // namespace lowphp::worker
