// Why a thread in the worker rather than the master: nginx reuses its most
// recent idle connection, which is usually the one a worker just gave up to
// serve the next connection in line (~60% of keep-alive requests at
// saturation). Parked with the master, each such request cost two descriptor
// passes, a libevent add/remove, a MSG_PEEK and two master wakeups. Here it
// costs one pass and a wakeup of this thread; and the master, which may be
// busy or stopped, is not on the request's path.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "idle_connections.h"
#include "lowphp/fd_passing.h"
#include "lowphp/log.h"

namespace lowphp::worker {
namespace {

constexpr uint64_t kStop = UINT64_MAX;    // the wake_ eventfd's tag
constexpr uint64_t kPartial = 1ull << 62; // tag bit: a partial request (add_partial)

} // namespace

void park_with_master(int park_fd, int fd) {
    if (park_fd < 0 || !net::send_fd(park_fd, fd)) shutdown(fd, SHUT_RDWR);
    close(fd);
}

IdleConnections::IdleConnections(int queue_fd, int park_fd)
    : queue_fd_(queue_fd), park_fd_(park_fd), epoll_(epoll_create1(EPOLL_CLOEXEC)),
      wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

bool IdleConnections::start() {
    struct epoll_event ev {};
    ev.events = EPOLLIN;
    ev.data.u64 = kStop;
    if (!epoll_ || !wake_ || epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) < 0) {
        ZLOG_SYSERROR("unable to set up the idle connections' event queue");
        return false;
    }
    // Signals stay with the main thread (SIGQUIT must reach its epoll_pwait).
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&thread_, nullptr, thread_main, this);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (err != 0) {
        errno = err;
        ZLOG_SYSERROR("unable to start the idle connections' thread");
        return false;
    }
    running_ = true;
    return true;
}

void IdleConnections::add(int fd) {
    {
        std::lock_guard lock(mutex_);
        held_.push_back(fd);
    }
    struct epoll_event ev {};
    // RDHUP: nginx closing an idle connection is told apart without a read.
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = static_cast<uint64_t>(fd);
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) {
        ZLOG_SYSWARNING("epoll_ctl failed for an idle kept connection");
        forget(fd);
        park_with_master(park_fd_, fd);
    }
}

// Edge-triggered: woken when bytes arrive, not while the ones seen wait. The
// registration itself reports the fd at once if it is readable; what was
// already seen is told apart by its count (`waiting`, from the peek that found
// the request partial, so bytes that came since are not missed).
void IdleConnections::add_partial(int fd, size_t waiting) {
    {
        std::lock_guard lock(mutex_);
        held_.push_back(fd);
        waiting_[fd] = waiting;
    }
    struct epoll_event ev {};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = static_cast<uint64_t>(fd) | kPartial;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) {
        ZLOG_SYSWARNING("epoll_ctl failed for a connection whose request is arriving");
        forget(fd);
        park_with_master(park_fd_, fd);
    }
}

void IdleConnections::more_arrived(int fd, uint32_t events) {
    int now = 0;
    if (ioctl(fd, FIONREAD, &now) < 0) now = 0;
    size_t seen;
    {
        std::lock_guard lock(mutex_);
        seen = waiting_[fd];
    }
    bool hung_up = events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    if (static_cast<size_t>(now) > seen || (hung_up && now > 0)) {
        hand_over(fd, events); // a worker judges again (a half-closed request is served as it is)
    } else if (hung_up) {
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
        forget(fd); // the client gave up before its request was whole
        close(fd);
    }
}

void IdleConnections::forget(int fd) {
    std::lock_guard lock(mutex_);
    waiting_.erase(fd);
    auto it = std::find(held_.begin(), held_.end(), fd);
    if (it != held_.end()) held_.erase(it);
}

void* IdleConnections::thread_main(void* self) {
    static_cast<IdleConnections*>(self)->watch();
    return nullptr;
}

void IdleConnections::watch() {
    struct epoll_event events[16];
    for (;;) {
        int n = epoll_wait(epoll_.get(), events, 16, -1);
        if (n < 0 && errno != EINTR) {
            ZLOG_SYSERROR("epoll_wait() failed on idle kept connections");
            return;
        }
        for (int i = 0; i < n; ++i) {
            uint64_t tag = events[i].data.u64;
            if (tag == kStop) return;
            if (tag & kPartial)
                more_arrived(static_cast<int>(tag & ~kPartial), events[i].events);
            else
                hand_over(static_cast<int>(tag), events[i].events);
        }
    }
}

// A request arrived (or nginx closed the connection): it leaves this worker.
void IdleConnections::hand_over(int fd, uint32_t events) {
    bool request = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        // Closed; unless a request was written before the close (half-close).
        char byte;
        request = (events & EPOLLIN) && recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
    }
    // Out of the epoll before the close: the descriptor in flight keeps the
    // connection open, and with it this registration.
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    forget(fd);
    if (!request) {
        close(fd);
        return;
    }
    // The queue is full only when every worker is far behind: the master
    // holds it then and retries.
    if (net::send_fd(queue_fd_, fd))
        close(fd);
    else
        park_with_master(park_fd_, fd);
}

void IdleConnections::stop() {
    if (running_) {
        uint64_t one = 1;
        (void)!write(wake_.get(), &one, sizeof one);
        pthread_join(thread_, nullptr);
        running_ = false;
    }
    std::vector<int> left;
    {
        std::lock_guard lock(mutex_);
        left.swap(held_);
        waiting_.clear();
    }
    for (int fd : left) {
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
        park_with_master(park_fd_, fd);
    }
}

} // namespace lowphp::worker
