// A pool's life in the master: made from its configuration, its log files
// opened, started, and stopped.
#include <csignal>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lowphp/log.h"
#include "lowphp/pool.h"

namespace lowphp::pool {

Pool::Pool(size_t index, config::PoolConfig cfg, Identity identity, const Shared& shared,
           Host& host)
    : index_(index), cfg_(std::move(cfg)), identity_(std::move(identity)), shared_(shared),
      host_(host) {
    slot_busy_.assign(static_cast<size_t>(cfg_.pm_max_children), false);
    // the status worker's slot (last) is never free for a pool worker
    if (!cfg_.pm_status_listen.empty()) slot_busy_.push_back(true);
}

// access.log and slowlog (fpm_log_open); `any`: a file was opened. On SIGUSR1
// the files are reopened and the master replaces the workers, which hold the
// old ones.
bool Pool::open_logs(bool reopen, bool& any, bool& access_reopened) {
    for (auto [path, fd] :
         {std::pair{&cfg_.access_log, &access_log_fd_}, std::pair{&cfg_.slowlog, &slowlog_fd_}}) {
        // php-fpm only ever writes (and creates) a slowlog for a pool with
        // request_slowlog_timeout.
        bool unused = fd == &slowlog_fd_ && !cfg_.request_slowlog_timeout;
        if (path->empty() || unused) continue;
        // After start-up fd 2 is the error log: /dev/stderr means the stderr we
        // were started with (GH-8885).
        int f =
            *path == "/dev/stderr" && log::original_stderr_fd() >= 0
                ? fcntl(log::original_stderr_fd(), F_DUPFD_CLOEXEC, 3)
                : open(path->c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, S_IRUSR | S_IWUSR);
        if (f < 0) {
            ZLOG_SYSERROR(fd == &access_log_fd_ ? "failed to open access log (%s)"
                                                : "Unable to create or open slowlog(%s)",
                          path->c_str());
            if (!reopen) return false;
            continue;
        }
        fd->reset(f);
        any = true;
        access_reopened |= reopen && fd == &access_log_fd_;
    }
    return true;
}

// No new worker from here on: the zygote exits when its control socket closes
// (and is told so), an ondemand pool stops watching its socket.
void Pool::stop() {
    zygote_ev_.reset();
    ondemand_ev_.reset();
    zygote_ctl_.reset();
    if (zygote_pid_ > 0) kill(zygote_pid_, SIGTERM);
}

} // namespace lowphp::pool
