// access.format parsed as fpm_log.c's fpm_log_write walks it in test mode,
// with php-fpm 8.2's warnings word for word.
#include <algorithm>
#include <string_view>
#include <strings.h>
#include <utility>

#include "lowphp/access_format.h"

namespace lowphp::config {
namespace {

// The modifiers one of %C, %d and %M takes (case-insensitive).
struct Units {
    char letter;
    AccessUnit without;  // the unit when no modifier is given
    const char* allowed; // php-fpm's wording of the list
    std::vector<std::pair<const char*, AccessUnit>> names;
};

const Units* units_of(char letter) {
    using U = AccessUnit;
    static const Units table[] = {
        {'C',
         U::CpuTotal,
         "'total', 'user' or 'system'",
         {{"total", U::CpuTotal}, {"user", U::CpuUser}, {"system", U::CpuSystem}}},
        // php-fpm accepts the misspelt "mili" and "miliseconds" too.
        {'d',
         U::Seconds,
         "'seconds', 'milli', 'milliseconds', 'micro' or 'microseconds'",
         {{"seconds", U::Seconds},
          {"milliseconds", U::Milliseconds},
          {"milli", U::Milliseconds},
          {"miliseconds", U::Milliseconds},
          {"mili", U::Milliseconds},
          {"microseconds", U::Microseconds},
          {"micro", U::Microseconds}}},
        {'M',
         U::Bytes,
         "'bytes', 'kilo', 'kilobytes', 'mega' or 'megabytes'",
         {{"bytes", U::Bytes},
          {"kilobytes", U::Kilobytes},
          {"kilo", U::Kilobytes},
          {"megabytes", U::Megabytes},
          {"mega", U::Megabytes}}},
    };
    for (const Units& u : table)
        if (u.letter == letter) return &u;
    return nullptr;
}

std::string resolve_unit(const Units& u, const std::string& mod, AccessUnit& unit) {
    unit = u.without;
    if (mod.empty()) return "";
    for (const auto& [name, value] : u.names)
        if (strcasecmp(name, mod.c_str()) == 0) return unit = value, "";
    return std::string("only ") + u.allowed + " are allowed as a modifier for %" + u.letter +
           " ('" + mod + "')";
}

// One specifier: "" or php-fpm's warning; fills `t`.
std::string specifier(char c, const std::string& mod, AccessToken& t) {
    t.letter = c;
    t.text = mod;
    if (const Units* u = units_of(c)) return resolve_unit(*u, mod, t.unit);
    if (c == 'e' && mod.empty())
        return "the name of the environment variable must be set between embraces for %e";
    if (c == 'o' && mod.empty())
        return "the name of the header must be set between embraces for %o";
    if (c == 'e' || c == 'o' || c == 't' || c == 'T') return ""; // %t, %T: a strftime format
    // A string_view, not strchr: a NUL after '%' is an invalid token too.
    if (std::string_view("%flmnpPqQrRsu").find(c) == std::string_view::npos)
        return std::string("Invalid token in the access.format (%") + c + ")";
    if (!mod.empty()) return std::string("embrace is not allowed for modifier %") + c;
    return "";
}

// Reads "{modifier}" at format[i] (cut at 128 bytes, as php-fpm's buffer) and
// moves i to the letter after it; false when no letter follows a '}'.
bool read_modifier(const std::string& format, size_t& i, std::string& mod) {
    size_t close = format.find('}', i + 1);
    if (close == std::string::npos || close + 1 >= format.size()) return false;
    mod = format.substr(i + 1, std::min<size_t>(close - i - 1, 128));
    i = close + 1;
    return true;
}

} // namespace

AccessFormat parse_access_format(const std::string& format) {
    AccessFormat f;
    std::string literal;
    for (size_t i = 0; i < format.size(); ++i) {
        if (format[i] != '%') {
            literal += format[i];
            continue;
        }
        if (++i >= format.size()) break; // a lone '%' at the end prints nothing
        std::string mod;
        if (format[i] == '{' && !read_modifier(format, i, mod)) {
            f.error = "missing closing embrace in the access.format";
            break;
        }
        AccessToken t;
        f.error = specifier(format[i], mod, t);
        if (!f.error.empty()) break;
        if (t.letter == '%') {
            literal += '%';
            continue;
        }
        if (!literal.empty()) f.tokens.push_back({0, std::exchange(literal, {}), {}});
        f.tokens.push_back(std::move(t));
    }
    if (!literal.empty()) f.tokens.push_back({0, std::move(literal), {}});
    return f;
}

} // namespace lowphp::config
