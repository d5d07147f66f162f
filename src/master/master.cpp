// The master's life: start-up in php-fpm's order and wording, the event loop,
// signals, and a stop that leaves no process and no socket behind.
#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lowphp/exit_codes.h"
#include "lowphp/log.h"
#include "lowphp/proctitle.h"
#include "lowphp/systemd_notify.h"
#include "master_internal.h"

namespace lowphp::master {
namespace {

// fpm_pctl_heartbeat's period: a third of the smallest request timeout, at least
// 130 ms; 0 when no pool has one.
long heartbeat_ms(const config::Config& cfg) {
    long ms = 0;
    for (const auto& p : cfg.pools)
        for (int t : {p.request_terminate_timeout, p.request_slowlog_timeout})
            if (t > 0 && (ms == 0 || t * 1000L / 3 < ms)) ms = t * 1000L / 3;
    return ms == 0 ? 0 : std::max(ms, 130L);
}

} // namespace

bool Master::setup_logging() {
    log::Settings s;
    s.level = cfg_.global.log_level;
    s.limit = static_cast<size_t>(cfg_.global.log_limit);
    log::configure(s);
    // Logging to stderr (-O, -F): the configuration check has already created
    // error_log, as php-fpm does (ParseOptions::open_log_files).
    if (!log::use_error_log(cfg_.global.daemonize, opts_.force_stderr)) return true;
    if (!log::open_target(cfg_.global.error_log, cfg_.global.syslog_ident,
                          cfg_.global.syslog_facility)) {
        ZLOG_SYSERROR("failed to open error_log (%s)", cfg_.global.error_log.c_str());
        return false;
    }
    return true;
}

// One listening socket: inherited across a reload when its address is listed,
// else created. `cfg.listen` is the address.
bool Master::listen_on(const config::PoolConfig& cfg, net::Listener& out,
                       std::vector<std::pair<std::string, int>>& inherited) {
    auto it = std::find_if(inherited.begin(), inherited.end(),
                           [&](const auto& s) { return s.first == cfg.listen; });
    if (it != inherited.end()) {
        // The socket never closed across the reload: nothing queued is lost.
        fcntl(it->second, F_SETFD, FD_CLOEXEC);
        out.fd.reset(it->second);
        out.pool = cfg.name;
        std::string error;
        net::parse_listen(cfg.listen, out.address, error);
        inherited.erase(it);
        return true;
    }
    out = net::open_listener(cfg);
    return static_cast<bool>(out.fd);
}

bool Master::create_listeners() {
    // Each is logged, used or not (fpm_sockets_init_main).
    auto& inherited = handover_.sockets;
    for (const auto& [listen, fd] : inherited)
        ZLOG_NOTICE("using inherited socket fd=%d, \"%s\"", fd, listen.c_str());
    for (auto& pool : pools_) {
        if (!listen_on(pool->cfg(), pool->listener, inherited)) return false;
        if (pool->cfg().pm_status_listen.empty()) continue;
        // pm.status_listen: php-fpm's hidden status pool, same socket settings
        config::PoolConfig status = pool->cfg();
        status.listen = pool->cfg().pm_status_listen;
        if (!listen_on(status, pool->status_listener, inherited)) return false;
    }
    for (auto& [listen, fd] : inherited) { // a pool that the new configuration dropped
        close(fd);
        if (!listen.empty() && listen[0] == '/') unlink(listen.c_str());
    }
    inherited.clear();
    return true;
}

namespace {

// fpm_pctl_exec's line: execvp("PATH", {"ARGV0", "ARG1", ...}), at most ten
// arguments after argv[0] shown.
std::string reload_line(const std::string& path, const std::vector<std::string>& argv) {
    std::string line = "reloading: execvp(\"" + path + "\", {";
    for (size_t i = 0; i < argv.size() && i <= 10; ++i)
        line += (i ? ", \"" : "\"") + argv[i] + "\"";
    return line + "})";
}

} // namespace

// php-fpm's reload: the same pid re-executes the binary on disk, handing over
// the listening sockets by number, and (beyond php-fpm) the idle kept-alive
// connections nginx still holds, so none of them is reset under it. The path
// is the one started, not /proc/self/exe: after a package upgrade that names
// the old, deleted file, and the new binary must take over.
void Master::reexec() {
    Handover next;
    for (pid_t pid : orphans_)
        next.retiring.push_back({pid, "", 0, -1, -1, false});
    for (pid_t pid : previous_zygotes_)
        next.retiring.push_back({pid, "", 0, -1, -1, true});
    for (auto& p : pools_) {
        std::vector<int> parked;
        p->release_parked(parked);
        for (int fd : parked)
            next.parked.emplace(p->name(), fd);
        next.channels[p->name()] = p->release_channels();
        p->release_children(next.retiring);
        for (auto [l, addr] : {std::pair{&p->listener, &p->cfg().listen},
                               std::pair{&p->status_listener, &p->cfg().pm_status_listen}}) {
            if (!l->fd) continue;
            fcntl(l->fd.get(), F_SETFD, 0);
            next.sockets.emplace_back(*addr, l->fd.get());
        }
    }
    if (backends_.fd() >= 0) {
        fcntl(backends_.fd(), F_SETFD, 0);
        next.backends_fd = backends_.fd();
    }
    next.put();
    std::vector<char*> args;
    for (auto& a : opts_.argv)
        args.push_back(a.data());
    args.push_back(nullptr);
    ZLOG_NOTICE("%s", reload_line(exe_path_, opts_.argv).c_str());
    // A signal arriving between execv and the new image's handlers would kill
    // the master (default action): they stay blocked, and pending, until the
    // new image has installed its handlers (fpm_signals_block). And stderr goes
    // back to what the master was started with (fpm_stdio_restore_original_stderr).
    sigset_t block, old;
    sigemptyset(&block);
    for (int signo : {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2})
        sigaddset(&block, signo);
    sigprocmask(SIG_BLOCK, &block, &old);
    log::restore_original_stderr();
    execv(exe_path_.c_str(), args.data());
    sigprocmask(SIG_SETMASK, &old, nullptr);
    ZLOG_SYSERROR("execv() failed");
    if (backends_.fd() >= 0) fcntl(backends_.fd(), F_SETFD, FD_CLOEXEC);
    for (auto& p : pools_) {
        p->close_parked();
        fcntl(p->listener.fd.get(), F_SETFD, FD_CLOEXEC);
        if (p->status_listener.fd) fcntl(p->status_listener.fd.get(), F_SETFD, FD_CLOEXEC);
    }
    begin_stop(State::Terminating);
}

// [global] process.priority, rlimit_files, rlimit_core (fpm_unix_init_main).
// The workers inherit them unless their pool sets its own. A limit the system
// refuses ends the start-up, as in php-fpm; the priority only warns.
bool Master::apply_master_limits() {
    const auto& g = cfg_.global;
    if (g.process_priority && setpriority(PRIO_PROCESS, 0, *g.process_priority) < 0)
        ZLOG_SYSERROR("Unable to set priority for the master process");
    if (g.rlimit_files) {
        struct rlimit r = {static_cast<rlim_t>(*g.rlimit_files),
                           static_cast<rlim_t>(*g.rlimit_files)};
        if (setrlimit(RLIMIT_NOFILE, &r) < 0) {
            ZLOG_SYSERROR("failed to set rlimit_files for this pool. Please check your system "
                          "limits or decrease rlimit_files. setrlimit(RLIMIT_NOFILE, %d)",
                          *g.rlimit_files);
            return false;
        }
    }
    if (g.rlimit_core) {
        rlim_t v = *g.rlimit_core < 0 ? RLIM_INFINITY : static_cast<rlim_t>(*g.rlimit_core);
        struct rlimit r = {v, v};
        if (setrlimit(RLIMIT_CORE, &r) < 0) {
            ZLOG_SYSERROR("failed to set rlimit_core for this pool. Please check your system "
                          "limits or decrease rlimit_core. setrlimit(RLIMIT_CORE, %d)",
                          static_cast<int>(*g.rlimit_core));
            return false;
        }
    }
    return true;
}

bool Master::write_pid_file() {
    // The configuration's `pid` wins; -g only names one where it has none
    // (what php-fpm 8.2 does, whatever its --help says).
    pid_path_ = cfg_.global.pid.empty() ? opts_.pid_path : cfg_.global.pid;
    if (pid_path_.empty()) return true;
    UniqueFd fd(open(pid_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) {
        ZLOG_SYSERROR("Unable to create the PID file (%s).", pid_path_.c_str());
        return false;
    }
    std::string text = std::to_string(getpid());
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        ZLOG_SYSERROR("Unable to write to the PID file.");
        return false;
    }
    return true;
}

namespace {

// The calling process of -D: 0 once the daemon says it is ready, else 70
// (FPM_EXIT_SOFTWARE), with php-fpm's lines when the daemon said nothing.
int wait_for_daemon(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    int ready;
    while ((ready = poll(&p, 1, 10000)) < 0 && errno == EINTR) {
    }
    if (ready == 0) {
        ZLOG_ERROR("the master process didn't send back its status (via the pipe to the calling "
                   "process)");
        return kExitSoftware;
    }
    char ok = 0;
    ssize_t n;
    while ((n = read(fd, &ok, 1)) < 0 && errno == EINTR) {
    }
    if (n == 0) ZLOG_ERROR("no data have been read from pipe");
    return n == 1 && ok == 1 ? kExitOk : kExitSoftware;
}

} // namespace

// php-fpm's daemon mode: the parent waits until the child reports start-up
// success, so `php-fpm -D` exits 0 only once the server is ready.
bool Master::daemonize_if_asked() {
    if (handover_.reloaded) return true; // already detached before the reload
    if (!cfg_.global.daemonize) return true;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        ZLOG_SYSERROR("failed to create pipe");
        return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
        ZLOG_SYSERROR("failed to daemonize");
        return false;
    }
    if (pid > 0) {
        close(fds[1]);
        _exit(wait_for_daemon(fds[0]));
    }
    close(fds[0]);
    daemon_pipe_ = fds[1];
    setsid();
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, STDIN_FILENO);
        dup2(devnull, STDOUT_FILENO);
        close(devnull);
    }
    return true;
}

void Master::notify_parent(bool ok) {
    if (daemon_pipe_ < 0) return;
    char c = ok ? 1 : 0;
    (void)!::write(daemon_pipe_, &c, 1);
    close(daemon_pipe_);
    daemon_pipe_ = -1;
    // The zygotes have written PHP's start-up messages to the caller's stderr
    // (php-fpm prints them before it daemonizes); whoever started us may wait
    // for that stderr to close (a `$(lowphp-fpm -D)`, an ssh session).
    log::close_original_stderr();
}

void Master::install_events() {
    for (int signo : {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2}) {
        EventPtr ev =
            make_event(base_.get(), signo, EV_SIGNAL | EV_PERSIST,
                       [this](evutil_socket_t s, short) { on_signal(static_cast<int>(s)); });
        ev->add();
        signal_events_.push_back(std::move(ev));
    }
    tick_event_ =
        make_event(base_.get(), -1, EV_PERSIST, [this](evutil_socket_t, short) { on_tick(); });
    struct timeval one_second = {1, 0};
    tick_event_->add(&one_second);
    if (long ms = heartbeat_ms(cfg_); ms > 0) {
        heartbeat_event_ = make_event(base_.get(), -1, EV_PERSIST,
                                      [this](evutil_socket_t, short) { check_request_timeouts(); });
        struct timeval period = {ms / 1000, (ms % 1000) * 1000};
        heartbeat_event_->add(&period);
    }
}

// worker.watch: a change under a watched path restarts that pool (Pool::restart).
bool Master::watch_worker_files() {
    for (const auto& p : cfg_.pools)
        if (p.worker_mode() && !p.worker_watch.empty() && !file_watch_.add(p.name, p.worker_watch))
            return false;
    return file_watch_.start(base_.get(), [this](const std::string& pool, const std::string& path) {
        if (state_ != State::Running) return;
        for (auto& p : pools_)
            if (p->name() == pool) p->restart("worker.watch: '" + path + "' changed");
    });
}

int Master::run() {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe_path_ = n > 0 ? std::string(exe, static_cast<size_t>(n)) : "/proc/self/exe";
    handover_ = Handover::take();
    if (opts_.force_daemon >= 0) cfg_.global.daemonize = opts_.force_daemon == 1;
    if (!setup_logging()) return kExitConfig;
    signal(SIGPIPE, SIG_IGN);
    if (!apply_master_limits()) {
        ZLOG_ERROR("FPM initialization failed");
        return kExitConfig;
    }
    if (!daemonize_if_asked()) return kExitConfig;
    proctitle::set("lowphp-fpm: master process (" + cfg_.path + ")");
    base_.reset(event_base_new());
    if (!create_pools() || !open_pool_logs(false) || !create_listeners() || !write_pid_file()) {
        ZLOG_ERROR("FPM initialization failed");
        notify_parent(false);
        cleanup();
        return kExitConfig;
    }
    install_events();
    // Without inotify the pools serve on, unwatched (logged by FileWatch):
    // a reload must never take the server down for a development aid.
    watch_worker_files();
    // Handlers are in place: take the signals a reload kept blocked (and pending).
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // -O only matters in the foreground: a daemon never keeps its starter's stderr.
    log::set_launched(opts_.force_stderr &&
                      !cfg_.global.daemonize); // from here on, only the error log (as php-fpm)
    ZLOG_NOTICE("fpm is running, pid %d", static_cast<int>(getpid()));
    bool ok = true;
    for (auto& p : pools_) {
        auto inherited = handover_.channels.find(p->name());
        ok = ok &&
             p->open_parking(inherited == handover_.channels.end() ? nullptr : &inherited->second);
        if (inherited != handover_.channels.end()) handover_.channels.erase(inherited);
    }
    if (ok) adopt_previous_generation();
    // Only ondemand pools: ready now, before the zygotes' PHP start-ups take the CPU.
    if (ok) pool_ready();
    for (size_t i = 0; i < pools_.size() && ok; ++i)
        ok = pools_[i]->start();
    if (!ok) {
        ZLOG_ERROR("FPM initialization failed");
        notify_parent(false);
        begin_stop(State::Terminating);
    }
    event_base_dispatch(base_.get());
    cleanup();
    ZLOG_NOTICE("exiting, bye-bye!");
    return 0;
}

void Master::on_signal(int signo) {
    ZLOG_DEBUG("received %s", log::signal_name(signo).c_str());
    switch (signo) {
    case SIGCHLD:
        reap_children();
        break;
    case SIGINT:
    case SIGTERM:
        begin_stop(State::Terminating);
        break;
    case SIGQUIT:
        begin_stop(State::Finishing);
        break;
    case SIGUSR1:
        if (log::reopen())
            ZLOG_NOTICE("error log file re-opened");
        else
            ZLOG_SYSERROR("unable to re-open error log file");
        open_pool_logs(true);
        break;
    case SIGUSR2:
        if (state_ == State::Running && !configuration_loads()) break;
        begin_stop(State::Reloading);
        break;
    }
}

// Beyond php-fpm, whose new image exits when the configuration no longer
// loads (the site goes down): it is read first, as the new image will read
// it. If it does not load, the reload is refused with the reader's errors
// and the running generation goes on serving.
bool Master::configuration_loads() {
    config::ParseOptions po = opts_.parse;
    po.open_log_files = false; // the new image opens them
    config::ParseResult parsed = config::load(opts_.config_path, po);
    std::vector<pool::Identity> identities; // the new image resolves its own
    if (!parsed.config) {
        log_config_messages(parsed.messages, 0, parsed.messages.size());
    } else if (pool::check_identities(*parsed.config, opts_.run_as_root, /*test=*/false,
                                      /*notices=*/false, identities)) {
        return true;
    }
    ZLOG_ERROR("reload refused: the configuration file %s does not load; the running "
               "configuration goes on",
               opts_.config_path.c_str());
    return false;
}

// access.log and slowlog of every pool (fpm_log_open). On SIGUSR1 the files are
// reopened and the workers, which hold the old ones, are replaced gracefully
// (php-fpm does the same: fpm_pctl_kill_all(SIGQUIT)).
bool Master::open_pool_logs(bool reopen) {
    bool any = false, access_reopened = false;
    for (auto& pool : pools_)
        if (!pool->open_logs(reopen, any, access_reopened)) return false;
    if (access_reopened) ZLOG_NOTICE("access log file re-opened");
    if (reopen && any)
        for (auto& pool : pools_)
            pool->quit_workers();
    return true;
}

// fpm_pctl_kill_all, with its debug lines.
void Master::signal_workers(int signo) {
    int alive = 0;
    for (auto& pool : pools_)
        alive += pool->signal_workers(signo);
    for (pid_t pid : orphans_) // the previous generation of a pool that is gone
        alive += kill(pid, signo) == 0;
    if (alive) ZLOG_DEBUG("%d child(ren) still alive", alive);
}

// QUIT: workers finish what they are serving, then exit. TERM/INT: workers are
// told to stop now and are killed a second later if they have not.
void Master::begin_stop(State how, bool announce) {
    if (state_ == State::Terminating || state_ == how ||
        (state_ == State::Reloading && how == State::Finishing))
        return;
    // Not up yet, or on its way out (php-fpm: only TERM overrides QUIT): ignored.
    if ((state_ == State::Starting || state_ == State::Finishing) && how == State::Reloading)
        return;
    state_ = how;
    systemd_heartbeat_.reset();
    systemd_notify::stopping(how == State::Reloading);
    if (announce)
        ZLOG_NOTICE(how == State::Finishing   ? "Finishing ..."
                    : how == State::Reloading ? "Reloading in progress ..."
                                              : "Terminating ...");
    ZLOG_DEBUG("switching to '%s' state", how == State::Finishing   ? "finishing"
                                          : how == State::Reloading ? "reloading"
                                                                    : "terminating");
    if (how == State::Reloading) { // the next generation starts while this one serves
        for (auto& p : pools_)
            p->stop();
        reexec();
        return;
    }
    int signo = how == State::Terminating ? SIGTERM : SIGQUIT;
    signal_workers(signo);
    for (auto& p : pools_) {
        p->close_parked(); // idle kept connections: nothing is in flight on them
        p->stop();
    }
    int timeout = cfg_.global.process_control_timeout;
    if (how == State::Terminating || timeout > 0) {
        escalate_event_ = make_event(base_.get(), -1, 0,
                                     [this](evutil_socket_t, short) { signal_workers(SIGKILL); });
        struct timeval tv = {how == State::Terminating ? 1 : timeout, 0};
        escalate_event_->add(&tv);
    }
    child_gone();
}

// The last child of a stopping master is gone: it exits, or re-executes itself.
void Master::child_gone() {
    if (!stopping()) return;
    if (!orphans_.empty()) return;
    for (auto& p : pools_)
        if (!p->finished()) return;
    event_base_loopbreak(base_.get());
}

void Master::on_tick() {
    if (state_ != State::Running && state_ != State::Starting) return;
    for (auto& p : pools_)
        p->manage();
}

void Master::cleanup() {
    for (auto& p : pools_) {
        net::remove_socket_file(p->listener);
        p->listener.fd.reset();
        if (p->status_listener.fd) net::remove_socket_file(p->status_listener);
        p->status_listener.fd.reset();
    }
    if (!pid_path_.empty()) unlink(pid_path_.c_str());
    signal_events_.clear();
    tick_event_.reset();
    heartbeat_event_.reset();
    escalate_event_.reset();
    pools_.clear(); // their events before the event base
}

void log_config_messages(const std::vector<config::Message>& messages, size_t from, size_t to) {
    for (size_t i = from; i < to && i < messages.size(); ++i) {
        const auto& m = messages[i];
        if (m.raw) // the INI scanner's own lines carry no log prefix in php-fpm
            fprintf(stderr, "%s\n", m.text.c_str());
        else
            log::write(m.level, "fpm_conf_init_main", 0, false, "%s", m.text.c_str());
    }
}

int run(config::Config cfg, std::vector<pool::Identity> identities, const Options& opts) {
    Master m(std::move(cfg), std::move(identities), opts);
    return m.run();
}

} // namespace lowphp::master
