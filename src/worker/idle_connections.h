// A worker's idle kept-alive connections while it serves another one. A thread
// of the worker watches them and, the moment nginx writes a request on one,
// puts it on the pool's handoff queue, where any free worker takes it; one that
// nginx closes is closed. The master is not on that path.
#pragma once

#include <mutex>
#include <pthread.h>
#include <unordered_map>
#include <vector>

#include "lowphp/unique_fd.h"

namespace lowphp::worker {

// Gives the idle connection `fd` to the master (`park_fd`), or closes it when
// there is no master to take it or it refuses: nginx sees the close on its
// idle cached connection and drops it.
void park_with_master(int park_fd, int fd);

class IdleConnections {
  public:
    // `queue_fd`: the sending end of the pool's handoff queue; `park_fd`: the
    // master's, for what the queue refuses and for what is left at exit.
    IdleConnections(int queue_fd, int park_fd);
    ~IdleConnections() { stop(); }
    IdleConnections(const IdleConnections&) = delete;
    IdleConnections& operator=(const IdleConnections&) = delete;

    // Starts the watching thread; false (and logged) if it cannot run.
    bool start();
    // Takes `fd` over: from now on only the thread touches it.
    void add(int fd);
    // Takes over `fd`, whose request has begun to arrive (`waiting` bytes of
    // it are in the socket) but not all: it goes to the pool's handoff queue
    // when more arrives, so a slow client holds no worker meanwhile.
    void add_partial(int fd, size_t waiting);
    // Ends the thread and gives every connection still held to the master.
    void stop();

  private:
    static void* thread_main(void* self);
    void watch();
    void hand_over(int fd, uint32_t events);
    void more_arrived(int fd, uint32_t events);
    void forget(int fd);

    int queue_fd_, park_fd_;
    UniqueFd epoll_, wake_;
    std::mutex mutex_;
    std::vector<int> held_;                   // what the thread owns (read by stop() after join)
    std::unordered_map<int, size_t> waiting_; // partial requests: bytes seen so far
    pthread_t thread_{};
    bool running_ = false;
};

} // namespace lowphp::worker
