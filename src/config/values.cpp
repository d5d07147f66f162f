// Value syntax of php-fpm.conf: booleans, integers, times with units, ${ENV}
// expansion and quotes, worded as php-fpm reports a bad value.
#include <cctype>
#include <cstdlib>
#include <strings.h>

#include "values.h"

namespace lowphp::config::values {

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    size_t e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
}

// The Zend INI scanner expands ${VAR} from the environment and drops quotes.
std::string unquote_and_expand(const std::string& raw) {
    std::string v = trim(raw);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '$' && i + 1 < v.size() && v[i + 1] == '{') {
            size_t end = v.find('}', i + 2);
            if (end != std::string::npos) {
                const char* env = getenv(v.substr(i + 2, end - i - 2).c_str());
                if (env) out += env;
                i = end;
                continue;
            }
        }
        out += v[i];
    }
    return out;
}

bool parse_bool(const std::string& v, bool& out) {
    static const char* yes[] = {"1", "yes", "on", "true"};
    static const char* no[] = {"0", "no", "off", "false", "none", ""};
    for (const char* y : yes)
        if (strcasecmp(v.c_str(), y) == 0) return out = true, true;
    for (const char* n : no)
        if (strcasecmp(v.c_str(), n) == 0) return out = false, true;
    return false;
}

bool parse_int(const std::string& v, long& out) {
    if (v.empty()) return false;
    size_t i = v[0] == '-' ? 1 : 0;
    if (i == v.size()) return false;
    for (size_t k = i; k < v.size(); ++k)
        if (!isdigit(static_cast<unsigned char>(v[k]))) return false;
    out = strtol(v.c_str(), nullptr, 10);
    return true;
}

// "10", "10s", "5m", "2h", "1d" -> seconds (php-fpm's fpm_conf_set_time).
bool parse_time(const std::string& v, int& out) {
    if (v.empty()) return false;
    std::string num = v;
    int mult = 1;
    char last = v.back();
    if (!isdigit(static_cast<unsigned char>(last))) {
        num = v.substr(0, v.size() - 1);
        switch (last) {
        case 's': mult = 1; break;
        case 'm': mult = 60; break;
        case 'h': mult = 3600; break;
        case 'd': mult = 86400; break;
        default: return false;
        }
    }
    long n;
    if (!parse_int(num, n) || n < 0) return false;
    out = static_cast<int>(n * mult);
    return true;
}

} // namespace lowphp::config::values
