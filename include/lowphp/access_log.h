// access.log lines: a pool's access.format (its syntax and start-up check are
// config/'s, lowphp/access_format.h) rendered into php-fpm's 1024-byte line.
// Pure: the worker gathers the request's facts into an AccessRecord and
// writes the line itself.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <string>

namespace lowphp::status {

struct AccessRecord {
    uint64_t duration_us = 0;
    double cpu_user = 0, cpu_system = 0; // % of one CPU over the request's duration
    std::string script, method, query, uri, remote_ip, user, pool;
    uint64_t content_length = 0;
    uint64_t memory = 0; // peak bytes
    int status = 0;
    long pid = 0, ppid = 0;
    time_t accepted = 0, now = 0;
    // %{NAME}e: a FastCGI param; %{Name}o: a response header's value.
    std::function<std::optional<std::string>(const std::string&)> param;
    std::function<std::optional<std::string>(const std::string&)> header;
};

// The line (without its '\n'), cut at php-fpm's 1024 bytes; `truncated` says so.
std::string format_access_line(const std::string& format, const AccessRecord& r, bool& truncated);

constexpr size_t kAccessLineMax = 1024;

} // namespace lowphp::status
