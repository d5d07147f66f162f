// How FastCGI params become the script to run and the CGI variables PHP sees:
// a pure re-implementation of php-fpm's init_request_info (fpm_main.c), so the
// same nginx params give the same SCRIPT_FILENAME / PATH_INFO as php-fpm.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

namespace lowphp::sapi {

using Params = std::map<std::string, std::string>;

// Answers "is this path an existing regular file?" (php-fpm: stat + S_ISREG).
// Injected so unit tests can describe a filesystem without touching the disk.
using IsRegularFile = std::function<bool(const std::string& path)>;

struct MappingOptions {
    bool fix_pathinfo = true;        // cgi.fix_pathinfo
    bool discard_path = false;       // cgi.discard_path
    bool fix_pathinfo_in_php_ini = true;
};

struct RequestInfo {
    // What the request runs (php-fpm: SG(request_info).path_translated).
    std::optional<std::string> path_translated;
    std::optional<std::string> request_uri; // SG(request_info).request_uri
    std::optional<std::string> request_method;
    std::optional<std::string> query_string;
    std::optional<std::string> content_type;
    long content_length = 0;
    // Params as they must appear in $_SERVER after mapping: params that php-fpm
    // rewrites (SCRIPT_FILENAME, SCRIPT_NAME, PATH_INFO, PATH_TRANSLATED, ORIG_*)
    // are set here; an entry with nullopt means "unset this param".
    std::map<std::string, std::optional<std::string>> changed;
    bool script_not_found = false; // php-fpm would answer 404 "File not found."
};

// Answers "does this path exist?" (php-fpm: tsrm_realpath succeeding).
using PathExists = std::function<bool(const std::string& path)>;

// `exists` defaults to is_regular_file || directory check done by stat.
RequestInfo map_request(const Params& params, const MappingOptions& opts,
                        const IsRegularFile& is_regular_file, const PathExists& exists = nullptr);

// php-fpm refuses paths with a ".." segment (is_valid_path).
bool is_valid_path(const std::string& path);

} // namespace lowphp::sapi
