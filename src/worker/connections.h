// Where a worker's next FastCGI connection comes from: its own kept-alive
// connection, the pool's listening socket, or the pool's handoff queue (kept
// connections that a worker gave up and nginx has written on since).
#pragma once

#include <csignal>
#include <memory>
#include <sys/epoll.h>

#include "idle_connections.h"
#include "lowphp/net.h"
#include "lowphp/unique_fd.h"

namespace lowphp::worker {

class ConnectionSource {
  public:
    // `queue_fd` is the sending end of the handoff queue (-1: idle kept
    // connections go to the master at once).
    ConnectionSource(int listen_fd, int handoff_fd, int queue_fd, int park_fd,
                     const std::string& allowed_clients, bool inet);
    bool ok() const { return static_cast<bool>(epoll_); }

    // `fd` (an eventfd the SIGQUIT handler writes) ends a wait in next().
    bool watch_wakeup(int fd);
    // Blocks until a connection has work. Returns its fd, or -1 when `stop`
    // became true. `accepted` tells whether it is a fresh connection from the
    // listening socket.
    int next(volatile sig_atomic_t& stop, bool& accepted);

    // The connection just served stays open (FCGI_KEEP_CONN): it becomes this
    // worker's home until the worker takes other work, then it is set aside
    // (IdleConnections watches it for the pool).
    void keep(int fd);
    // The connection `fd` was closed: it is no longer the home.
    void forget(int fd) {
        if (fd == home_) home_ = -1;
    }
    // Set the home connection aside (before serving another one).
    void park_home();
    // Set aside the connection being served, whose request is answered while
    // its script runs on (fastcgi_finish_request on a kept connection).
    void release(int fd);
    // Whether wait_for_rest() can take connections (the pool's workers can;
    // the status worker reads as it comes).
    bool waits_for_requests() const { return static_cast<bool>(idle_); }
    // The request on `fd` has begun to arrive (`waiting` bytes) but is not
    // whole: it waits for the rest without this worker.
    void wait_for_rest(int fd, size_t waiting);
    // At exit: every connection this worker holds goes to the master, and
    // so does what its last wakeup was for.
    void retire();
    int home() const { return home_; }

  private:
    void pass_on_wakeups();
    static bool ready_now(int fd);
    int take_home();
    int take_next(const struct epoll_event* events, int n, bool& accepted);
    int accept_one();
    int receive_handoff();
    void watch_home(int fd);
    void set_aside(int fd);

    int listen_fd_, handoff_fd_, park_fd_;
    std::unique_ptr<IdleConnections> idle_;
    UniqueFd epoll_;
    int home_ = -1;
    unsigned last_turn_ = 0; // the source served last (see take_next)
    net::AllowedClients allowed_;
};

} // namespace lowphp::worker
