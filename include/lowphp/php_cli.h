// One-shot PHP start-ups for php-fpm's informational flags (-v, -i, -m). These
// run in the invoking process and exit; the master role never starts PHP.
#pragma once

#include "lowphp/php_ini_options.h"

namespace lowphp::sapi {

// Startup: PHP starts and stops, printing nothing of its own (-t: php-fpm's
// test starts PHP, so a broken php.ini or extension shows there).
enum class InfoMode { Version, Info, Modules, Startup };

int print_info(InfoMode mode, const PhpIniOptions& ini);

} // namespace lowphp::sapi
