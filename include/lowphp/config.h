// Configuration model of php-fpm.conf + pool files, and the parser's public face.
// config/ knows nothing of processes: it turns files into these structs and
// reports errors worded exactly as php-fpm 8.2 words them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lowphp/log_level.h"

namespace lowphp::config {

enum class PmStyle { Static, Dynamic, Ondemand };

// One php_value[...] / php_admin_value[...] entry. Flags are stored with their
// value normalised the way php-fpm passes them to PHP ("1"/"0" for on/off...).
struct IniSetting {
    std::string name;
    std::string value;
};

// A backend a pool declares (lowphp addition): pgsql[NAME], mysql[NAME] or
// redis[NAME]. PostgreSQL's value is a libpq conninfo handed to libpq as is;
// MariaDB's and Redis's are words in the same key=value grammar, kept parsed.
enum class BackendKind { Pgsql, Mysql, Redis };
constexpr size_t kMaxBackendsPerPool = 16;
constexpr int kMaxBackendConnections = 1024; // connections.max[] upper bound
const char* backend_kind_name(BackendKind kind);
struct BackendConfig {
    std::string name;
    BackendKind kind = BackendKind::Pgsql;
    std::string dsn;                                          // as written
    std::vector<std::pair<std::string, std::string>> options; // mysql, redis: parsed words
    int max = 0; // connections.max[NAME]; 0 until validation sets pm.max_children
    std::string option(const std::string& key, const std::string& fallback = "") const;
};

// Parses libpq's conninfo grammar (whitespace-separated key=value, values in
// single quotes with \' and \\): "" on success, else what is wrong.
std::string parse_dsn_words(const std::string& text,
                            std::vector<std::pair<std::string, std::string>>& out);
// The DSN as -tt prints it: password values replaced by ***.
std::string masked_dsn(const BackendConfig& backend);

struct GlobalConfig {
    std::string pid;       // "" = no pid file
    std::string error_log; // default "log/php-fpm.log" resolved against prefix; "syslog" allowed
    std::string syslog_ident = "php-fpm";
    std::string syslog_facility = "daemon";
    bool log_buffering = true;
    LogLevel log_level = LogLevel::Notice;
    bool log_level_set = false; // -tt prints "unknown value" until log_level is given
    int log_limit = 1024;
    int emergency_restart_threshold = 0;
    int emergency_restart_interval = 0; // seconds
    int process_control_timeout = 0;    // seconds
    int process_max = 0;
    std::optional<int> process_priority;
    bool daemonize = true;
    std::optional<int> rlimit_files;
    std::optional<long> rlimit_core; // -1 = unlimited
    std::string events_mechanism;
    int systemd_interval = 10; // seconds
};

struct PoolConfig {
    std::string name;
    std::string prefix;
    std::string user;
    std::string group;
    std::string listen;
    int listen_backlog = -1; // php-fpm 8.2 on Linux: -1, i.e. the kernel's somaxconn
    std::string listen_owner;
    std::string listen_group;
    std::string listen_mode; // "" = php-fpm's default 0660
    std::string listen_acl_users;
    std::string listen_acl_groups;
    std::string listen_allowed_clients;
    std::optional<int> listen_setfib;
    std::optional<int> process_priority;
    bool process_dumpable = false;
    PmStyle pm = PmStyle::Static;
    bool pm_set = false;
    int pm_max_children = 0;
    int pm_start_servers = 0;
    int pm_min_spare_servers = 0;
    int pm_max_spare_servers = 0;
    int pm_max_spawn_rate = 32;
    int pm_process_idle_timeout = 10; // seconds
    int pm_max_requests = 0;
    std::string pm_status_path;
    std::string pm_status_listen;
    std::string ping_path;
    std::string ping_response = "pong";
    std::string access_log;
    std::string access_format = "%R - %u %t \"%m %r\" %s";
    bool access_format_set = false; // -tt shows the format only if given or access.log is set
    std::vector<std::string> access_suppress_path;
    std::string slowlog;
    int request_slowlog_timeout = 0; // seconds
    int request_slowlog_trace_depth = 20;
    int request_terminate_timeout = 0; // seconds
    bool request_terminate_timeout_track_finished = false;
    std::optional<int> rlimit_files;
    std::optional<long> rlimit_core; // -1 = unlimited
    std::string chroot;
    std::string chdir;
    bool catch_workers_output = false;
    bool decorate_workers_output = true;
    bool clear_env = true;
    std::string security_limit_extensions = ".php .phar";
    std::string apparmor_hat;
    // Arrays are kept as php-fpm keeps them: newest entry first, duplicates kept.
    // Applied in this order (later overrides earlier), the FIRST definition in the
    // file wins, which is what php-fpm 8.2 does (checked with env[] and php_value[]).
    std::vector<std::pair<std::string, std::string>> env; // env[NAME] = value
    std::vector<IniSetting> php_values;                   // php_value[] and php_flag[]
    std::vector<IniSetting> php_admin_values;             // php_admin_value[] and php_admin_flag[]
    // lowphp additions (not in php-fpm): a pool's own php.ini and scan dir.
    std::string php_ini;
    std::string php_ini_scan_dir;
    // pm.max_memory: a worker whose resident memory exceeds it after a request
    // is recycled. 0 = no limit.
    uint64_t pm_max_memory = 0;
    // request_params_max_size: a request whose FastCGI params (names and
    // values, as sent) exceed it is refused, its connection closed. 0 = no limit.
    static constexpr uint64_t kDefaultParamsMaxSize = 2 * 1024 * 1024;
    uint64_t request_params_max_size = kDefaultParamsMaxSize;
    // Worker mode (lowphp addition): each worker boots worker_script once and
    // serves the pool's requests from the handler it passes to
    // lowphp_handle_request(). Empty = classic mode.
    std::string worker_script;
    int worker_max_requests = 0;             // handled requests before a restart, 0 = no limit
    int worker_max_consecutive_failures = 6; // boot failures in a row before the pool answers 503
    std::string worker_keep_ini;             // ini names whose request-time values are kept
    std::string worker_watch;                // dirs or globs: a change restarts the pool (inotify)
    // A POSIX extended regex on the request path: matching requests go to the
    // worker script, the others run classically in the pool's classic workers
    // (every other worker). Empty: every request goes to the worker script.
    std::string worker_match;
    bool worker_mode() const { return !worker_script.empty(); }
    // Backends (lowphp addition), in the order declared, and how long a request
    // waits for a connection when connections.max[NAME] are all busy.
    std::vector<BackendConfig> backends;
    std::vector<std::pair<std::string, int>> connections_max; // until validation applies them
    int connections_wait_timeout_ms = 3000;
    // connections.reuse (lowphp): the PDO, mysqli and pgsql connections a
    // request opens are kept by the worker, reset, and handed to the next
    // request that opens the same one; closed after idle_timeout unused.
    bool connections_reuse = false;
    int connections_idle_timeout = 60; // seconds
};

struct Config {
    std::string path;   // the main configuration file as given
    std::string prefix; // -p value or "" (php-fpm then uses its install prefix)
    GlobalConfig global;
    std::vector<PoolConfig> pools;
};

// A message worded as php-fpm would log it; level says how (ERROR stops startup).
struct Message {
    LogLevel level;
    std::string text;
    // PHP's own error output (a scanner syntax error): php-fpm lets PHP print it
    // as "PHP:  <text>" on stderr, without its date/level prefix.
    bool raw = false;
};

struct ParseOptions {
    std::string prefix;         // -p, used for relative include= and $prefix
    std::string default_prefix; // where relative paths land when -p is absent
    bool allow_env = true;      // expand ${VAR} from the environment
    // Started as root without -R: a pool without `user` is an error.
    bool require_user = false;
    // Open (create) error_log, slowlogs and access logs while checking, as
    // php-fpm's post-processing does (for -t and start-up, not for reading).
    bool open_log_files = false;
    // Keep every line read in ParseResult::source (for --migrate).
    bool keep_source = false;
};

// A line as the reader met it, in reading order: include= is followed where it
// stands, as php-fpm does. --migrate copies the text (comments, order,
// spelling) into the section the loader put the line in.
struct SourceLine {
    enum Kind {
        Opened,  // the reader opened `file`: the main file, then each include= match
        Text,    // a blank line or a comment
        Section, // [name]
        Entry,   // name = value, name[key] = value, include = pattern
    } kind = Text;
    std::string file;  // the file the line is in, or the file opened
    std::string text;  // the line as written, without its newline
    std::string name;  // the section's name, or the directive's ("php_value" for php_value[k])
    std::string value; // as php-fpm reads it (quotes, ${VAR} resolved)
    std::string written_name, written_value; // the two sides of the '=' as written
};

struct ParseResult {
    std::optional<Config> config;  // set when parsing (and validation) succeeded
    std::vector<Message> messages; // warnings and errors in order
    // Set once [global] passed its checks: php-fpm opens error_log at that
    // point, so messages from index `error_log_from` on are logged there too.
    std::optional<GlobalConfig> global;
    size_t error_log_from = SIZE_MAX;
    std::vector<SourceLine> source; // with ParseOptions::keep_source
};

// Parse the main file with its includes, then validate and fill defaults as
// php-fpm's fpm_conf_init_main does. On error `config` is empty and messages name
// file, line and directive in php-fpm's words.
ParseResult load(const std::string& path, const ParseOptions& opts);

// php-fpm takes user, group, listen.owner and listen.group made only of digits
// as numeric ids, without a passwd/group lookup.
inline bool is_numeric_id(const std::string& s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

// -tt: the dump php-fpm prints (one notice line per directive).
std::vector<std::string> dump(const Config& cfg);

} // namespace lowphp::config
