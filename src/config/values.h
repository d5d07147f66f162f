// Value syntax helpers of the configuration parser (internal to config/).
#pragma once

#include <string>

namespace lowphp::config::values {

std::string trim(const std::string& s);
std::string unquote_and_expand(const std::string& raw);
bool parse_bool(const std::string& v, bool& out);
bool parse_int(const std::string& v, long& out);
bool parse_time(const std::string& v, int& out);

} // namespace lowphp::config::values
