// php-fpm compatible logging (zlog): the same line format, levels and targets,
// so monitoring that greps php-fpm's error_log keeps working.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "lowphp/log_level.h"

namespace lowphp::log {

using config::LogLevel;

const char* level_name(LogLevel level);

// zlog's ZLOG_SYSERROR tail after a message: ": <strerror> (<errno>)".
std::string errno_suffix(int err);

// "[23-Nov-2026 05:21:09] " (with ".%06d" microseconds in debug mode). Children
// write without a timestamp, as php-fpm's children do.
std::string time_prefix(long sec, long usec, bool debug);

// Everything before the message: time (master only), level, and in debug mode
// pid/function. Mirrors zlog_buf_prefix.
std::string line_prefix(LogLevel level, bool is_child, bool debug, long sec, long usec, int pid,
                        const char* function, int line);

// The prefix of a syslog message: "[LEVEL] " (pid/function/line in debug mode).
std::string syslog_prefix(LogLevel level, bool debug, int pid, const char* function, int line);
// Cut a line to log_limit the way zlog does ("..." at the end).
std::string truncate_to_limit(std::string line, std::size_t limit);

// Where the process's log lines go.
enum class Target { Stderr, File, Syslog };

struct Settings {
    LogLevel level = LogLevel::Notice;
    std::size_t limit = 1024;
    bool is_child = false;
};

void configure(const Settings& s);
const Settings& settings();
// php-fpm's fpm_use_error_log: the error log is written unless the master
// runs in the foreground on a terminal, or with -O.
bool use_error_log(bool daemonize, bool force_stderr);
// Open error_log ("syslog" selects syslog). Returns false with errno set on failure.
bool open_target(const std::string& error_log, const std::string& syslog_ident,
                 const std::string& syslog_facility);
// Once startup is over php-fpm stops echoing NOTICE+ lines to stderr, and
// stderr becomes the error log (/dev/null with syslog); the original is kept.
void set_launched(bool force_stderr);
// A daemon, once its caller has exited: the original stderr is not kept.
void close_original_stderr();
// Reopen the error log file (SIGUSR1). Returns false on failure.
bool reopen();
int fd(); // file descriptor of the log target (-1 for syslog)
// Before a reload's execv: stderr back to what the process was started with.
void restore_original_stderr();
// The stderr the process was started with, kept after start-up (-F; -D until
// ready), or -1.
int original_stderr_fd();
void set_fd(int fd);
// Every line goes to `fd` (in the error log's format, syslog or not) until
// divert_to(-1); with `wanted`, only those whose message it accepts.
void divert_to(int fd, bool (*wanted)(const char* message) = nullptr);

// Hook called with the bare message of every log call made on the thread that
// set it (children send it to FastCGI stderr as php-fpm does), whatever the
// level.
using ExternalLogger = void (*)(LogLevel, const char* msg, std::size_t len);
void set_external_logger(ExternalLogger logger);

// A line as it is, without time or level (decorate_workers_output = no).
void write_raw(const std::string& line);

void write(LogLevel level, const char* function, int line, bool with_errno, const char* fmt, ...)
    __attribute__((format(printf, 5, 6)));

// "SIGQUIT" for SIGQUIT, as php-fpm's fpm_signal_names; empty if unknown.
std::string signal_name(int signo);

} // namespace lowphp::log

#define ZLOG_DEBUG(...)                                                                            \
    ::lowphp::log::write(::lowphp::log::LogLevel::Debug, __func__, __LINE__, false, __VA_ARGS__)
#define ZLOG_NOTICE(...)                                                                           \
    ::lowphp::log::write(::lowphp::log::LogLevel::Notice, __func__, __LINE__, false, __VA_ARGS__)
#define ZLOG_WARNING(...)                                                                          \
    ::lowphp::log::write(::lowphp::log::LogLevel::Warning, __func__, __LINE__, false, __VA_ARGS__)
#define ZLOG_ERROR(...)                                                                            \
    ::lowphp::log::write(::lowphp::log::LogLevel::Error, __func__, __LINE__, false, __VA_ARGS__)
#define ZLOG_ALERT(...)                                                                            \
    ::lowphp::log::write(::lowphp::log::LogLevel::Alert, __func__, __LINE__, false, __VA_ARGS__)
#define ZLOG_SYSERROR(...)                                                                         \
    ::lowphp::log::write(::lowphp::log::LogLevel::Error, __func__, __LINE__, true, __VA_ARGS__)
#define ZLOG_SYSWARNING(...)                                                                       \
    ::lowphp::log::write(::lowphp::log::LogLevel::Warning, __func__, __LINE__, true, __VA_ARGS__)
