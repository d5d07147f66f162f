// The master process: owns sockets, scoreboard and every child; never runs PHP.
#pragma once

#include <string>
#include <vector>

#include "lowphp/config.h"
#include "lowphp/identity.h"
#include "lowphp/php_ini_options.h"

namespace lowphp::master {

struct Options {
    std::string config_path;
    std::string prefix;
    std::string pid_path;      // -g, overrides the pid directive
    int force_daemon = -1;     // -1: config decides, 0: -F, 1: -D
    bool force_stderr = false; // -O
    bool run_as_root = false;  // -R
    PhpIniOptions ini;
    std::vector<std::string> argv; // the original command line, for the reload re-exec
};

// Runs the process manager until it stops; returns the process exit status.
// `identities` are the pools' (same order), resolved by the start-up checks.
int run(config::Config cfg, std::vector<pool::Identity> identities, const Options& opts);

} // namespace lowphp::master
