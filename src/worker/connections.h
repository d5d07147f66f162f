// Where a worker's next FastCGI connection comes from: its own kept-alive
// connection, the pool's listening socket, or the pool's handoff queue (kept
// connections that another worker parked and nginx has written on since).
#pragma once

#include <csignal>
#include <sys/epoll.h>

#include "lowphp/net.h"
#include "lowphp/unique_fd.h"

namespace lowphp::worker {

class ConnectionSource {
  public:
    ConnectionSource(int listen_fd, int handoff_fd, int park_fd, const std::string& allowed_clients,
                     bool inet);
    bool ok() const { return static_cast<bool>(epoll_); }

    // Blocks (signals in `mask` deliverable) until a connection has work.
    // Returns its fd, or -1 when `stop` became true. `accepted` tells whether it
    // is a fresh connection from the listening socket.
    int next(const sigset_t& mask, volatile sig_atomic_t& stop, bool& accepted);

    // The connection just served stays open (FCGI_KEEP_CONN): it becomes this
    // worker's home until the worker takes other work, then it is parked.
    void keep(int fd);
    // The connection `fd` was closed: it is no longer the home.
    void forget(int fd) {
        if (fd == home_) home_ = -1;
    }
    // Give the home connection away (before serving another one, or at exit).
    void park_home();
    // Give away the connection being served, whose request is answered while
    // its script runs on (fastcgi_finish_request on a kept connection).
    void release(int fd);
    int home() const { return home_; }

  private:
    int take_home();
    int take_next(const struct epoll_event* events, int n, bool& accepted);
    int accept_one();
    int receive_handoff();
    void watch_home(int fd);
    void give_away(int fd);

    int listen_fd_, handoff_fd_, park_fd_;
    UniqueFd epoll_;
    int home_ = -1;
    unsigned last_turn_ = 0; // the source served last (see take_next)
    net::AllowedClients allowed_;
};

} // namespace lowphp::worker
