// lowphp-fpm --migrate: reads an existing php-fpm setup (the global file and
// every file it includes), reports per pool what carries over and what changes
// so php-fpm and lowphp-fpm can run side by side, and writes the equivalent
// lowphp configuration (comments and order kept, includes flattened).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "lowphp/config.h"

namespace lowphp::migrate {

struct Options {
    std::string source;                     // php-fpm.conf to read
    std::string target_dir = "/etc/lowphp"; // where the files will live (include= points there)
    std::string prefix = "/usr";            // -p: relative include= patterns
    bool keep_listen = false;               // keep listen addresses (php-fpm stopped first)
    std::string run_dir = "/run/lowphp";    // sockets and the pid file
    std::string error_log = "/var/log/lowphp-fpm.log"; // replaces php-fpm's error_log file
};

struct Change {
    std::string directive, from, to, why;
};

// One section of the result: [global] or a pool.
struct Section {
    std::string name;
    std::vector<std::string> files;                             // where its lines came from
    std::vector<std::pair<std::string, std::string>> unchanged; // directive, value as written
    std::vector<Change> changed;
    std::vector<std::string> notes;
    std::string text; // the section's lines for the written file
};

struct Plan {
    bool ok = false;
    std::vector<config::Message> messages; // php-fpm's own errors about the source
    Section global;
    std::vector<Section> pools;
};

Plan plan(const Options& opts);
std::string report(const Plan& plan, const Options& opts);

// Writes <dir>/lowphp-fpm.conf and <dir>/pool.d/<pool>.conf. Files already
// there that would be replaced, and other pool.d/*.conf, are renamed to
// *.before-migrate. Returns "" or an error text (with errno's text).
std::string write(const Plan& plan, const std::string& dir, std::vector<std::string>& moved);

// `lowphp-fpm --migrate FILE [--write DIR] [--keep-listen] [-p PREFIX]`.
int main(int argc, char** argv);

} // namespace lowphp::migrate
