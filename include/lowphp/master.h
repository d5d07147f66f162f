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
    config::ParseOptions parse;    // as start-up read the configuration (a reload checks it so)
    std::vector<std::string> argv; // the original command line, for the reload re-exec
};

// The configuration reader's messages [from, to), as php-fpm logs them (the INI
// scanner's own lines go to stderr without a prefix).
void log_config_messages(const std::vector<config::Message>& messages, size_t from, size_t to);

// Runs the process manager until it stops; returns the process exit status.
// `identities` are the pools' (same order), resolved by the start-up checks.
int run(config::Config cfg, std::vector<pool::Identity> identities, const Options& opts);

} // namespace lowphp::master
