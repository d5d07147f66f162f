// php-fpm's access.format: '%' + optional '{modifier}' + one letter. The same
// walk validates (no record) and formats (with one), so both agree on syntax.
#include <cinttypes>
#include <cstdio>
#include <strings.h>

#include "lowphp/access_log.h"

namespace lowphp::status {
namespace {

bool is(const std::string& m, const char* name) {
    return strcasecmp(m.c_str(), name) == 0;
}

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

// One specifier. Returns false with `error` set (php-fpm's warning) when invalid;
// `out` receives the text when `r` is given.
bool expand(char c, const std::string& mod, const AccessRecord* r, std::string& out,
            std::string& error) {
    auto bad_modifier = [&](const char* allowed) {
        error = std::string("only ") + allowed + " are allowed as a modifier for %" + c + " ('" +
                mod + "')";
        return false;
    };
    switch (c) {
    case '%':
        out = "%";
        break;
    case 'C': {
        if (!mod.empty() && !is(mod, "total") && !is(mod, "user") && !is(mod, "system"))
            return bad_modifier("'total', 'user' or 'system'");
        if (!r) break;
        double v = is(mod, "user")     ? r->cpu_user
                   : is(mod, "system") ? r->cpu_system
                                       : r->cpu_user + r->cpu_system;
        char buf[64];
        snprintf(buf, sizeof buf, "%.2f", v);
        out = buf;
        break;
    }
    case 'd': {
        double us = r ? static_cast<double>(r->duration_us) : 0;
        if (mod.empty() || is(mod, "seconds"))
            out = fixed3(us / 1e6);
        else if (is(mod, "milliseconds") || is(mod, "milli") || is(mod, "miliseconds") ||
                 is(mod, "mili"))
            out = fixed3(us / 1e3);
        else if (is(mod, "microseconds") || is(mod, "micro"))
            out = r ? std::to_string(r->duration_us) : "";
        else
            return bad_modifier("'seconds', 'milli', 'milliseconds', 'micro' or 'microseconds'");
        break;
    }
    case 'e':
        if (mod.empty()) {
            error = "the name of the environment variable must be set between embraces for %e";
            return false;
        }
        if (r) out = (r->param ? r->param(mod) : std::nullopt).value_or("-");
        break;
    case 'f':
        if (r) out = r->script.empty() ? "-" : r->script;
        break;
    case 'l':
        if (r) out = std::to_string(r->content_length);
        break;
    case 'm':
        if (r) out = r->method.empty() ? "-" : r->method;
        break;
    case 'M': {
        uint64_t m = r ? r->memory : 0;
        if (mod.empty() || is(mod, "bytes"))
            out = std::to_string(m);
        else if (is(mod, "kilobytes") || is(mod, "kilo"))
            out = std::to_string(m / 1024);
        else if (is(mod, "megabytes") || is(mod, "mega"))
            out = std::to_string(m / 1024 / 1024);
        else
            return bad_modifier("'bytes', 'kilo', 'kilobytes', 'mega' or 'megabytes'");
        break;
    }
    case 'n':
        if (r) out = r->pool.empty() ? "-" : r->pool;
        break;
    case 'o':
        if (mod.empty()) {
            error = "the name of the header must be set between embraces for %o";
            return false;
        }
        if (r) {
            auto v = r->header ? r->header(mod) : std::nullopt;
            out = v && !v->empty() ? *v : "-";
        }
        break;
    case 'p':
        if (r) out = std::to_string(r->pid);
        break;
    case 'P':
        if (r) out = std::to_string(r->ppid);
        break;
    case 'q':
        if (r) out = r->query;
        break;
    case 'Q':
        if (r) out = r->query.empty() ? "" : "?";
        break;
    case 'r':
        if (r) out = r->uri;
        break;
    case 'R':
        if (r) out = r->remote_ip.empty() ? "-" : r->remote_ip;
        break;
    case 's':
        if (r) out = std::to_string(r->status);
        break;
    case 't':
    case 'T':
        if (r) out = strftime_text(c == 't' ? r->accepted : r->now, mod);
        return true; // the only letters that take any modifier
    case 'u':
        if (r) out = r->user;
        break;
    default:
        error = std::string("Invalid token in the access.format (%") + c + ")";
        return false;
    }
    if (!mod.empty() && c != 'C' && c != 'd' && c != 'e' && c != 'M' && c != 'o') {
        error = std::string("embrace is not allowed for modifier %") + c;
        return false;
    }
    return true;
}

// Walks `format`; with `r` appends the expansion to `line`. "" or the error.
std::string walk(const std::string& format, const AccessRecord* r, std::string& line) {
    std::string error, piece;
    for (size_t i = 0; i < format.size(); ++i) {
        if (format[i] != '%') {
            line += format[i];
            continue;
        }
        if (++i >= format.size()) break; // a lone '%' at the end prints nothing
        std::string mod;
        if (format[i] == '{') {
            size_t close = format.find('}', i + 1);
            // php-fpm insists on a letter after the '}'
            if (close == std::string::npos || close + 1 >= format.size())
                return "missing closing embrace in the access.format";
            mod = format.substr(i + 1, std::min<size_t>(close - i - 1, 128));
            i = close + 1;
        }
        piece.clear();
        if (!expand(format[i], mod, r, piece, error)) return error;
        line += piece;
    }
    return "";
}

} // namespace

std::string check_access_format(const std::string& format) {
    std::string ignored;
    return walk(format, nullptr, ignored);
}

std::string format_access_line(const std::string& format, const AccessRecord& r, bool& truncated) {
    std::string line;
    walk(format, &r, line);
    truncated = line.size() > kAccessLineMax;
    if (truncated) line.resize(kAccessLineMax);
    return line;
}

} // namespace lowphp::status
