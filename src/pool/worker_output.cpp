// catch_workers_output: each worker's stdout and stderr come to the master
// through pipes and become error log lines, as php-fpm's fpm_stdio does.
#include <unistd.h>

#include "lowphp/log.h"
#include "lowphp/pool.h"

namespace lowphp::pool {

void Pool::watch_output(Worker& w) {
    for (OutputPipe* p : {w.out.get(), w.err.get()}) {
        if (!p) continue;
        p->pid = w.pid;
        p->lines.emplace(
            log::child_output_room(static_cast<size_t>(shared_.config->global.log_limit),
                                   cfg_.decorate_workers_output, cfg_.name, w.pid, p->stream_name));
        p->ev = make_event(shared_.base, p->fd.get(), EV_READ | EV_PERSIST,
                           [this, p](evutil_socket_t, short) { on_output(p); });
        p->ev->add();
    }
    if (w.out && w.err) {
        w.out->other = w.err.get();
        w.err->other = w.out.get();
        w.err->is_stderr = true;
    }
}

// php-fpm's master keeps one log stream per worker: output on one pipe first
// ends the line left open on the other (fpm_stdio_child_said). What stderr
// brings (a message, the end-of-request marker) was written after what stdout
// holds now: stdout is read first, so a request's unterminated stdout line is
// logged at its end, before its stderr.
void Pool::on_output(OutputPipe* pipe) {
    if (pipe->is_stderr && pipe->other && pipe->other->ev) on_output(pipe->other);
    char buf[4096];
    std::vector<std::string> lines;
    bool first = true;
    for (;;) {
        ssize_t n = read(pipe->fd.get(), buf, sizeof buf);
        if (n > 0) {
            if (first && pipe->other) flush_output(pipe->other);
            first = false;
            pipe->lines->feed(buf, static_cast<size_t>(n), lines);
            continue;
        }
        if (n == 0) pipe->ev.reset(); // the worker closed it (exited)
        break;                        // EOF or EAGAIN
    }
    log_output(pipe, lines);
    if (!pipe->ev) flush_output(pipe);
}

// php-fpm's fpm_stdio_child_said: one log line per output line (wrapped to log_limit).
void Pool::log_output(OutputPipe* pipe, const std::vector<std::string>& lines) {
    for (const std::string& line : lines) {
        if (cfg_.decorate_workers_output)
            ZLOG_WARNING("[pool %s] child %d said into %s: \"%s\"", name().c_str(),
                         static_cast<int>(pipe->pid), pipe->stream_name, line.c_str());
        else
            log::write_raw(line);
    }
}

// What the worker left unterminated (at its exit, or before the other
// stream's output) is a line too.
void Pool::flush_output(OutputPipe* pipe) {
    if (!pipe->lines) return;
    std::vector<std::string> lines;
    pipe->lines->finish(lines);
    log_output(pipe, lines);
}

} // namespace lowphp::pool
