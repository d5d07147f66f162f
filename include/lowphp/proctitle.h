// Process titles as `ps` shows them ("lowphp-fpm: pool www"), the way php-fpm and
// nginx set theirs: by reusing the memory of argv (environ is moved away first).
#pragma once

#include <string>

namespace lowphp::proctitle {

// Call once from main() before anything keeps pointers into environ.
void init(int argc, char** argv);
void set(const std::string& title);

} // namespace lowphp::proctitle
