// Command line settings that reach PHP (php-fpm's -c, -n, -d): read by main,
// carried by the master to each zygote, applied by sapi/ at PHP's start-up.
#pragma once

#include <string>
#include <vector>

namespace lowphp {

struct PhpIniOptions {
    std::string ini_path;             // -c (file or directory), "" = default
    bool no_ini = false;              // -n
    std::vector<std::string> defines; // -d name=value, in order
};

} // namespace lowphp
