// A pool across a reload, as nginx changes its workers: the master's new image
// starts the pool's next generation while the previous one goes on serving on
// the same sockets and channels; once the next is up, the previous one's idle
// workers leave at once and its busy ones after their request.
#include <csignal>
#include <fcntl.h>

#include "lowphp/pool.h"

namespace lowphp::pool {

// Before execv: every child, with its output pipes kept open for the next
// image. A worker the zygote may be forking now would never be named to the
// next image: its slot tells it to stop before its first request.
void Pool::release_children(std::vector<RetiringChild>& out) {
    for (auto& [pid, w] : workers_) {
        RetiringChild child{pid, name(), w.started_us, -1, -1, false};
        for (auto [pipe, fd] :
             {std::pair{w.out.get(), &child.out}, std::pair{w.err.get(), &child.err}}) {
            if (!pipe) continue;
            if (pipe->ev) on_output(pipe); // what it wrote so far is logged by this image
            fcntl(pipe->fd.get(), F_SETFD, 0);
            *fd = pipe->fd.get();
        }
        out.push_back(child);
    }
    for (auto& [i, pipes] : pending_pipes_)
        slot(i).quit.store(true);
    if (zygote_pid_ > 0) out.push_back({zygote_pid_, name(), zygote_started_us_, -1, -1, true});
}

namespace {

std::unique_ptr<OutputPipe> adopt_pipe(int fd, const char* stream) {
    if (fd < 0) return nullptr;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    auto p = std::make_unique<OutputPipe>();
    p->fd.reset(fd);
    p->stream_name = stream;
    return p;
}

} // namespace

// After execv: a worker of the previous generation, reaped and logged here;
// it counts for nothing in this generation's process manager.
void Pool::adopt_retiring(const RetiringChild& child) {
    Worker& w = workers_[child.pid];
    w.pid = child.pid;
    w.slot = UINT32_MAX;
    w.retiring = true;
    w.started_us = child.started_us;
    w.out = adopt_pipe(child.out, "stdout");
    w.err = adopt_pipe(child.err, "stderr");
    watch_output(w);
}

} // namespace lowphp::pool
