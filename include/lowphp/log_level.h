// php-fpm's zlog levels, same numeric order (debug is the most verbose): what
// the config's log_level names and every log line carries. Its own header so
// that log/ needs nothing else of config/.
#pragma once

namespace lowphp::config {

enum class LogLevel { Debug = 1, Notice = 2, Warning = 3, Error = 4, Alert = 5 };

// syslog.facility name -> its LOG_* value (as -tt prints it); -1 when unknown.
int syslog_facility_number(const char* name);

} // namespace lowphp::config
