// Pure formatting of php-fpm's log line prefix (zlog_buf_prefix, zlog_print_time).
#include <cstdio>
#include <cstring>
#include <ctime>

#include "lowphp/log.h"

namespace lowphp::log {

const char* level_name(LogLevel level) {
    switch (level) {
    case LogLevel::Debug:
        return "DEBUG";
    case LogLevel::Notice:
        return "NOTICE";
    case LogLevel::Warning:
        return "WARNING";
    case LogLevel::Error:
        return "ERROR";
    case LogLevel::Alert:
        return "ALERT";
    }
    return "unknown value";
}

std::string errno_suffix(int err) {
    return std::string(": ") + strerror(err) + " (" + std::to_string(err) + ")";
}

std::string time_prefix(long sec, long usec, bool debug) {
    char buf[64];
    time_t t = sec;
    struct tm tm;
    size_t len = strftime(buf, sizeof buf, "[%d-%b-%Y %H:%M:%S", localtime_r(&t, &tm));
    if (debug) len += snprintf(buf + len, sizeof buf - len, ".%06d", static_cast<int>(usec));
    len += snprintf(buf + len, sizeof buf - len, "] ");
    return std::string(buf, len);
}

std::string line_prefix(LogLevel level, bool is_child, bool debug, long sec, long usec, int pid,
                        const char* function, int line) {
    std::string out = is_child ? std::string() : time_prefix(sec, usec, debug);
    char buf[256];
    if (!debug) {
        snprintf(buf, sizeof buf, "%s: ", level_name(level));
    } else if (!is_child) {
        snprintf(buf, sizeof buf, "%s: pid %d, %s(), line %d: ", level_name(level), pid, function,
                 line);
    } else {
        snprintf(buf, sizeof buf, "%s: %s(), line %d: ", level_name(level), function, line);
    }
    return out + buf;
}

std::string syslog_prefix(LogLevel level, bool debug, int pid, const char* function, int line) {
    // syslog adds the time, ident and pid itself: zlog only writes "[LEVEL] ".
    char buf[256];
    if (debug)
        snprintf(buf, sizeof buf, "[%s] pid %d, %s(), line %d: ", level_name(level), pid, function,
                 line);
    else
        snprintf(buf, sizeof buf, "[%s] ", level_name(level));
    return buf;
}

std::string truncate_to_limit(std::string line, std::size_t limit) {
    // zlog keeps limit-1 bytes and ends the line with "..." when it overflowed.
    if (limit < 4 || line.size() < limit) return line;
    line.resize(limit - 1);
    line.replace(line.size() - 3, 3, "...");
    return line;
}

} // namespace lowphp::log
