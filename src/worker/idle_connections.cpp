// Why a thread in the worker rather than the master: the master may be busy
// or stopped, and each pass through it cost two descriptor passes, a
// libevent add/remove, a MSG_PEEK and two master wakeups. Why ticks rather
// than a wakeup per request: nginx writes its next request on a connection
// the worker keeps while that worker is still finishing the last one; woken
// at once, the thread passed almost every request to another worker (a
// wakeup, epoll_ctl twice, a descriptor pass and a close each: 17% more CPU
// per request than php-fpm on hello.php). Waiting a tick lets the owner take
// it itself, which it does almost always.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "idle_connections.h"
#include "lowphp/fd_passing.h"
#include "lowphp/log.h"
#include "lowphp/scoreboard.h"

namespace lowphp::worker {
namespace {

constexpr uint64_t kStop = UINT64_MAX;      // the wake_ eventfd's tag
constexpr uint64_t kNudge = UINT64_MAX - 1; // the nudge_ eventfd's tag
// How long a request waits on a kept connection of a busy worker before it
// goes to another worker: between one and two ticks. Shorter ticks cost the
// busy worker CPU (a tick of 1 ms: +10 us per request on the json page).
// While ticks find nothing waiting, they space out up to kLongestTickUs: a
// worker sleeping 20 ms in a script was woken five times per request.
constexpr uint64_t kTickUs = 4000, kLongestTickUs = 16000;
constexpr uint64_t kPartial = 1ull << 62; // tag bit: a partial request (add_partial)

} // namespace

// A worker leaving with hundreds of kept connections fills the channel
// faster than the master empties it: it waits for room (a second at most)
// rather than dropping a connection nginx has written on.
void park_with_master(int park_fd, int fd) {
    bool parked = false;
    for (int tries = 0; park_fd >= 0 && !parked && tries < 100; ++tries) {
        parked = net::send_fd(park_fd, fd);
        if (parked || (errno != EAGAIN && errno != EWOULDBLOCK)) break;
        struct pollfd room = {park_fd, POLLOUT, 0};
        poll(&room, 1, 10);
    }
    if (!parked) shutdown(fd, SHUT_RDWR);
    close(fd);
}

IdleConnections::IdleConnections(int queue_fd, int park_fd, KeptConnections& kept,
                                 std::function<bool()> someone_idle)
    : queue_fd_(queue_fd), park_fd_(park_fd), kept_(kept), someone_idle_(std::move(someone_idle)),
      epoll_(epoll_create1(EPOLL_CLOEXEC)), wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      nudge_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

bool IdleConnections::start() {
    struct epoll_event ev {
    }, nudge{};
    ev.events = nudge.events = EPOLLIN;
    ev.data.u64 = kStop;
    nudge.data.u64 = kNudge;
    if (!epoll_ || !wake_ || !nudge_ ||
        epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) < 0 ||
        epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, nudge_.get(), &nudge) < 0) {
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

void IdleConnections::wake() {
    uint64_t one = 1;
    (void)!write(nudge_.get(), &one, sizeof one);
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
        hand_over(fd); // a worker judges again (a half-closed request is served as it is)
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
        int timeout = kept_.may_sleep() ? -1 : static_cast<int>(tick_us_ / 1000);
        int n = epoll_wait(epoll_.get(), events, 16, timeout);
        if (n < 0 && errno != EINTR) {
            ZLOG_SYSERROR("epoll_wait() failed on idle kept connections");
            return;
        }
        for (int i = 0; i < n; ++i) {
            uint64_t tag = events[i].data.u64;
            if (tag == kStop) return;
            if (tag == kNudge) {
                uint64_t count;
                (void)!read(nudge_.get(), &count, sizeof count);
                tick_us_ = kTickUs;
            } else {
                more_arrived(static_cast<int>(tag & ~kPartial), events[i].events);
            }
        }
        tick();
    }
}

void IdleConnections::tick() {
    uint64_t now = mono_us();
    if (now - last_tick_us_ < tick_us_) return;
    last_tick_us_ = now;
    bool found = false;
    for (int fd : kept_.overdue(someone_idle_, found))
        pass_on(fd);
    tick_us_ = found ? kTickUs : std::min(tick_us_ * 2, kLongestTickUs);
}

// The request that arrived on a partial connection is whole enough (or the
// client closed): it leaves this thread's epoll for a worker.
void IdleConnections::hand_over(int fd) {
    // Out of the epoll before the close: the descriptor in flight keeps the
    // connection open, and with it this registration.
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    forget(fd);
    pass_on(fd);
}

// To the pool's handoff queue, unless nginx closed it without a request (a
// request written before a half-close is served). The queue is full only
// when every worker is far behind: the master holds it then and retries.
void IdleConnections::pass_on(int fd) {
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        close(fd);
        return;
    }
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
