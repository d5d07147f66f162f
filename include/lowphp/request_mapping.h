// How FastCGI params become the script to run and the CGI variables PHP sees:
// a pure re-implementation of php-fpm's init_request_info (fpm_main.c), so the
// same nginx params give the same SCRIPT_FILENAME / PATH_INFO as php-fpm.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lowphp::sapi {

using Params = std::map<std::string, std::string>;

// Answers "is this path an existing regular file?" (php-fpm: stat + S_ISREG).
// Injected so unit tests can describe a filesystem without touching the disk.
using IsRegularFile = std::function<bool(const std::string& path)>;

struct MappingOptions {
    bool fix_pathinfo = true;  // cgi.fix_pathinfo
    bool discard_path = false; // cgi.discard_path
    bool fix_pathinfo_in_php_ini = true;
    // php.ini doc_root (PG(doc_root)); nullopt or "" when unset. php-fpm puts it
    // as DOCUMENT_ROOT when the param is missing (fix_pathinfo=1 only).
    std::optional<std::string> doc_root;
};

// One FCGI_PUTENV of init_request_info: set `name` (nullopt: delete it).
using ParamPut = std::pair<std::string, std::optional<std::string>>;

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
    // The same rewrites as `changed`, as the sequence of FCGI_PUTENV calls php-fpm
    // makes. Apply them in this order to the request's param table with fcgi's
    // hash semantics: an existing name keeps its place, a new (or deleted, then
    // re-set) name is added, nullopt deletes. php-fpm's table lists params
    // newest first: $_SERVER (and apache_request_headers) walk it from the most
    // recently added entry to FCGI_ROLE, so the added ORIG_* entries come first.
    std::vector<ParamPut> puts;
    bool script_not_found = false; // php-fpm would answer 404 "File not found."
    // php-fpm's `if (script_path_translated)` block ran (SCRIPT_FILENAME or
    // PATH_TRANSLATED was given). Only then are query_string, content_type and
    // content_length filled and php_handle_auth_data(HTTP_AUTHORIZATION) called.
    bool script_path_given = false;
    // $_SERVER['PHP_SELF'] as sapi_cgi_register_variables builds it: request_uri,
    // plus the mapped PATH_INFO when fix_pathinfo is on.
    std::string php_self;
};

// Answers "does this path exist?" (php-fpm: tsrm_realpath succeeding).
using PathExists = std::function<bool(const std::string& path)>;

// One FastCGI param by name (the worker looks them up in place, no copy).
using ParamLookup = std::function<std::optional<std::string>(const std::string& name)>;

// `exists` defaults to stat() succeeding (file, directory, anything).
RequestInfo map_request(const ParamLookup& params, const MappingOptions& opts,
                        const IsRegularFile& is_regular_file, const PathExists& exists = nullptr);
RequestInfo map_request(const Params& params, const MappingOptions& opts,
                        const IsRegularFile& is_regular_file, const PathExists& exists = nullptr);

// php-fpm refuses paths with a ".." segment (is_valid_path; '/' is the only
// separator on Unix).
bool is_valid_path(const std::string& path);

// httpoxy (CVE-2016-5385). php-fpm does not touch HTTP_PROXY in its FastCGI
// params; libphp hides it, in two places a libphp-based SAPI gets for free:
// - sapi_getenv() (main/SAPI.c, used by getenv()) answers NULL for every name
//   that is, case-insensitively, a prefix of "HTTP_PROXY" ("HTTP", "http_proxy",
//   even ""); getenv() then falls back to the process environment.
bool sapi_getenv_hides(std::string_view name);
// - check_http_proxy() (main/php_variables.c), run when $_SERVER and $_ENV are
//   built: if the array holds HTTP_PROXY, its value becomes the process
//   environment's HTTP_PROXY (same position), or the entry is removed when the
//   process has none. Returns the value $_SERVER ends up with (nullopt: absent).
std::optional<std::string> server_http_proxy(bool in_array,
                                             const std::optional<std::string>& process_value);

} // namespace lowphp::sapi
