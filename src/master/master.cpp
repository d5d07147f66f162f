// The master's life: start-up in php-fpm's order and wording, the event loop,
// signals, and a stop that leaves no process and no socket behind.
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <map>

#include "master_internal.h"
#include "lowphp/log.h"
#include "lowphp/proctitle.h"
#include "lowphp/systemd_notify.h"

namespace lowphp::master {
namespace {

Master* g_master = nullptr;

void signal_cb(evutil_socket_t signo, short, void*) { g_master->on_signal(static_cast<int>(signo)); }
void tick_cb(evutil_socket_t, short, void*) { g_master->on_tick(); }

bool use_error_log(bool daemonize, bool force_stderr) {
    // php-fpm logs to stderr only when in the foreground on a terminal (or -O).
    return daemonize || (!isatty(STDERR_FILENO) && !force_stderr);
}

} // namespace

bool Master::setup_logging() {
    log::Settings s;
    s.level = cfg_.global.log_level;
    s.limit = static_cast<size_t>(cfg_.global.log_limit);
    log::configure(s);
    if (!use_error_log(cfg_.global.daemonize, opts_.force_stderr)) return true;
    if (!log::open_target(cfg_.global.error_log, cfg_.global.syslog_ident,
                          cfg_.global.syslog_facility)) {
        ZLOG_SYSERROR("failed to open error_log (%s)", cfg_.global.error_log.c_str());
        return false;
    }
    return true;
}

namespace {

constexpr const char* kInheritedSockets = "LOWPHP_FPM_SOCKETS";

// "listen=fd,listen=fd" left by the master before it re-executed itself.
std::map<std::string, int> inherited_sockets() {
    std::map<std::string, int> out;
    const char* env = getenv(kInheritedSockets);
    std::string list = env ? env : "";
    unsetenv(kInheritedSockets);
    size_t pos = 0;
    while (pos < list.size()) {
        size_t end = list.find(',', pos);
        if (end == std::string::npos) end = list.size();
        std::string item = list.substr(pos, end - pos);
        size_t eq = item.rfind('=');
        if (eq != std::string::npos) out[item.substr(0, eq)] = atoi(item.c_str() + eq + 1);
        pos = end + 1;
    }
    return out;
}

} // namespace

bool Master::create_listeners() {
    auto inherited = inherited_sockets();
    for (auto& pool : pools_) {
        auto it = inherited.find(pool.cfg.listen);
        if (it != inherited.end()) {
            // The socket never closed across the reload: nothing queued is lost.
            ZLOG_NOTICE("using inherited socket fd=%d, \"%s\"", it->second, pool.cfg.listen.c_str());
            fcntl(it->second, F_SETFD, FD_CLOEXEC);
            pool.listener.fd.reset(it->second);
            pool.listener.pool = pool.cfg.name;
            std::string error;
            net::parse_listen(pool.cfg.listen, pool.listener.address, error);
            inherited.erase(it);
            continue;
        }
        pool.listener = net::open_listener(pool.cfg);
        if (!pool.listener.fd) return false;
    }
    for (auto& [listen, fd] : inherited) { // a pool that the new configuration dropped
        close(fd);
        if (!listen.empty() && listen[0] == '/') unlink(listen.c_str());
    }
    return true;
}

// php-fpm's reload: the same pid re-executes the binary on disk (so a package
// upgrade takes effect), handing over the listening sockets by number.
void Master::reexec() {
    std::string list;
    for (auto& p : pools_) {
        if (!p.listener.fd) continue;
        fcntl(p.listener.fd.get(), F_SETFD, 0);
        if (!list.empty()) list += ',';
        list += p.cfg.listen + "=" + std::to_string(p.listener.fd.get());
    }
    setenv(kInheritedSockets, list.c_str(), 1);
    setenv("LOWPHP_FPM_RELOADED", "1", 1);
    std::vector<char*> args;
    for (auto& a : opts_.argv) args.push_back(a.data());
    args.push_back(nullptr);
    close_parked();
    ZLOG_NOTICE("reloading: execv(\"/proc/self/exe\")");
    execv("/proc/self/exe", args.data());
    ZLOG_SYSERROR("execv() failed");
    for (auto& p : pools_) fcntl(p.listener.fd.get(), F_SETFD, FD_CLOEXEC);
    state_ = State::Terminating;
}

bool Master::write_pid_file() {
    pid_path_ = opts_.pid_path.empty() ? cfg_.global.pid : opts_.pid_path;
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

// php-fpm's daemon mode: the parent waits until the child reports start-up
// success, so `php-fpm -D` exits 0 only once the server is ready.
bool Master::daemonize_if_asked() {
    if (getenv("LOWPHP_FPM_RELOADED")) { // already detached before the reload
        unsetenv("LOWPHP_FPM_RELOADED");
        return true;
    }
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
        char ok = 0;
        ssize_t n;
        do n = read(fds[0], &ok, 1);
        while (n < 0 && errno == EINTR);
        _exit(n == 1 && ok == 1 ? 0 : 78);
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
}

void Master::install_events() {
    g_master = this;
    for (int signo : {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2}) {
        EventPtr ev(evsignal_new(base_.get(), signo, signal_cb, nullptr));
        event_add(ev.get(), nullptr);
        signal_events_.push_back(std::move(ev));
    }
    tick_event_.reset(event_new(base_.get(), -1, EV_PERSIST, tick_cb, nullptr));
    struct timeval one_second = {1, 0};
    event_add(tick_event_.get(), &one_second);
}

int Master::run() {
    if (opts_.force_daemon >= 0) cfg_.global.daemonize = opts_.force_daemon == 1;
    if (!setup_logging()) return 78;
    pools_.resize(cfg_.pools.size());
    for (size_t i = 0; i < cfg_.pools.size(); ++i) pools_[i].cfg = cfg_.pools[i];
    signal(SIGPIPE, SIG_IGN);
    if (!daemonize_if_asked()) return 78;
    proctitle::set("lowphp-fpm: master process (" + cfg_.path + ")");
    started_us_ = now_us();
    std::vector<std::string> names;
    std::vector<uint32_t> slots;
    for (auto& p : pools_) {
        names.push_back(p.cfg.name);
        slots.push_back(static_cast<uint32_t>(p.cfg.pm_max_children));
        p.slot_busy.assign(static_cast<size_t>(p.cfg.pm_max_children), false);
    }
    if (!scoreboard_.create(names, slots) || !create_listeners() || !write_pid_file()) {
        ZLOG_ERROR("FPM initialization failed");
        notify_parent(false);
        cleanup();
        return 78;
    }
    base_.reset(event_base_new());
    install_events();
    log::set_launched(opts_.force_stderr); // from here on, only the error log (as php-fpm)
    ZLOG_NOTICE("fpm is running, pid %d", static_cast<int>(getpid()));
    for (size_t i = 0; i < pools_.size(); ++i) {
        if (!open_parking(i) || !start_zygote(i)) {
            ZLOG_ERROR("FPM initialization failed");
            notify_parent(false);
            begin_stop(State::Terminating);
            break;
        }
    }
    event_base_dispatch(base_.get());
    cleanup();
    ZLOG_NOTICE("exiting, bye-bye!");
    return 0;
}

void Master::on_signal(int signo) {
    switch (signo) {
    case SIGCHLD: reap_children(); break;
    case SIGINT:
    case SIGTERM: begin_stop(State::Terminating); break;
    case SIGQUIT: begin_stop(State::Finishing); break;
    case SIGUSR1:
        if (log::reopen()) ZLOG_NOTICE("error log file re-opened");
        else ZLOG_SYSERROR("unable to re-open error log file");
        break;
    case SIGUSR2: begin_stop(State::Reloading); break;
    }
}

void Master::signal_workers(int signo) {
    for (auto& [pid, w] : workers_) kill(pid, signo);
}

// QUIT: workers finish what they are serving, then exit. TERM/INT: workers are
// told to stop now and are killed a second later if they have not.
void Master::begin_stop(State how) {
    if (state_ == State::Terminating || state_ == how ||
        (state_ == State::Reloading && how == State::Finishing))
        return;
    if (state_ == State::Starting && how == State::Reloading) return; // not up yet: ignore
    state_ = how;
    systemd_notify::stopping(how == State::Reloading);
    ZLOG_NOTICE(how == State::Finishing    ? "Finishing ..."
                : how == State::Reloading ? "Reloading in progress ..."
                                          : "Terminating ...");
    int signo = how == State::Terminating ? SIGTERM : SIGQUIT;
    signal_workers(signo);
    stop_signal_sent_ = signo;
    close_parked(); // idle kept connections: nothing is in flight on them
    for (auto& p : pools_) {
        p.zygote_ev.reset();
        p.ondemand_ev.reset();
        p.zygote_ctl.reset(); // a zygote exits when its control socket closes
        if (p.zygote_pid > 0) kill(p.zygote_pid, SIGTERM);
    }
    int timeout = cfg_.global.process_control_timeout;
    if (how == State::Terminating || timeout > 0) {
        escalate_event_.reset(evtimer_new(
            base_.get(),
            [](evutil_socket_t, short, void*) {
                g_master->signal_workers(SIGKILL);
            },
            nullptr));
        struct timeval tv = {how == State::Terminating ? 1 : timeout, 0};
        evtimer_add(escalate_event_.get(), &tv);
    }
    maybe_exit();
}

void Master::maybe_exit() {
    if (!stopping()) return;
    if (!workers_.empty()) return;
    for (auto& p : pools_)
        if (p.zygote_pid > 0) return;
    if (state_ == State::Reloading) reexec();
    event_base_loopbreak(base_.get());
}

void Master::on_tick() {
    if (state_ == State::Running || state_ == State::Starting) manage_pools();
}

void Master::cleanup() {
    for (auto& p : pools_) {
        net::remove_socket_file(p.listener);
        p.listener.fd.reset();
    }
    if (!pid_path_.empty()) unlink(pid_path_.c_str());
    close_parked();
    signal_events_.clear();
    tick_event_.reset();
    escalate_event_.reset();
    for (auto& p : pools_) {
        p.zygote_ev.reset();
        p.ondemand_ev.reset();
    }
    workers_.clear();
}

int run(config::Config cfg, const Options& opts) {
    Master m(std::move(cfg), opts);
    return m.run();
}

} // namespace lowphp::master
