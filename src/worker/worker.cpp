// A worker: becomes the pool's user, then accepts FastCGI connections and serves
// their requests until told to stop (SIGQUIT: after the current request).
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <memory>
#include <poll.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "apparmor_hat.h"
#include "connections.h"
#include "lowphp/backend_board.h"
#include "lowphp/backends.h"
#include "lowphp/child_output.h"
#include "lowphp/exit_codes.h"
#include "lowphp/log.h"
#include "lowphp/net.h"
#include "lowphp/proctitle.h"
#include "lowphp/reuse.h"
#include "lowphp/sapi.h"
#include "lowphp/scoreboard.h"
#include "lowphp/worker.h"
#include "request_router.h"

namespace lowphp::worker {
namespace {

// The master logs any exit status but 0 as a warning. A failed
// php_request_startup() ends the worker with kExitSoftware, as in php-fpm, whose
// master starts another in its place.

volatile sig_atomic_t quit_requested = 0;
int quit_wakeup_fd = -1; // eventfd in the worker's epoll set (see ConnectionSource::next)

// How long a fresh connection may keep its worker before sending anything
// (php-fpm's worker waits for ever: one silent connection holds it).
constexpr int kFirstRequestWaitMs = 100;

// A request is served once its params and this much of its body (or all of
// it, if smaller) have arrived; until then it waits without a worker (slow
// senders). A larger body streams into PHP as it comes, as in php-fpm.
constexpr size_t kBodyBound = 16 * 1024;

void on_quit(int) {
    int saved = errno;
    quit_requested = 1;
    uint64_t one = 1;
    if (quit_wakeup_fd >= 0) (void)!write(quit_wakeup_fd, &one, sizeof one);
    errno = saved;
}

// SIGQUIT (graceful stop, reload, idle reaping) is never blocked: as in a
// php-fpm child (fpm_signals_init_child), it cuts a running script's sleep()
// short, the script finishes and the worker exits after the request. PHP
// re-installs the handler per request through its deferred-signal layer
// (without SA_RESTART), so our own blocking calls retry on EINTR. TERM and
// USR1 keep their default: they end the worker at once.
bool install_signals(UniqueFd& wakeup) {
    signal(SIGPIPE, SIG_IGN);
    wakeup.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wakeup) {
        ZLOG_SYSERROR("eventfd() failed");
        return false;
    }
    quit_wakeup_fd = wakeup.get();
    struct sigaction sa {};
    sa.sa_handler = on_quit;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGQUIT, &sa, nullptr);
    sigset_t quit;
    sigemptyset(&quit);
    sigaddset(&quit, SIGQUIT);
    sigprocmask(SIG_UNBLOCK, &quit, nullptr);
    return true;
}

// Whether a worker of the pool other than slot `me` waits for work (its
// watching thread asks, a few times a second at most, before it passes on a
// request this busy worker has not taken).
bool another_idle(Scoreboard& board, size_t pool, uint32_t me) {
    const PoolBoard& p = board.pool(pool);
    for (uint32_t i = p.first_slot; i < p.first_slot + p.slot_count; ++i) {
        const WorkerSlot& s = board.slot(i);
        if (i != me && s.pid.load(std::memory_order_relaxed) != 0 &&
            s.state.load(std::memory_order_relaxed) == static_cast<int>(WorkerState::Idle))
            return true;
    }
    return false;
}

void redirect_stdio(int out, int err) {
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, STDIN_FILENO);
    dup2(out >= 0 ? out : devnull, STDOUT_FILENO);
    dup2(err >= 0 ? err : devnull, STDERR_FILENO);
    for (int fd : {devnull, out, err})
        if (fd > STDERR_FILENO) close(fd);
}

// env[] values and clear_env, then USER / HOME of the pool user (fpm_env_init_child).
void set_environment(const config::PoolConfig& pool, const pool::Identity& id) {
    std::vector<std::pair<std::string, std::string>> values;
    for (const auto& [k, v] : pool.env) {
        const char* from_env = v.size() > 1 && v[0] == '$' ? getenv(v.c_str() + 1) : nullptr;
        values.emplace_back(k, v.size() > 1 && v[0] == '$' ? (from_env ? from_env : "") : v);
    }
    if (pool.clear_env) clearenv();
    for (const auto& [k, v] : values)
        setenv(k.c_str(), v.c_str(), 1);
    if (!id.env_user.empty()) setenv("USER", id.env_user.c_str(), 1);
    if (!id.env_home.empty()) setenv("HOME", id.env_home.c_str(), 1);
}

void set_limits(const config::PoolConfig& pool) {
    // Before the privileges go: only root may raise a priority.
    if (pool.process_priority && setpriority(PRIO_PROCESS, 0, *pool.process_priority) < 0)
        ZLOG_SYSERROR("[pool %s] Unable to set priority for this new process", pool.name.c_str());
    if (pool.rlimit_files) {
        struct rlimit r = {static_cast<rlim_t>(*pool.rlimit_files),
                           static_cast<rlim_t>(*pool.rlimit_files)};
        if (setrlimit(RLIMIT_NOFILE, &r) < 0)
            ZLOG_SYSERROR("[pool %s] failed to set rlimit_files for this pool. Please check your "
                          "system limits or decrease rlimit_files. setrlimit(RLIMIT_NOFILE, %d)",
                          pool.name.c_str(), *pool.rlimit_files);
    }
    if (pool.rlimit_core) {
        rlim_t v = *pool.rlimit_core < 0 ? RLIM_INFINITY : static_cast<rlim_t>(*pool.rlimit_core);
        struct rlimit r = {v, v};
        if (setrlimit(RLIMIT_CORE, &r) < 0)
            ZLOG_SYSERROR("[pool %s] failed to set rlimit_core for this pool. Please check your "
                          "system limits or decrease rlimit_core. setrlimit(RLIMIT_CORE, %d)",
                          pool.name.c_str(), static_cast<int>(*pool.rlimit_core));
    }
}

// As root: setgid, then initgroups and setuid when a uid is set; false after
// logging what failed.
bool apply_identity(const pool::Identity& id, const std::string& pool_name) {
    if (getuid() != 0) return true;
    const char* name = pool_name.c_str();
    if (id.gid && setgid(id.gid) < 0) {
        ZLOG_SYSERROR("[pool %s] failed to setgid(%d)", name, static_cast<int>(id.gid));
        return false;
    }
    if (!id.uid) return true;
    if (initgroups(id.groups_user.c_str(), id.gid) < 0) {
        ZLOG_SYSERROR("[pool %s] failed to initgroups(%s, %d)", name, id.groups_user.c_str(),
                      static_cast<int>(id.gid));
        return false;
    }
    if (setuid(id.uid) < 0) {
        ZLOG_SYSERROR("[pool %s] failed to setuid(%d)", name, static_cast<int>(id.uid));
        return false;
    }
    return true;
}

// chroot, chdir, then the pool's identity: php-fpm's fpm_unix_init_child order.
bool drop_privileges(const config::PoolConfig& pool, const pool::Identity& id) {
    if (!pool.chroot.empty() && chroot(pool.chroot.c_str()) < 0) {
        ZLOG_SYSERROR("[pool %s] failed to chroot(%s)", pool.name.c_str(), pool.chroot.c_str());
        return false;
    }
    const char* dir =
        !pool.chdir.empty() ? pool.chdir.c_str() : (!pool.chroot.empty() ? "/" : nullptr);
    if (dir && chdir(dir) < 0) {
        ZLOG_SYSERROR("[pool %s] failed to chdir(%s)", pool.name.c_str(), dir);
        return false;
    }
    return apply_identity(id, pool.name);
}

bool become_pool_user(const config::PoolConfig& pool, const pool::Identity& id) {
    set_environment(pool, id);
    set_limits(pool);
    if (!drop_privileges(pool, id)) return false;
    if (pool.process_dumpable) prctl(PR_SET_DUMPABLE, 1);
    return true;
}

// The worker is the master's child (cloned with CLONE_PARENT) and must not
// outlive it. Armed only now: the kernel clears PR_SET_PDEATHSIG when the
// credentials change (setuid above). A master killed before that has left the
// worker to a reaper: the parent is compared with the master's pid, not with 1
// (a subreaper may have adopted it).
void die_with_master(pid_t master_pid) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != master_pid) _exit(kExitSoftware);
}

// What fastcgi_finish_request() releases a kept connection to (set in run()).
ConnectionSource* g_source = nullptr;

// pm.max_memory: resident size from /proc/self/statm (one pread, kept open).
bool over_memory_limit(uint64_t limit, WorkerSlot& slot) {
    static int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    static const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    char buf[128];
    ssize_t n = fd < 0 ? -1 : pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return false;
    buf[n] = '\0';
    unsigned long size = 0, resident = 0;
    if (sscanf(buf, "%lu %lu", &size, &resident) != 2) return false;
    uint64_t rss = resident * page;
    if (rss <= limit) return false;
    slot.over_memory.store(rss);
    return true;
}

// fpm_request_reading_headers: a request's clock starts when the worker starts
// reading it, so request_terminate_timeout and the slowlog count the time its
// params take to arrive, never the idle time before (the slot would still
// hold the previous request's start). The time is written before the state
// that makes the master look at it.
void start_reading(WorkerSlot& slot) {
    begin_slot_write(slot);
    slot.request_started_us.store(mono_us(), std::memory_order_relaxed);
    slot.request_accepted_s = wall_us() / 1000000u;
    end_slot_write(slot);
    slot.state.store(static_cast<int>(WorkerState::ReadingHeaders), std::memory_order_release);
}

// The worker's next request: from the connection it is on (a request read
// with the last one), else from whichever source has work.
struct RequestSource {
    ConnectionSource& source;
    fastcgi::Connection& conn;
    WorkerSlot& slot;
    bool inet;
    const char* pool_name;
    size_t params_limit;
    RequestRouter* router = nullptr; // worker.match

    bool stopping() const { return quit_requested || slot.quit.load(std::memory_order_relaxed); }

    // False when the worker must stop.
    bool read(fastcgi::Request& request) {
        while (!stopping()) {
            // A next request already read with the last one is served first:
            // the socket will not signal it again.
            int fd = conn.fd();
            bool accepted = false;
            if (fd < 0 || !conn.has_input()) {
                slot.state.store(static_cast<int>(WorkerState::Idle), std::memory_order_relaxed);
                fd = source.next(quit_requested, accepted);
                if (fd < 0) return false;
                conn.attach(fd, inet);
            }
            start_reading(slot);
            if (!conn.has_input() && source.waits_for_requests()) {
                // Only a request that has arrived takes this worker.
                auto arrived = conn.arrival(kBodyBound);
                if (arrived == fastcgi::Arrival::Nothing && accepted &&
                    conn.wait_readable(kFirstRequestWaitMs))
                    arrived = conn.arrival(kBodyBound);
                if (arrived == fastcgi::Arrival::Partial) {
                    source.wait_for_rest(conn.release(), conn.peeked());
                    continue;
                }
                if (router && !router->serves_here(conn)) {
                    source.route(conn.release());
                    continue;
                }
            }
            auto next = conn.read_request(request);
            // A fresh connection is usually woken before the web server's write
            // of its request lands: waiting a moment for it costs less than
            // setting it aside.
            if (next == fastcgi::Connection::Next::Idle && accepted &&
                conn.wait_readable(kFirstRequestWaitMs))
                next = conn.read_request(request);
            if (next == fastcgi::Connection::Next::Request) return true;
            if (next == fastcgi::Connection::Next::Idle) { // nothing sent yet: wait for it
                source.keep(fd);
            } else {
                if (conn.params_over_limit())
                    ZLOG_WARNING("[pool %s] a request's FastCGI params exceed "
                                 "request_params_max_size (%zu bytes): connection closed",
                                 pool_name, params_limit);
                source.forget(fd);
                conn.close(false);
            }
        }
        return false;
    }
};

// What follows every request, classic or worker mode: the master's log
// marker, buffers back, the connection kept or forgotten, and whether this
// worker has served its share (max requests, pm.max_memory).
struct AfterRequest {
    ConnectionSource& source;
    fastcgi::Connection& conn;
    fastcgi::Request& request;
    WorkerSlot& slot;
    const config::PoolConfig& pool;
    int max_requests;
    bool capture_stderr;
    int served = 0;

    // False when the worker must stop. `fd` is the connection the request came on.
    bool operator()(int fd) {
        ++served;
        // fpm_stdio_flush_child: the master logs an unterminated line now
        if (capture_stderr) (void)!write(STDERR_FILENO, log::kFlushMarker, log::kFlushMarkerSize);
        // A request with huge params (up to request_params_max_size) leaves
        // nothing behind: its buffers and the heap they grew go back.
        if (conn.release_large_buffers(request)) malloc_trim(0);
        // The last request's kept connection is not closed (php-fpm closes
        // it): it goes to the master with the worker's others at exit, since
        // nginx may already have sent a POST on it that it must not retry.
        bool last = max_requests > 0 && served >= max_requests;
        if (pool.pm_max_memory && over_memory_limit(pool.pm_max_memory, slot)) last = true;
        if (conn.fd() >= 0)
            source.keep(conn.fd());
        else
            source.forget(fd);
        return !last;
    }
};

// Worker mode: lowphp_handle_request() takes its requests from here.
class WorkerModeLoop final : public sapi::WorkerLoop {
  public:
    WorkerModeLoop(RequestSource& source, AfterRequest& after) : source_(source), after_(after) {}
    bool next(fastcgi::Connection*& conn, const fastcgi::Request*& req) override {
        if (!source_.read(after_.request)) return false;
        fd_ = source_.conn.fd();
        conn = &source_.conn;
        req = &after_.request;
        return true;
    }
    bool done() override { return after_(fd_); }

  private:
    RequestSource& source_;
    AfterRequest& after_;
    int fd_ = -1;
};

// pm.max_requests, and for a worker running the worker script
// worker.max_requests: the lower one.
int max_requests(const config::PoolConfig& pool, bool script_worker) {
    int classic = pool.pm_max_requests, worker = pool.worker_max_requests;
    if (!script_worker || worker <= 0) return classic;
    return classic > 0 ? std::min(classic, worker) : worker;
}

// A worker slot whose script kept failing at boot answers this, without PHP,
// until a reload or a worker.watch change.
void answer_unavailable(fastcgi::Connection& conn) {
    static constexpr char kResponse[] = "Status: 503 Service Unavailable\r\n"
                                        "Content-type: text/plain;charset=UTF-8\r\n\r\n"
                                        "Service Unavailable\n";
    // The body nobody reads is drained, as PHP's sapi_deactivate does: a kept
    // connection's next request must come next.
    char sink[8192];
    while (conn.read_stdin(sink, sizeof sink) > 0) {
    }
    conn.write(fastcgi::kStdout, kResponse, sizeof kResponse - 1);
    conn.finish();
}

// A worker script that failed before its first request: wait before the
// master starts the next attempt (n² × 100 ms, at most 1 s), unless stopped.
void back_off(uint32_t failures, int wakeup_fd) {
    uint64_t ms = std::min<uint64_t>(1000, uint64_t{failures} * failures * 100);
    struct pollfd p = {wakeup_fd, POLLIN, 0};
    uint64_t until = mono_us() + ms * 1000;
    while (!quit_requested) {
        uint64_t now = mono_us();
        if (now >= until) break;
        if (poll(&p, 1, static_cast<int>((until - now) / 1000) + 1) > 0) break;
    }
}

// Worker mode: boot the script and serve from it; the worker's exit code.
int run_worker_mode(const config::PoolConfig& pool, RequestSource& next, AfterRequest& after,
                    int wakeup_fd) {
    auto max_failures = static_cast<uint32_t>(pool.worker_max_consecutive_failures);
    if (after.slot.boot_failures.load() >= max_failures) {
        while (next.read(after.request)) {
            int fd = next.conn.fd();
            answer_unavailable(next.conn);
            after(fd);
        }
        return 0;
    }
    WorkerModeLoop loop(next, after);
    switch (sapi::run_worker_script(pool, loop)) {
    case sapi::kWorkerScriptEnded:
        return 0;
    case sapi::kWorkerScriptCrashed:
        return kExitSoftware;
    case sapi::kWorkerScriptFailed:
        back_off(after.slot.boot_failures.fetch_add(1) + 1, wakeup_fd);
        return kExitWorkerBoot;
    }
    return kExitSoftware;
}

} // namespace

void run(const Params& params) {
    const zygote::Params& z = *params.zygote;
    const config::PoolConfig& pool = z.config->pools[z.pool_index];
    close(z.control_fd);
    redirect_stdio(params.stdout_fd, params.stderr_fd);
    log::Settings ls = log::settings();
    ls.is_child = true;
    log::configure(ls);
    log::set_fd(-1); // children log to stderr: the master captures it or it is discarded
    // fpm_child_init: a worker that cannot be set up as asked never serves.
    if (!become_pool_user(pool, *z.identity) || !change_apparmor_hat(pool)) {
        ZLOG_ERROR("[pool %s] child failed to initialize", pool.name.c_str());
        _exit(kExitSoftware);
    }
    die_with_master(z.master_pid);
    // After the pool's user, limits, chroot and cwd, as php-fpm (fpm_child_init
    // runs fpm_unix_init_child before fpm_env_init_child names the process):
    // whoever finds "pool NAME" sees a worker that is set up.
    proctitle::set("lowphp-fpm: pool " + pool.name);
    UniqueFd quit_wakeup;
    if (!install_signals(quit_wakeup)) _exit(kExitSoftware);
    WorkerSlot* slot = z.scoreboard->slot_ptr(params.slot);
    slot->pid = getpid();
    slot->process_started_us = wall_us();
    slot->requests = 0;
    slot->idle_since_us = 0;
    slot->state = static_cast<int>(WorkerState::Idle);
    net::Address address;
    std::string error;
    // The pm.status_listen worker takes its own socket and no kept-connection
    // handoffs (those belong to the pool's workers).
    bool status = params.status_worker;
    int listen_fd = status ? z.status_listen_fd : z.listen_fd;
    net::parse_listen(status ? pool.pm_status_listen : pool.listen, address, error);
    net::Address pool_address; // the status page reports the pool's own queue
    net::parse_listen(pool.listen, pool_address, error);
    sapi::init_worker(pool, *z.scoreboard, z.pool_index, params.slot,
                      pool_address.is_unix ? -1 : z.listen_fd, params.access_log_fd);
    sapi::start_slowlog_thread(pool, slot, params.slowlog_fd);
    fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
    // allowed_clients applies to inet listeners only, as in php-fpm.
    ConnectionSource source(
        listen_fd, status ? -1 : z.handoff_fd, status ? -1 : z.handoff_send_fd,
        status ? -1 : z.park_fd, pool.listen_allowed_clients, !address.is_unix,
        [&z, me = params.slot] { return another_idle(*z.scoreboard, z.pool_index, me); });
    if (!source.ok() || !source.watch_wakeup(quit_wakeup.get())) _exit(kExitSoftware);
    // Per-site backends: connected before the first request, given back when
    // another worker waits for one (never in the status worker).
    if (z.backends) backends::init_status(*z.backends, z.pool_index);
    if (!status && !pool.backends.empty() && z.backends) {
        backends::init_worker(pool, z.backends->tables(z.pool_index),
                              z.backends->nudge_fd(z.pool_index));
        if (!source.watch_nudge(z.backends->nudge_fd(z.pool_index), [] {
                backends::give_back_idle();
                reuse::give_back_idle();
            }))
            ZLOG_SYSWARNING("[pool %s] cannot watch the backend nudge", pool.name.c_str());
        backends::warm_up();
    }
    // connections.reuse: the kept database connections, closed when the
    // worker has served nothing for connections.idle_timeout.
    if (!status && reuse::active()) {
        bool capped = !pool.backends.empty() && z.backends;
        reuse::init_worker(pool, &z.scoreboard->pool(z.pool_index), slot,
                           capped ? z.backends->tables(z.pool_index) : nullptr,
                           capped ? z.backends->nudge_fd(z.pool_index) : -1);
        if (reuse::idle_timeout() > 0)
            source.set_idle_timer(reuse::idle_timeout() * 1000, reuse::close_all);
    }
    g_source = &source;
    sapi::set_release_connection([](int fd) { g_source->release(fd); });

    fastcgi::Connection conn;
    conn.set_params_limit(pool.request_params_max_size);
    fastcgi::Request request;
    // worker.match: every other worker runs the worker script, the others classic.
    PoolBoard& board = z.scoreboard->pool(z.pool_index);
    bool routed = !status && !pool.worker_match.empty();
    bool script_worker =
        pool.worker_mode() && !status && (!routed || (params.slot - board.first_slot) % 2 == 0);
    std::unique_ptr<RequestRouter> router;
    if (routed) {
        router = std::make_unique<RequestRouter>(pool.worker_match, script_worker);
        if (!router->ok() || !source.set_routes(z.route_fd[script_worker ? 1 : 0],
                                                z.route_send_fd[script_worker ? 0 : 1]))
            _exit(kExitSoftware);
    }
    RequestSource next{
        source,      conn, *slot, !address.is_unix, pool.name.c_str(), pool.request_params_max_size,
        router.get()};
    AfterRequest after{source,
                       conn,
                       request,
                       *slot,
                       pool,
                       max_requests(pool, script_worker),
                       params.stderr_fd >= 0};
    int exit_code = 0;
    if (script_worker) {
        exit_code = run_worker_mode(pool, next, after, quit_wakeup.get());
    } else {
        while (next.read(request)) {
            int fd = conn.fd();
            bool ok = sapi::serve(conn, request);
            bool more = after(fd);
            if (!ok) exit_code = kExitSoftware;
            if (!ok || !more) break;
        }
    }
    // A next request already in our buffer cannot travel with the fd: close
    // that connection rather than park it without it.
    if (conn.fd() >= 0 && conn.has_input()) {
        source.forget(conn.fd());
        conn.close(false);
    }
    source.retire();
    backends::shutdown_worker();
    _exit(exit_code);
}

} // namespace lowphp::worker
