// A pool's zygote: PHP started once with the pool's php.ini (its own opcache and
// APCu segments), then one clone per worker the master asks for.
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <grp.h>
#include <new>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lowphp/fd_passing.h"
#include "lowphp/log.h"
#include "lowphp/proctitle.h"
#include "lowphp/reuse.h"
#include "lowphp/sapi.h"
#include "lowphp/session_dir.h"
#include "lowphp/worker.h"
#include "lowphp/zygote.h"

namespace lowphp::zygote {
namespace {

bool reply(int fd, uint32_t slot, int32_t pid) {
    SpawnReply r{slot, pid};
    return send(fd, &r, sizeof r, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof r);
}

// Receive one command and the descriptors that travel with it. Returns false on
// EOF (the master is gone or stopping).
bool receive(int fd, SpawnCommand& cmd, int out_fds[kMaxSpawnFds]) {
    int got[kMaxSpawnFds];
    size_t count = 0;
    if (net::recv_with_fds(fd, &cmd, sizeof cmd, got, kMaxSpawnFds, count, 0) !=
        static_cast<ssize_t>(sizeof cmd)) {
        for (size_t i = 0; i < count; ++i)
            close(got[i]);
        return false;
    }
    // Place them by the bits of cmd.fds: stdout, stderr, access log, slow log.
    size_t next = 0;
    auto take = [&]() { return next < count ? got[next++] : -1; };
    bool output = cmd.fds & kOutputFds;
    out_fds[0] = output ? take() : -1;
    out_fds[1] = output ? take() : -1;
    out_fds[2] = (cmd.fds & kAccessLogFd) ? take() : -1;
    out_fds[3] = (cmd.fds & kSlowlogFd) ? take() : -1;
    while (next < count)
        close(got[next++]);
    return true;
}

// clone(CLONE_PARENT): the worker becomes the master's child, not ours.
pid_t clone_worker() {
    return static_cast<pid_t>(
        syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
}

// Sessions of a pool that does not choose its session.save_path go to
// <base>/<pool>, made here (still root) for the user the workers will become.
void default_session_dir(const config::PoolConfig& pool, const pool::Identity& id) {
    if (!sapi::session_path_unset(pool)) return;
    // Not started as root, every pool runs as the same user, who could read any
    // pool's directory anyway: PHP's default stays, without a word (php-fpm's).
    if (getuid() != 0) {
        ZLOG_DEBUG("[pool %s] not root: session.save_path stays PHP's default", pool.name.c_str());
        return;
    }
    // The ids the workers will take.
    uid_t uid = id.uid ? id.uid : getuid();
    gid_t gid = id.gid ? id.gid : getgid();
    std::string root = pool.chroot;
    while (!root.empty() && root.back() == '/')
        root.pop_back();
    std::string err = session_dir::prepare(root + session_dir::kDefaultBase, pool.name, uid, gid);
    if (!err.empty()) {
        ZLOG_WARNING("[pool %s] no session directory of its own, session.save_path stays PHP's "
                     "default: %s",
                     pool.name.c_str(), err.c_str());
        return;
    }
    // Workers see the path from inside their chroot.
    sapi::set_session_path(std::string(session_dir::kDefaultBase) + "/" + pool.name);
}

Scoreboard* g_scoreboard = nullptr; // for first_startup_message

bool first_startup_message(const char* message) {
    return g_scoreboard->first_startup_message(message);
}

void* nothing(void*) {
    return nullptr;
}

// Calls whose first use in a process goes through the dynamic linker: libc and
// libstdc++ bind their own PLT slots lazily (Debian builds them without
// BIND_NOW), so each worker's first thread and first new[] would look the
// symbol up in every loaded object (~40) and fault in pages of each one's
// symbol tables (~110 KB of PSS per worker, measured by smaps after hello.php).
// Made here, the workers inherit them bound. Two threads: the first stack is
// new, the second comes from the stack cache, as a worker's does (the zygote's
// cached stack is inherited).
void bind_first_uses() {
    for (int i = 0; i < 2; ++i) {
        pthread_t thread;
        if (pthread_create(&thread, nullptr, nothing, nullptr) == 0) pthread_join(thread, nullptr);
    }
    ::operator delete[](::operator new[](1));
}

} // namespace

void run(const Params& params) {
    const config::PoolConfig& pool = params.config->pools[params.pool_index];
    proctitle::set("lowphp-fpm: zygote " + pool.name);
    // php-fpm starts PHP before it opens its error log: PHP's start-up messages
    // (a missing extension, a bad php.ini value) reach the stderr it was started
    // with (the journal under systemd), not the error log (-D: until the master
    // is ready). It starts PHP once: a message another pool's zygote printed
    // already is not printed again.
    int original_stderr = log::original_stderr_fd();
    g_scoreboard = params.scoreboard;
    log::divert_to(original_stderr, g_scoreboard ? first_startup_message : nullptr);
    bool ok = sapi::start_pool(pool, params.ini);
    log::divert_to(-1);
    if (original_stderr >= 0) close(original_stderr); // workers do not inherit it
    if (ok) default_session_dir(pool, *params.identity);
    if (ok) bind_first_uses();
    if (ok) reuse::install(pool); // connections.reuse: connect calls made persistent
    signal(SIGPIPE, SIG_IGN);
    if (!reply(params.control_fd, kReadySlot, ok ? getpid() : -1) || !ok) _exit(ok ? 0 : 1);
    SpawnCommand cmd;
    int fds[kMaxSpawnFds];
    while (receive(params.control_fd, cmd, fds)) {
        pid_t pid = clone_worker();
        if (pid == 0) {
            worker::Params wp{
                &params, cmd.slot, fds[0], fds[1], fds[2], fds[3], (cmd.fds & kStatusWorker) != 0};
            worker::run(wp);
        }
        for (int fd : fds)
            if (fd >= 0) close(fd);
        reply(params.control_fd, cmd.slot, pid < 0 ? -errno : pid);
    }
    _exit(0);
}

} // namespace lowphp::zygote
