// The pool holds the idle kept-alive FastCGI connections of workers that exit
// (and, in the master, across its re-execution on reload), and hands each to
// the pool's free workers when nginx writes a request on it. While a worker
// runs, its idle connections stay with it (worker/idle_connections.cpp) and
// reach here only if the pool's handoff queue is full.
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lowphp/fd_passing.h"
#include "lowphp/log.h"
#include "lowphp/pool.h"

namespace lowphp::pool {
namespace {

bool pair(UniqueFd& a, UniqueFd& b) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) return false;
    a.reset(sv[0]);
    b.reset(sv[1]);
    return true;
}

} // namespace

bool Pool::open_parking(const Channels* inherited) {
    if (inherited) {
        for (auto [fd, to] :
             {std::pair{inherited->park_rx, &park_rx_}, std::pair{inherited->park_tx, &park_tx_},
              std::pair{inherited->handoff_rx, &handoff_rx_},
              std::pair{inherited->handoff_tx, &handoff_tx_}}) {
            fcntl(fd, F_SETFD, FD_CLOEXEC);
            to->reset(fd);
        }
    } else if (!pair(park_rx_, park_tx_) || !pair(handoff_rx_, handoff_tx_)) {
        ZLOG_SYSERROR("[pool %s] failed to create the connection handoff sockets", name().c_str());
        return false;
    }
    park_ev_ = make_event(shared_.base, park_rx_.get(), EV_READ | EV_PERSIST,
                          [this](evutil_socket_t, short) { on_park(); });
    park_ev_->add();
    return open_routes(inherited);
}

// worker.match: a worker passes a request of the other kind to that kind's
// queue. The queues live as long as the handoff queue does (across reloads:
// the previous generation's workers may still pass connections on).
bool Pool::open_routes(const Channels* inherited) {
    int rx[2] = {inherited ? inherited->classic_rx : -1, inherited ? inherited->script_rx : -1};
    int tx[2] = {inherited ? inherited->classic_tx : -1, inherited ? inherited->script_tx : -1};
    bool routed = !cfg_.worker_match.empty();
    for (int kind = 0; kind < 2; ++kind) {
        if (rx[kind] >= 0) {
            fcntl(rx[kind], F_SETFD, FD_CLOEXEC);
            fcntl(tx[kind], F_SETFD, FD_CLOEXEC);
            route_rx_[kind].reset(rx[kind]);
            route_tx_[kind].reset(tx[kind]);
        } else if (routed && !pair(route_rx_[kind], route_tx_[kind])) {
            ZLOG_SYSERROR("[pool %s] failed to create the worker.match queues", name().c_str());
            return false;
        }
        if (routed || !route_rx_[kind]) continue;
        // No worker of this generation reads it: what the previous one still
        // passes on is parked here and handed to the pool's workers.
        route_drain_[kind] = make_event(shared_.base, route_rx_[kind].get(), EV_READ | EV_PERSIST,
                                        [this, kind](evutil_socket_t, short) {
                                            int fd;
                                            while ((fd = net::recv_fd(route_rx_[kind].get())) >= 0)
                                                watch_parked(fd);
                                        });
        route_drain_[kind]->add();
    }
    return true;
}

// A parked connection waits for nginx's next request on it (one shot).
void Pool::watch_parked(int fd) {
    EventPtr ev = make_event(shared_.base, fd, EV_READ, [this](evutil_socket_t f, short) {
        on_parked_readable(static_cast<int>(f));
    });
    ev->add();
    parked_[fd] = ParkedConnection{UniqueFd(fd), std::move(ev)};
}

// After a reload: a connection the previous image held for this pool.
void Pool::adopt_parked(int fd) {
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    watch_parked(fd);
}

void Pool::on_park() {
    int fd;
    while ((fd = net::recv_fd(park_rx_.get())) >= 0) {
        if (host_.stopping() && !host_.reloading()) {
            close(fd);
            continue;
        }
        watch_parked(fd);
    }
}

void Pool::on_parked_readable(int fd) {
    // Reloading: the workers taking handoffs are on their way out; the request
    // waits in the socket for the next generation (its event is re-armed then).
    if (host_.reloading()) return;
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    // EOF or error: nginx dropped its cached connection; a request: hand it over.
    if (n > 0 && !net::send_fd(handoff_tx_.get(), fd)) {
        wait_for_room(fd);
        return;
    }
    parked_.erase(fd); // nginx's EOF, or handed over: closed here
}

// The queue is full: every worker is busy and far behind. The connection
// waits for room in the queue; waiting for its readability again (immediate)
// made the master retry in a loop, at 100% CPU for as long as the workers
// stayed busy.
void Pool::wait_for_room(int fd) {
    waiting_for_room_.push_back(fd);
    if (!room_ev_)
        room_ev_ = make_event(shared_.base, handoff_tx_.get(), EV_WRITE,
                              [this](evutil_socket_t, short) { on_handoff_room(); });
    if (!room_ev_->pending(EV_WRITE)) room_ev_->add();
}

// Writable: the queue has drained to a quarter of its buffer.
void Pool::on_handoff_room() {
    if (host_.reloading()) return; // they go to the next generation, parked
    while (!waiting_for_room_.empty()) {
        int fd = waiting_for_room_.front();
        if (!net::send_fd(handoff_tx_.get(), fd)) {
            room_ev_->add();
            return;
        }
        waiting_for_room_.pop_front();
        parked_.erase(fd);
    }
}

// Everything parked or waiting for room in the handoff queue: kept open
// across execv (no close-on-exec), owned by the caller from here on. What
// the queue and the park channel hold stays there, for the next generation.
void Pool::release_parked(std::vector<int>& fds) {
    room_ev_.reset();
    waiting_for_room_.clear(); // they are parked too
    for (auto& [parked_fd, conn] : parked_) {
        conn.ev.reset();
        fcntl(parked_fd, F_SETFD, 0);
        fds.push_back(conn.fd.release());
    }
    parked_.clear();
}

// The channels stay open across execv: this generation's workers park on
// them until they leave, and the next generation serves the queue.
Channels Pool::release_channels() {
    park_ev_.reset();
    for (EventPtr& ev : route_drain_)
        ev.reset();
    for (const UniqueFd* fd : {&park_rx_, &park_tx_, &handoff_rx_, &handoff_tx_, &route_rx_[0],
                               &route_tx_[0], &route_rx_[1], &route_tx_[1]})
        if (*fd) fcntl(fd->get(), F_SETFD, 0);
    return Channels{park_rx_.get(),     park_tx_.get(),     handoff_rx_.get(),  handoff_tx_.get(),
                    route_rx_[0].get(), route_tx_[0].get(), route_rx_[1].get(), route_tx_[1].get()};
}

// Stopping: what workers park from now on is closed as it comes (on_park);
// the channel is still read, or a worker leaving with many kept connections
// would wait for room that never comes.
void Pool::close_parked() {
    room_ev_.reset();
    waiting_for_room_.clear(); // they are parked too
    parked_.clear();           // closes them
}

} // namespace lowphp::pool
