// The master holds kept-alive FastCGI connections that no worker is serving,
// and hands each back to the pool's free workers when nginx writes a request on
// it. Only idle connections pass through here; a request on a connection a
// worker keeps goes straight to that worker.
#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <unistd.h>

#include "master_internal.h"
#include "lowphp/fd_passing.h"
#include "lowphp/log.h"

namespace lowphp::master {
namespace {

struct ParkArg {
    Master* master;
    size_t pool;
    int fd;
};

Master* g_park_master = nullptr;

void park_cb(evutil_socket_t, short, void* arg) {
    g_park_master->on_park(static_cast<size_t>(reinterpret_cast<uintptr_t>(arg)));
}

void parked_cb(evutil_socket_t fd, short, void* arg) {
    g_park_master->on_parked_readable(static_cast<size_t>(reinterpret_cast<uintptr_t>(arg)),
                                      static_cast<int>(fd));
}

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
    g_park_master = this;
    pool.park_ev.reset(event_new(base_.get(), pool.park_rx.get(), EV_READ | EV_PERSIST, park_cb,
                                 reinterpret_cast<void*>(static_cast<uintptr_t>(index))));
    event_add(pool.park_ev.get(), nullptr);
    return true;
}

void Master::on_park(size_t index) {
    PoolRuntime& pool = pools_[index];
    int fd;
    while ((fd = net::recv_fd(pool.park_rx.get())) >= 0) {
        if (stopping()) {
            close(fd);
            continue;
        }
        EventPtr ev(event_new(base_.get(), fd, EV_READ, parked_cb,
                              reinterpret_cast<void*>(static_cast<uintptr_t>(index))));
        event_add(ev.get(), nullptr);
        pool.parked[fd] = std::move(ev);
    }
}

void Master::on_parked_readable(size_t index, int fd) {
    PoolRuntime& pool = pools_[index];
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    // EOF or error: nginx dropped its cached connection; a request: hand it over.
    if (n > 0 && !net::send_fd(pool.handoff_tx.get(), fd)) {
        // Queue full: every worker is busy and far behind; retry on the next event.
        event_add(pool.parked[fd].get(), nullptr);
        return;
    }
    pool.parked.erase(fd);
    close(fd);
}

void Master::close_parked() {
    for (auto& pool : pools_) {
        for (auto& [fd, ev] : pool.parked) close(fd);
        pool.parked.clear();
        pool.park_ev.reset();
    }
}

} // namespace lowphp::master
