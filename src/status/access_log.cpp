// access.log lines: the tokens config::parse_access_format made of a pool's
// access.format, each replaced by the request's fact.
#include <cstdio>

#include "lowphp/access_format.h"
#include "lowphp/access_log.h"

namespace lowphp::status {
namespace {

std::string fixed3(double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.3f", v);
    return buf;
}

std::string strftime_text(time_t t, const std::string& fmt) {
    struct tm tm;
    localtime_r(&t, &tm);
    char buf[129] = {0};
    strftime(buf, sizeof buf - 1, fmt.empty() ? "%d/%b/%Y:%H:%M:%S %z" : fmt.c_str(), &tm);
    return buf;
}

std::string cpu(const AccessRecord& r, config::AccessUnit unit) {
    double v = unit == config::AccessUnit::CpuUser     ? r.cpu_user
               : unit == config::AccessUnit::CpuSystem ? r.cpu_system
                                                       : r.cpu_user + r.cpu_system;
    char buf[64];
    snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

std::string duration(const AccessRecord& r, config::AccessUnit unit) {
    double us = static_cast<double>(r.duration_us);
    if (unit == config::AccessUnit::Milliseconds) return fixed3(us / 1e3);
    if (unit == config::AccessUnit::Microseconds) return std::to_string(r.duration_us);
    return fixed3(us / 1e6);
}

std::string memory(const AccessRecord& r, config::AccessUnit unit) {
    if (unit == config::AccessUnit::Kilobytes) return std::to_string(r.memory / 1024);
    if (unit == config::AccessUnit::Megabytes) return std::to_string(r.memory / 1024 / 1024);
    return std::to_string(r.memory);
}

std::string or_dash(const std::string& s) {
    return s.empty() ? "-" : s;
}

std::string header(const AccessRecord& r, const std::string& name) {
    auto v = r.header ? r.header(name) : std::nullopt;
    return v && !v->empty() ? *v : "-";
}

// One token of a parsed (valid) format.
std::string expand(const config::AccessToken& t, const AccessRecord& r) {
    switch (t.letter) {
    case 0:
        return t.text;
    case 'C':
        return cpu(r, t.unit);
    case 'd':
        return duration(r, t.unit);
    case 'e':
        return (r.param ? r.param(t.text) : std::nullopt).value_or("-");
    case 'f':
        return or_dash(r.script);
    case 'l':
        return std::to_string(r.content_length);
    case 'm':
        return or_dash(r.method);
    case 'M':
        return memory(r, t.unit);
    case 'n':
        return or_dash(r.pool);
    case 'o':
        return header(r, t.text);
    case 'p':
        return std::to_string(r.pid);
    case 'P':
        return std::to_string(r.ppid);
    case 'q':
        return r.query;
    case 'Q':
        return r.query.empty() ? "" : "?";
    case 'r':
        return r.uri;
    case 'R':
        return or_dash(r.remote_ip);
    case 's':
        return std::to_string(r.status);
    case 't':
        return strftime_text(r.accepted, t.text);
    case 'T':
        return strftime_text(r.now, t.text);
    case 'u':
        return r.user;
    }
    return "";
}

} // namespace

// A format that fails the start-up check is rendered up to its first error,
// as php-fpm's walk leaves the line.
std::string format_access_line(const std::string& format, const AccessRecord& r, bool& truncated) {
    std::string line;
    for (const config::AccessToken& t : config::parse_access_format(format).tokens)
        line += expand(t, r);
    truncated = line.size() > kAccessLineMax;
    if (truncated) line.resize(kAccessLineMax);
    return line;
}

} // namespace lowphp::status
