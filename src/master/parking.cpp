// The master holds the idle kept-alive FastCGI connections of workers that
// exit (and across its own re-execution on reload), and hands each to the
// pool's free workers when nginx writes a request on it. While a worker runs,
// its idle connections stay with it (worker/idle_connections.cpp) and reach
// here only if the pool's handoff queue is full.
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lowphp/fd_passing.h"
#include "lowphp/log.h"
#include "master_internal.h"

namespace lowphp::master {
namespace {

bool pair(UniqueFd& a, UniqueFd& b) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) return false;
    a.reset(sv[0]);
    b.reset(sv[1]);
    return true;
}

} // namespace

bool Master::open_parking(size_t index) {
    PoolRuntime& pool = pools_[index];
    if (!pair(pool.park_rx, pool.park_tx) || !pair(pool.handoff_rx, pool.handoff_tx)) {
        ZLOG_SYSERROR("[pool %s] failed to create the connection handoff sockets",
                      pool.cfg.name.c_str());
        return false;
    }
    pool.park_ev = make_event(base_.get(), pool.park_rx.get(), EV_READ | EV_PERSIST,
                              [this, index](evutil_socket_t, short) { on_park(index); });
    pool.park_ev->add();
    return true;
}

// A parked connection waits for nginx's next request on it (one shot).
void Master::watch_parked(size_t index, int fd) {
    EventPtr ev = make_event(base_.get(), fd, EV_READ, [this, index](evutil_socket_t f, short) {
        on_parked_readable(index, static_cast<int>(f));
    });
    ev->add();
    pools_[index].parked[fd] = ParkedConnection{UniqueFd(fd), std::move(ev)};
}

void Master::on_park(size_t index) {
    PoolRuntime& pool = pools_[index];
    int fd;
    while ((fd = net::recv_fd(pool.park_rx.get())) >= 0) {
        if (stopping() && state_ != State::Reloading) {
            close(fd);
            continue;
        }
        watch_parked(index, fd);
    }
}

void Master::on_parked_readable(size_t index, int fd) {
    PoolRuntime& pool = pools_[index];
    // Reloading: the workers taking handoffs are on their way out; the request
    // waits in the socket for the next generation (its event is re-armed then).
    if (state_ == State::Reloading) return;
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    // EOF or error: nginx dropped its cached connection; a request: hand it over.
    if (n > 0 && !net::send_fd(pool.handoff_tx.get(), fd)) {
        wait_for_room(index, fd);
        return;
    }
    pool.parked.erase(fd); // nginx's EOF, or handed over: closed here
}

// The queue is full: every worker is busy and far behind. The connection
// waits for room in the queue; waiting for its readability again (immediate)
// made the master retry in a loop, at 100% CPU for as long as the workers
// stayed busy.
void Master::wait_for_room(size_t index, int fd) {
    PoolRuntime& pool = pools_[index];
    pool.waiting_for_room.push_back(fd);
    if (!pool.room_ev)
        pool.room_ev =
            make_event(base_.get(), pool.handoff_tx.get(), EV_WRITE,
                       [this, index](evutil_socket_t, short) { on_handoff_room(index); });
    if (!pool.room_ev->pending(EV_WRITE)) pool.room_ev->add();
}

// Writable: the queue has drained to a quarter of its buffer.
void Master::on_handoff_room(size_t index) {
    PoolRuntime& pool = pools_[index];
    if (state_ == State::Reloading) return; // they go to the next generation, parked
    while (!pool.waiting_for_room.empty()) {
        int fd = pool.waiting_for_room.front();
        if (!net::send_fd(pool.handoff_tx.get(), fd)) {
            pool.room_ev->add();
            return;
        }
        pool.waiting_for_room.pop_front();
        pool.parked.erase(fd);
    }
}

// Everything parked or queued for a handoff no worker will take now: kept
// open across execv, listed in the hand-over record.
void Master::keep_parked_across_exec(Handover& next) {
    for (size_t i = 0; i < pools_.size(); ++i) {
        PoolRuntime& pool = pools_[i];
        if (pool.park_rx) on_park(i); // what exiting workers sent last
        int fd;
        while (pool.handoff_rx && (fd = net::recv_fd(pool.handoff_rx.get())) >= 0)
            pool.parked[fd] = ParkedConnection{UniqueFd(fd), nullptr};
        pool.room_ev.reset();
        pool.waiting_for_room.clear(); // they are parked too
        for (auto& [fd, conn] : pool.parked) {
            conn.ev.reset();
            fcntl(fd, F_SETFD, 0);
            next.parked.emplace(pool.cfg.name, conn.fd.release());
        }
        pool.parked.clear(); // now owned by the hand-over record
    }
}

// After a reload: each pool of the new configuration takes back its parked
// connections; those of a pool that is gone are closed.
void Master::adopt_parked() {
    for (auto& [pool_name, fd] : handover_.parked) {
        size_t index = 0;
        while (index < pools_.size() && pools_[index].cfg.name != pool_name)
            ++index;
        if (index == pools_.size()) {
            close(fd);
            continue;
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        watch_parked(index, fd);
    }
    handover_.parked.clear();
}

void Master::close_parked() {
    for (auto& pool : pools_) {
        pool.room_ev.reset();
        pool.waiting_for_room.clear(); // they are parked too
        pool.parked.clear();           // closes them
        pool.park_ev.reset();
    }
}

} // namespace lowphp::master
