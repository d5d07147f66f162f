// php-fpm's access.format language (fpm_log.c of 8.2): '%' + optional
// '{modifier}' + one letter. The one place that knows the letters and their
// modifiers: config/ checks a pool's format with it at start-up, status/'s
// formatter renders what it parsed, so both agree on the syntax.
#pragma once

#include <string>
#include <vector>

namespace lowphp::config {

// A modifier of %C, %d or %M, resolved once so the formatter needs no names.
enum class AccessUnit {
    None,
    CpuTotal,
    CpuUser,
    CpuSystem,
    Seconds,
    Milliseconds,
    Microseconds,
    Bytes,
    Kilobytes,
    Megabytes
};

// Literal text (letter 0; "%%" is parsed into literal "%") or one specifier.
struct AccessToken {
    char letter = 0;
    std::string text; // the literal, or the modifier between {} (a name, a strftime format)
    AccessUnit unit = AccessUnit::None;
};

// The tokens up to the first error; `error` is "" or the WARNING php-fpm logs
// before "wrong format for access.format".
struct AccessFormat {
    std::vector<AccessToken> tokens;
    std::string error;
};

AccessFormat parse_access_format(const std::string& format);

// Start-up check (php-fpm runs the formatter in test mode): "" when valid.
inline std::string check_access_format(const std::string& format) {
    return parse_access_format(format).error;
}

} // namespace lowphp::config
