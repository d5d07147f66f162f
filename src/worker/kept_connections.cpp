// See kept_connections.h. The one-shot registration is what makes a connection
// belong to exactly one thread at a time: its event goes to whichever of the
// two waits on the epoll first, and nobody else sees it until it is re-armed.
#include <sys/epoll.h>
#include <unistd.h>

#include "kept_connections.h"
#include "lowphp/log.h"

namespace lowphp::worker {

// Watched for its next request, one shot (`op`: ADD, or MOD once its shot is spent).
bool KeptConnections::arm(int fd, int op) {
    struct epoll_event ev {};
    // RDHUP: nginx closing an idle connection is told apart without a read.
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
    ev.data.u64 = kTag | static_cast<uint64_t>(fd);
    return epoll_ctl(epoll_, op, fd, &ev) == 0;
}

bool KeptConnections::keep(int fd) {
    std::lock_guard lock(mutex_);
    auto it = state_.find(fd);
    bool registered = it != state_.end(); // served, so its one shot is spent
    if (!arm(fd, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD)) {
        ZLOG_SYSWARNING("epoll_ctl failed for a kept connection");
        if (registered) state_.erase(it);
        close(fd);
        return false;
    }
    state_[fd] = State::Watched;
    return true;
}

bool KeptConnections::claim(int fd) {
    std::lock_guard lock(mutex_);
    auto it = state_.find(fd);
    if (it == state_.end() || it->second != State::Watched) return false;
    it->second = State::Serving;
    return true;
}

int KeptConnections::take_ready() {
    std::lock_guard lock(mutex_);
    if (ready_.empty()) return -1;
    int fd = ready_.front();
    ready_.pop_front();
    state_[fd] = State::Serving;
    return fd;
}

bool KeptConnections::has_ready() {
    std::lock_guard lock(mutex_);
    return !ready_.empty();
}

void KeptConnections::forget(int fd) {
    std::lock_guard lock(mutex_);
    // Only the one being served: a connection set aside by
    // fastcgi_finish_request is watched again under the same number.
    auto it = state_.find(fd);
    if (it != state_.end() && it->second == State::Serving) state_.erase(it);
}

void KeptConnections::remove(int fd) {
    std::lock_guard lock(mutex_);
    if (state_.erase(fd)) epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
}

std::vector<int> KeptConnections::take_all() {
    std::vector<int> all;
    std::lock_guard lock(mutex_);
    for (auto& [fd, state] : state_) {
        epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
        all.push_back(fd);
    }
    state_.clear();
    ready_.clear();
    return all;
}

bool KeptConnections::set_busy(bool busy) {
    busy_.store(busy);
    return busy && sleeping_.exchange(false);
}

bool KeptConnections::may_sleep() {
    sleeping_.store(true);
    if (!busy_.load()) return true;
    sleeping_.store(false); // it became busy meanwhile: go on ticking
    return false;
}

std::vector<int> KeptConnections::overdue(const std::function<bool()>& someone_idle, bool& found) {
    std::vector<int> late;
    bool waiting;
    {
        std::lock_guard lock(mutex_);
        waiting = !ready_.empty();
    }
    if (waiting && someone_idle()) {
        std::lock_guard lock(mutex_);
        for (int fd : ready_) {
            epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
            state_.erase(fd);
            late.push_back(fd);
        }
        ready_.clear();
    }
    // Ticks stay short while requests come, not while they wait for a
    // free worker: only this worker can take them then.
    found = !late.empty();
    if (busy_.load() && collect_ready()) found = true;
    return late;
}

bool KeptConnections::collect_ready() {
    struct epoll_event events[16];
    int n = epoll_wait(epoll_, events, 16, 0);
    bool any = false;
    std::lock_guard lock(mutex_);
    for (int i = 0; i < n; ++i) {
        uint64_t tag = events[i].data.u64;
        if (!(tag & kTag)) continue; // the listening socket, the queue: the main thread's
        int fd = static_cast<int>(tag & ~kTag);
        auto it = state_.find(fd);
        if (it == state_.end() || it->second != State::Watched) continue;
        it->second = State::Ready;
        ready_.push_back(fd);
        any = true;
    }
    // The worker went idle meanwhile: it may wait in the epoll already,
    // where these would never show. They go back there (their requests
    // are still unread, so they are reported at once). The worker clears
    // busy before it looks at the ready ones, so one of the two sees them.
    if (busy_.load()) return any;
    for (int fd : ready_) {
        arm(fd, EPOLL_CTL_MOD);
        state_[fd] = State::Watched;
    }
    ready_.clear();
    return any;
}

} // namespace lowphp::worker
