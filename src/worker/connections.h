// Where a worker's next FastCGI connection comes from: one of its own kept-alive
// connections, the pool's listening socket, or the pool's handoff queue (kept
// connections whose busy worker passed them on, and those the master held).
#pragma once

#include <csignal>
#include <functional>
#include <memory>
#include <sys/epoll.h>

#include "idle_connections.h"
#include "kept_connections.h"
#include "lowphp/net.h"
#include "lowphp/unique_fd.h"

namespace lowphp::worker {

class ConnectionSource {
  public:
    // `queue_fd` is the sending end of the handoff queue (-1: no watching
    // thread; the worker serves every connection it keeps itself, as the
    // pm.status_listen worker does).
    // `someone_idle`: whether another worker of the pool waits for work.
    ConnectionSource(int listen_fd, int handoff_fd, int queue_fd, int park_fd,
                     const std::string& allowed_clients, bool inet,
                     std::function<bool()> someone_idle);
    bool ok() const { return static_cast<bool>(epoll_); }

    // `fd` (an eventfd the SIGQUIT handler writes) ends a wait in next().
    bool watch_wakeup(int fd);
    // Per-site backends: `fd` (the pool's nudge eventfd) fires when another
    // worker waits for a connection this idle one may give back.
    bool watch_nudge(int fd, std::function<void()> on_nudge);
    // connections.idle_timeout: `on_idle` runs once when the worker has
    // waited `ms` for work since its last request.
    void set_idle_timer(int ms, std::function<void()> on_idle) {
        idle_ms_ = ms;
        on_idle_ = std::move(on_idle);
    }
    // Blocks until a connection has work. Returns its fd, or -1 when `stop`
    // became true. `accepted` tells whether it is a fresh connection from the
    // listening socket.
    int next(volatile sig_atomic_t& stop, bool& accepted);

    // The connection just served stays open (FCGI_KEEP_CONN): the worker
    // watches it for its next request (KeptConnections).
    void keep(int fd) { kept_.keep(fd); }
    // The connection `fd` was closed after its request.
    void forget(int fd) { kept_.forget(fd); }
    // The connection being served is answered while its script runs on
    // (fastcgi_finish_request on a kept connection): watched again at once.
    void release(int fd) { kept_.keep(fd); }
    // Whether wait_for_rest() can take connections (the pool's workers can;
    // the status worker reads as it comes).
    bool waits_for_requests() const { return static_cast<bool>(idle_); }
    // The request on `fd` has begun to arrive (`waiting` bytes) but is not
    // whole: it waits for the rest without this worker.
    void wait_for_rest(int fd, size_t waiting);
    // worker.match: connections for this worker's kind arrive on `own_queue`;
    // route() sends one of the other kind to `other_queue`.
    bool set_routes(int own_queue, int other_queue);
    // The connection `fd` (its request only peeked at) belongs to a worker of
    // the other kind.
    void route(int fd);
    // At exit: every connection this worker holds goes to the master, and
    // so does what its last wakeup was for.
    void retire();

  private:
    void pass_on_wakeups();
    static bool ready_now(int fd);
    int take(const struct epoll_event& event, bool& accepted);
    int accept_one();
    int receive_handoff();
    int serving(int fd, bool from_epoll);

    int listen_fd_, handoff_fd_, park_fd_;
    int route_fd_ = -1, route_send_fd_ = -1;
    UniqueFd epoll_;
    KeptConnections kept_; // in epoll_
    std::unique_ptr<IdleConnections> idle_;
    net::AllowedClients allowed_;
    bool ready_turn_ = true; // see next()
    std::function<void()> on_nudge_;
    int idle_ms_ = 0;
    uint64_t idle_deadline_us_ = 0; // 0: the idle timer is not armed
    std::function<void()> on_idle_;
    int wait_ms(bool waiting);
};

} // namespace lowphp::worker
