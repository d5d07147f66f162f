// The idle kept-alive connections a worker holds stay in its own epoll, one
// shot each: when nginx writes on one, the worker serves it on its next turn,
// without a descriptor pass. While the worker is busy, its watching thread
// (IdleConnections) looks every tick: a request that has waited a whole tick
// goes to the pool's handoff queue, so it never waits behind a slow script.
// This is what keeps keep-alive's CPU per request at php-fpm's level without
// php-fpm's pinning (where a request waits for its worker's whole script).
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

namespace lowphp::worker {

class KeptConnections {
  public:
    // The epoll tag of a kept connection: this bit and its fd.
    static constexpr uint64_t kTag = 1ull << 40;

    explicit KeptConnections(int epoll_fd) : epoll_(epoll_fd) {}

    // Main thread.
    // After its request: watched again (false: it could not be, and is closed).
    bool keep(int fd);
    // Its one-shot event came to the main thread: false if it is not ours now.
    bool claim(int fd);
    // One the watching thread found ready and nobody took yet, or -1.
    int take_ready();
    bool has_ready();
    // Closed after its request (a connection not kept).
    void forget(int fd);
    // Leaves the epoll: from now on someone else watches it.
    void remove(int fd);
    // At exit: every connection held, out of the epoll, for the master.
    std::vector<int> take_all();
    // Around each wait for work; true when the watching thread sleeps and
    // must be told that ticks are due again.
    bool set_busy(bool busy);

    // Watching thread, every tick while the worker is busy: those found ready
    // at the previous tick and still waiting, out of the epoll, to pass on;
    // none while `someone_idle` says no other worker would take them (this
    // one takes them when it is done). `found`: whether this tick passed
    // on or newly found a request.
    std::vector<int> overdue(const std::function<bool()>& someone_idle, bool& found);
    // Before it sleeps without ticking: false if the worker is busy after all.
    bool may_sleep();

  private:
    enum class State { Watched, Ready, Serving };
    bool arm(int fd, int op);
    bool collect_ready(); // one-shot events the main thread did not take; true if any

    int epoll_;
    std::mutex mutex_;
    std::map<int, State> state_; // a map: its code is bound in the zygote already
    std::deque<int> ready_;
    std::atomic<bool> busy_{false}, sleeping_{false};
};

} // namespace lowphp::worker
