// The process-wide log sink: error_log file, stderr or syslog, as php-fpm's zlog.
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <fcntl.h>
#include <pthread.h>
#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include "lowphp/log.h"

namespace lowphp::log {
namespace {

struct State {
    Settings settings;
    int fd = -1;     // -1: stderr
    int divert = -1; // >= 0: every line goes there instead (divert_to)
    bool (*divert_wanted)(const char*) = nullptr;
    bool syslog = false;
    bool launched = false;
    std::string path;
    ExternalLogger external = nullptr;
    pthread_t external_thread{}; // the only thread whose lines go to `external`
};

State& state() {
    static State s;
    return s;
}

// An unknown name (the config reader refuses it) falls back to php-fpm's default.
int facility_or_daemon(const std::string& name) {
    int f = config::syslog_facility_number(name.c_str());
    return f < 0 ? LOG_DAEMON : f;
}

int syslog_priority(LogLevel level) {
    switch (level) {
    case LogLevel::Debug:
        return LOG_DEBUG;
    case LogLevel::Notice:
        return LOG_NOTICE;
    case LogLevel::Warning:
        return LOG_WARNING;
    case LogLevel::Error:
        return LOG_ERR;
    case LogLevel::Alert:
        return LOG_ALERT;
    }
    return LOG_NOTICE;
}

void write_all(int fd, const std::string& s) {
    const char* p = s.data();
    size_t left = s.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return; // nowhere left to report a failing log write
        p += n;
        left -= static_cast<size_t>(n);
    }
}

} // namespace

void configure(const Settings& s) {
    state().settings = s;
}
const Settings& settings() {
    return state().settings;
}
int fd() {
    return state().syslog ? -1 : (state().fd < 0 ? STDERR_FILENO : state().fd);
}
void set_fd(int fd) {
    state().fd = fd;
}
void set_external_logger(ExternalLogger logger) {
    state().external = logger;
    state().external_thread = pthread_self();
}

bool use_error_log(bool daemonize, bool force_stderr) {
    // php-fpm logs to stderr only when in the foreground on a terminal (or -O).
    return daemonize || (!isatty(STDERR_FILENO) && !force_stderr);
}

bool open_target(const std::string& error_log, const std::string& ident,
                 const std::string& facility) {
    State& s = state();
    // Opened once already, by the configuration check: keep that descriptor.
    if (!s.syslog && s.fd >= 0 && s.path == error_log) return true;
    if (error_log == "syslog") {
        static std::string kept_ident; // openlog keeps the pointer
        kept_ident = ident;
        openlog(kept_ident.c_str(), LOG_PID | LOG_CONS, facility_or_daemon(facility));
        s.syslog = true;
        return true;
    }
    int fd = ::open(error_log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    s.path = error_log;
    s.fd = fd;
    return true;
}

bool reopen() {
    State& s = state();
    if (s.syslog || s.path.empty()) return true;
    int fd = ::open(s.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    // Keep the same descriptor number: children and stderr refer to it.
    if (s.fd >= 0) {
        dup2(fd, s.fd);
        ::close(fd);
    } else {
        s.fd = fd;
    }
    if (s.launched) dup2(s.fd, STDERR_FILENO);
    return true;
}

int& original_stderr() {
    static int fd = -1;
    return fd;
}

void set_launched(bool force_stderr) {
    State& s = state();
    // After start-up stderr itself points at the error log, so stray writes by
    // libraries land there too (php-fpm: fpm_stdio_redirect_stderr_to_error_log),
    // or at /dev/null with syslog (fpm_stdio_init_final). The original is kept
    // for PHP's start-up messages (the zygotes write them there) and for a
    // reload, which hands it to the new image; a daemon lets it go once ready.
    bool to_file = s.fd >= 0 && s.fd != STDERR_FILENO;
    if (!force_stderr && (s.syslog || to_file)) {
        int target = to_file ? s.fd : ::open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (target >= 0) {
            if (original_stderr() < 0) original_stderr() = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
            dup2(target, STDERR_FILENO);
            if (!to_file) ::close(target);
        }
    }
    s.launched = true;
}

void close_original_stderr() {
    if (original_stderr() >= 0) ::close(original_stderr());
    original_stderr() = -1;
}

int original_stderr_fd() {
    return original_stderr();
}

void restore_original_stderr() {
    if (original_stderr() >= 0) dup2(original_stderr(), STDERR_FILENO);
}

void divert_to(int fd, bool (*wanted)(const char* message)) {
    state().divert = fd;
    state().divert_wanted = fd >= 0 ? wanted : nullptr;
}

void write_raw(const std::string& line) {
    State& s = state();
    if (s.divert >= 0) {
        if (!s.divert_wanted || s.divert_wanted(line.c_str())) write_all(s.divert, line + "\n");
        return;
    }
    if (s.syslog) {
        syslog(LOG_WARNING, "%s", line.c_str());
        return;
    }
    write_all(s.fd < 0 ? STDERR_FILENO : s.fd, line + "\n");
}

void write(LogLevel level, const char* function, int line, bool with_errno, const char* fmt, ...) {
    State& s = state();
    int saved_errno = errno;
    // Worker output lines can be as long as log_limit: no fixed-size buffer.
    std::string msg_buf(1024, '\0');
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg_buf.data(), msg_buf.size(), fmt, ap);
    va_end(ap);
    if (n >= static_cast<int>(msg_buf.size())) {
        msg_buf.resize(static_cast<size_t>(n) + 1);
        va_start(ap, fmt);
        vsnprintf(msg_buf.data(), msg_buf.size(), fmt, ap);
        va_end(ap);
    }
    const char* msg = msg_buf.c_str();
    // The hook writes into the FastCGI connection the serving thread owns: a
    // helper thread's line (slowlog, idle connections) goes to the log only.
    if (s.external && pthread_equal(pthread_self(), s.external_thread))
        s.external(level, msg, strlen(msg));
    if (level < s.settings.level) {
        errno = saved_errno;
        return;
    }
    bool debug = s.settings.level == LogLevel::Debug;
    struct timeval tv;
    gettimeofday(&tv, nullptr);
    bool to_syslog = s.syslog && s.divert < 0;
    std::string text = to_syslog ? syslog_prefix(level, debug, getpid(), function, line)
                                 : line_prefix(level, s.settings.is_child, debug, tv.tv_sec,
                                               tv.tv_usec, getpid(), function, line);
    text += msg;
    if (with_errno) text += errno_suffix(saved_errno);
    text = truncate_to_limit(std::move(text), s.settings.limit);
    if (s.divert >= 0) {
        if (!s.divert_wanted || s.divert_wanted(msg)) write_all(s.divert, text + '\n');
    } else if (s.syslog) {
        // php-fpm 8.2 passes the configured log_level, not the message's level, as
        // the syslog priority (zlog.c: syslog_priorities[zlog_level]); kept so
        // syslog filters see what they saw with php-fpm. The level is in the text.
        syslog(syslog_priority(s.settings.level), "%s", text.c_str());
    } else {
        text += '\n';
        int out = s.fd < 0 ? STDERR_FILENO : s.fd;
        write_all(out, text);
        if (out != STDERR_FILENO && !s.launched && level >= LogLevel::Notice)
            write_all(STDERR_FILENO, text);
    }
    errno = saved_errno;
}

std::string signal_name(int signo) {
    const char* abbrev = sigabbrev_np(signo);
    return abbrev ? std::string("SIG") + abbrev : std::string();
}

} // namespace lowphp::log
