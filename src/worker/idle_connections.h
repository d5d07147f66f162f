// The worker's watching thread: while the worker is busy it passes on, every
// tick, the kept connections with a request that waited a whole tick
// (KeptConnections), and it watches connections whose request is still
// arriving (slow senders) until more comes. What it passes on goes to the
// pool's handoff queue, where any free worker takes it; one that nginx closed
// is closed. The master is not on that path.
#pragma once

#include <functional>
#include <mutex>
#include <pthread.h>
#include <unordered_map>
#include <vector>

#include "kept_connections.h"
#include "lowphp/unique_fd.h"

namespace lowphp::worker {

// Gives the idle connection `fd` to the master (`park_fd`), or closes it when
// there is no master to take it or it refuses: nginx sees the close on its
// idle cached connection and drops it.
void park_with_master(int park_fd, int fd);

class IdleConnections {
  public:
    // `queue_fd`: the sending end of the pool's handoff queue; `park_fd`: the
    // master's, for what the queue refuses and for what is left at exit;
    // `kept`: the worker's kept connections, looked at every tick;
    // `someone_idle`: whether another worker of the pool waits for work.
    IdleConnections(int queue_fd, int park_fd, KeptConnections& kept,
                    std::function<bool()> someone_idle);
    ~IdleConnections() { stop(); }
    IdleConnections(const IdleConnections&) = delete;
    IdleConnections& operator=(const IdleConnections&) = delete;

    // Starts the watching thread; false (and logged) if it cannot run.
    bool start();
    // The worker starts serving after it had nothing to do: ticks are due.
    void wake();
    // Takes over `fd`, whose request has begun to arrive (`waiting` bytes of
    // it are in the socket) but not all: it goes to the pool's handoff queue
    // when more arrives, so a slow client holds no worker meanwhile.
    void add_partial(int fd, size_t waiting);
    // Ends the thread and gives every connection still held to the master.
    void stop();

  private:
    static void* thread_main(void* self);
    void watch();
    void hand_over(int fd);
    void pass_on(int fd);
    void tick();
    void more_arrived(int fd, uint32_t events);
    void forget(int fd);

    int queue_fd_, park_fd_;
    KeptConnections& kept_;
    std::function<bool()> someone_idle_;
    UniqueFd epoll_, wake_, nudge_;
    uint64_t last_tick_us_ = 0, tick_us_ = 4000; // see kTickUs
    std::mutex mutex_;
    std::vector<int> held_;                   // what the thread owns (read by stop() after join)
    std::unordered_map<int, size_t> waiting_; // partial requests: bytes seen so far
    pthread_t thread_{};
    bool running_ = false;
};

} // namespace lowphp::worker
