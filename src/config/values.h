// Internal to config/: the line syntax of php-fpm.conf and its value types.
// php-fpm does not use a generic INI reader: it feeds each line on its own to the
// Zend INI scanner (ZEND_INI_SCANNER_NORMAL), so quotes, ${VAR}, yes/no keywords,
// constants and | & ^ ~ ! expressions are resolved before fpm_conf.c sees a value.
#pragma once

#include <optional>
#include <string>

namespace lowphp::config::values {

// One scanned line. A syntax error is worded as PHP's parser prints it.
struct Line {
    enum Kind { Empty, Section, Entry, NoValue, SyntaxError } kind = Empty;
    std::string name;                  // section name or directive name
    std::optional<std::string> offset; // php_value[offset]; "" for name[]
    std::string value;                 // scanned value (or the syntax error text)
    // An entry's two sides of its '=' as written, for --migrate's report ("= {}":
    // the other kinds of line are built without them, -Wmissing-field-initializers).
    std::string written_name = {}, written_value = {};
};

Line scan_line(const std::string& line);

// fpm_conf.c's value checks; each returns "" or php-fpm's reason text.
std::string parse_bool(const std::string& v, bool& out);
std::string parse_int(const std::string& v, int& out);
std::string parse_size(const std::string& v, uint64_t& out);
std::string parse_time(const std::string& v, int& out);
// lowphp's durations: "500ms", "3s", "1m", or plain seconds; into milliseconds.
std::string parse_duration_ms(const std::string& v, int& out);

} // namespace lowphp::config::values
