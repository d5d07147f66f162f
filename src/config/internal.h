// Internal to config/: what the parser hands to post-processing and the dump.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "lowphp/config.h"

namespace lowphp::config {

// What the files said beyond the values themselves (php-fpm tells "not set"
// from a value through NULL/0 fields; some checks depend on it).
struct ParseState {
    struct Pool {
        std::set<std::string> seen; // lower-cased directive names given for this pool
    };
    std::vector<Pool> pools; // parallel to Config::pools
};

// fpm_conf_post_process + fpm_conf_process_all_pools: defaults, paths, checks.
// The [global] checks come first; `global_ok` tells whether they passed (php-fpm
// opens error_log then, and logs what follows there too).
bool post_process(Config& cfg, const ParseState& state, const ParseOptions& opts,
                  std::vector<Message>& messages, bool& global_ok);

// pgsql[NAME], mysql[NAME], redis[NAME] and connections.max[NAME] (backends.cpp):
// "" or the message after the "[file:line] " prefix.
std::string set_backend(PoolConfig& p, BackendKind kind, const std::string& name,
                        const std::string& value);
std::string set_connections_max(PoolConfig& p, const std::string& name, const std::string& value);
// After the pool is read: connections.max[] onto its backends, defaults
// (pm.max_children) for the others.
std::string apply_connections_max(PoolConfig& p);

} // namespace lowphp::config
