// The Zend INI scanner as php-fpm uses it (one line at a time, NORMAL mode) and
// fpm_conf.c's typed value checks. Behaviour observed on php-fpm 8.2 with -tt.
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <map>

#include "values.h"

namespace lowphp::config::values {
namespace {

const std::string kUnknown = " in Unknown on line ";

// Constants the Zend INI parser would resolve. Only the core ones php-fpm pools
// use (error_reporting masks...); an unknown name stays a plain string, as in PHP.
const std::map<std::string, std::string>& constants() {
    static const std::map<std::string, std::string> c = {
        {"E_ERROR", "1"},
        {"E_WARNING", "2"},
        {"E_PARSE", "4"},
        {"E_NOTICE", "8"},
        {"E_CORE_ERROR", "16"},
        {"E_CORE_WARNING", "32"},
        {"E_COMPILE_ERROR", "64"},
        {"E_COMPILE_WARNING", "128"},
        {"E_USER_ERROR", "256"},
        {"E_USER_WARNING", "512"},
        {"E_USER_NOTICE", "1024"},
        {"E_STRICT", "2048"},
        {"E_RECOVERABLE_ERROR", "4096"},
        {"E_DEPRECATED", "8192"},
        {"E_USER_DEPRECATED", "16384"},
        {"E_ALL", "32767"},
        {"PHP_EOL", "\n"},
        {"DIRECTORY_SEPARATOR", "/"},
        {"PATH_SEPARATOR", ":"},
        {"PHP_OS", "Linux"},
        {"PHP_OS_FAMILY", "Linux"},
        {"PHP_INT_SIZE", "8"},
        {"PHP_INT_MAX", "9223372036854775807"},
    };
    return c;
}

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// The scanner's keywords, case-insensitive, only when they are the whole value.
std::optional<std::string> keyword(const std::string& word) {
    for (const char* t : {"true", "yes", "on"})
        if (strcasecmp(word.c_str(), t) == 0) return "1";
    for (const char* f : {"false", "no", "off", "none", "null"})
        if (strcasecmp(word.c_str(), f) == 0) return "";
    return std::nullopt;
}

// Recursive descent over one value: concatenations of barewords, "strings",
// 'raw strings' and ${VAR}, joined by | & ^ (left-assoc) with ~ ! and ( ).
class ValueScanner {
  public:
    explicit ValueScanner(const std::string& s) : s_(s) {}

    // Returns the value, or sets `error` to PHP's syntax error line.
    std::string run(std::string& error) {
        std::string v = expr();
        skip_ws();
        if (error_.empty() && !at_end()) fail_unexpected();
        error = error_;
        return v;
    }

  private:
    const std::string& s_;
    size_t pos_ = 0;
    std::string error_;

    bool at_end() const { return pos_ >= s_.size() || s_[pos_] == ';'; }
    void skip_ws() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\r'))
            ++pos_;
    }
    void fail(const std::string& what, int line) {
        if (error_.empty()) error_ = "syntax error, " + what + kUnknown + std::to_string(line);
    }
    void fail_unexpected() { fail(std::string("unexpected '") + s_[pos_] + "'", 1); }
    // The line's newline has been read when the parser notices a missing operand.
    void fail_eol(bool in_parens) {
        fail(in_parens ? "unexpected END_OF_LINE, expecting '^' or '|' or '&' or ')'"
                       : "unexpected END_OF_LINE",
             2);
    }

    static long number(const std::string& v) { return strtol(v.c_str(), nullptr, 10); }

    std::string expr(bool in_parens = false) {
        std::string left = unary(in_parens);
        for (skip_ws(); error_.empty() && !at_end() && strchr("|&^", s_[pos_]); skip_ws()) {
            char op = s_[pos_++];
            long a = number(left), b = number(unary(in_parens));
            left = std::to_string(op == '|' ? (a | b) : op == '&' ? (a & b) : (a ^ b));
        }
        return left;
    }

    std::string unary(bool in_parens) {
        skip_ws();
        if (at_end() && (pos_ > 0 && strchr("|&^~!(", s_[pos_ - 1]))) {
            fail_eol(in_parens);
            return "";
        }
        if (at_end()) return "";
        char c = s_[pos_];
        if (c == '~' || c == '!') {
            ++pos_;
            long v = number(unary(in_parens));
            return std::to_string(c == '~' ? ~v : static_cast<long>(!v));
        }
        if (c == '(') {
            ++pos_;
            std::string v = expr(true);
            skip_ws();
            if (pos_ < s_.size() && s_[pos_] == ')')
                ++pos_;
            else
                fail_eol(true);
            return v;
        }
        return concat();
    }

    std::string concat() {
        std::string out;
        int pieces = 0;
        std::string only_word;
        for (skip_ws(); error_.empty() && !at_end(); skip_ws()) {
            char c = s_[pos_];
            if (strchr("|&^)", c)) break;
            if (strchr("=!~(", c)) {
                fail_unexpected();
                break;
            }
            ++pieces;
            if (c == '"')
                out += quoted();
            else if (c == '\'')
                out += raw();
            else if (c == '$' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '{')
                out += env();
            else
                out += only_word = bareword();
        }
        if (pieces == 1 && !only_word.empty() && out == only_word) {
            if (auto k = keyword(only_word)) return *k;
            auto it = constants().find(only_word);
            if (it != constants().end()) return it->second;
        }
        return out;
    }

    std::string bareword() {
        size_t start = pos_;
        while (pos_ < s_.size() && !strchr(";\"'|&^~!()=", s_[pos_]) &&
               !(s_[pos_] == '$' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '{'))
            ++pos_;
        return trim(s_.substr(start, pos_ - start));
    }

    // "..." : \" and \\ are escapes, ${VAR} expands; a line cannot continue it.
    std::string quoted() {
        std::string out;
        for (++pos_; pos_ < s_.size(); ++pos_) {
            char c = s_[pos_];
            if (c == '"') {
                ++pos_;
                return out;
            }
            if (c == '\\' && pos_ + 1 < s_.size() &&
                (s_[pos_ + 1] == '"' || s_[pos_ + 1] == '\\')) {
                out += s_[++pos_];
            } else if (c == '$' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '{') {
                out += env();
                --pos_;
            } else {
                out += c;
            }
        }
        fail("unexpected end of file, expecting TC_DOLLAR_CURLY or TC_QUOTED_STRING or '\"'", 2);
        return out;
    }

    std::string raw() {
        size_t end = s_.find('\'', pos_ + 1);
        if (end == std::string::npos) end = s_.size();
        std::string out = s_.substr(pos_ + 1, end - pos_ - 1);
        pos_ = end < s_.size() ? end + 1 : end;
        return out;
    }

    // ${VAR}: the environment (an unset variable is the empty string).
    std::string env() {
        size_t end = s_.find('}', pos_ + 2);
        if (end == std::string::npos) end = s_.size();
        const char* v = getenv(s_.substr(pos_ + 2, end - pos_ - 2).c_str());
        pos_ = end < s_.size() ? end + 1 : end;
        return v ? v : "";
    }
};

Line section(const std::string& t) {
    size_t end = t.find(']');
    if (end == std::string::npos)
        return {Line::SyntaxError, "", std::nullopt,
                "syntax error, unexpected end of file, expecting ']'" + kUnknown + "1"};
    // Anything but a comment after the section is an entry without a value.
    std::string rest = trim(t.substr(end + 1));
    if (!rest.empty() && rest[0] != ';') return {Line::NoValue, rest, std::nullopt, ""};
    return {Line::Section, t.substr(1, end - 1), std::nullopt, ""};
}

// php_value[ x ] keeps "x " (the scanner drops leading blanks only) and unquotes.
std::string offset_text(const std::string& raw) {
    std::string o = raw.substr(std::min(raw.size(), raw.find_first_not_of(" \t")));
    if (o.size() >= 2 && o.front() == '"' && o.back() == '"') o = o.substr(1, o.size() - 2);
    return o;
}

} // namespace

Line scan_line(const std::string& raw) {
    std::string t = trim(raw);
    if (t.empty() || t[0] == ';') return {};
    if (t[0] == '[') return section(t);
    Line l;
    size_t stop = t.find_first_of("=[;");
    l.name = trim(t.substr(0, stop));
    if (stop != std::string::npos && t[stop] == '[') {
        size_t close = t.find(']', stop);
        if (close == std::string::npos) return {Line::NoValue, l.name, std::nullopt, ""};
        l.offset = offset_text(t.substr(stop + 1, close - stop - 1));
        stop = t.find_first_not_of(" \t", close + 1);
    }
    if (stop == std::string::npos || t[stop] != '=') {
        l.kind = Line::NoValue;
        return l;
    }
    std::string rest = t.substr(stop + 1), error;
    l.value = ValueScanner(rest).run(error);
    if (!error.empty()) return {Line::SyntaxError, "", std::nullopt, error};
    l.kind = Line::Entry;
    l.written_name = trim(t.substr(0, stop));
    l.written_value = trim(rest);
    return l;
}

// fpm_conf_set_boolean, after the scanner turned yes/on/true into "1": quoted
// words are compared exactly (lower case), anything else is refused.
std::string parse_bool(const std::string& v, bool& out) {
    for (const char* y : {"1", "yes", "on", "true"})
        if (v == y) return out = true, "";
    for (const char* n : {"", "0", "no", "off", "false", "none"})
        if (v == n) return out = false, "";
    return "invalid boolean value";
}

// fpm_conf_set_integer: digits with an optional leading '-', then atoi (which
// truncates to int as php-fpm's does).
std::string parse_int(const std::string& v, int& out) {
    for (size_t i = 0; i < v.size(); ++i)
        if (!isdigit(static_cast<unsigned char>(v[i])) && !(i == 0 && v[i] == '-'))
            return "is not a valid number (greater or equal than zero)";
    out = static_cast<int>(strtoll(v.c_str(), nullptr, 10));
    return "";
}

// A byte count as php.ini writes them: digits with an optional K, M or G.
std::string parse_size(const std::string& v, uint64_t& out) {
    std::string num = v;
    uint64_t unit = 1;
    if (!num.empty() && strchr("kKmMgG", num.back())) {
        char u = static_cast<char>(toupper(static_cast<unsigned char>(num.back())));
        unit = u == 'K' ? 1024ull : u == 'M' ? 1024ull * 1024 : 1024ull * 1024 * 1024;
        num.pop_back();
    }
    if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos || num.size() > 12)
        return "is not a valid size (digits with an optional K, M or G)";
    out = std::stoull(num) * unit;
    return "";
}

// fpm_conf_set_time: a number with an optional s/m/h/d suffix ("m" alone is 0).
std::string parse_time(const std::string& v, int& out) {
    if (v.empty()) return "invalid time value";
    std::string num = v.substr(0, v.size() - 1);
    switch (v.back()) {
    case 's':
        out = atoi(num.c_str());
        return "";
    case 'm':
        out = 60 * atoi(num.c_str());
        return "";
    case 'h':
        out = 3600 * atoi(num.c_str());
        return "";
    case 'd':
        out = 86400 * atoi(num.c_str());
        return "";
    default:
        break;
    }
    if (!isdigit(static_cast<unsigned char>(v.back()))) return "unknown suffix used in time value";
    out = atoi(v.c_str());
    return "";
}

std::string parse_duration_ms(const std::string& v, int& out) {
    char* end = nullptr;
    long n = std::strtol(v.c_str(), &end, 10);
    std::string unit = end ? end : "";
    if (v.empty() || end == v.c_str() || n < 0) return "invalid duration";
    long scale = unit == "ms" ? 1 : unit == "" || unit == "s" ? 1000 : unit == "m" ? 60000 : 0;
    if (!scale) return "unknown suffix used in duration (ms, s or m)";
    if (n > 86400000L / scale) return "duration too long";
    out = static_cast<int>(n * scale);
    return "";
}

} // namespace lowphp::config::values
