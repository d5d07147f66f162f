// Internals of the fpm-fcgi SAPI shared by its translation units. PHP headers
// are allowed here (and only in sapi/ and backends/).
#pragma once

extern "C" {
#include "SAPI.h"
#include "php.h"
#include "php_main.h"
#include "php_variables.h"
}

#include <sys/times.h>

#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lowphp/closed_output.h"
#include "lowphp/config.h"
#include "lowphp/fastcgi.h"
#include "lowphp/scoreboard.h"
#include "lowphp/unique_fd.h"
#include "lowphp/zygote.h"

namespace lowphp::sapi {

// The FastCGI params of the request in arrival order (php-fpm registers them in
// $_SERVER in that order). Names and values are views into the request's
// decoded params (NUL-terminated, alive until the request ends); values set
// later are owned here. No
// allocation per param: a request has a few dozen, so lookups are linear
// (length first), which beats hashing a std::string key per lookup. A 64-bit
// filter of the names present answers most lookups of absent names (PHP and
// the mapping ask for many: PHP_VALUE, ORIG_*, HTTP_AUTHORIZATION...) and most
// duplicate checks while loading without walking the list. Past kLinearMax
// names a hash index takes over, so a client sending thousands of params
// costs linear time, not quadratic.
class ParamList {
  public:
    using Item = std::pair<std::string_view, std::string_view>;
    void load(const fastcgi::Request& req);
    // The value (NUL-terminated), or nullptr.
    const std::string_view* find(std::string_view name) const;
    // Replace in place (keeping the position), append when new, erase on nullopt.
    void set(std::string_view name, const std::optional<std::string>& value);
    const std::vector<Item>& items() const { return items_; }

  private:
    static constexpr size_t kLinearMax = 64;
    static uint64_t filter_bit(std::string_view name);
    const Item* item(std::string_view name) const;
    Item* lookup(std::string_view name);
    void add(std::string_view name, std::string_view value);
    void reindex();
    std::vector<Item> items_;
    uint64_t names_ = 0; // filter_bit of every name ever added (erasing keeps it)
    std::unordered_map<std::string_view, size_t> index_; // name -> position, past kLinearMax
    std::deque<std::string> owned_; // set() values and names (stable addresses)
};

// The live request: set while a worker serves one, null otherwise.
struct RequestContext {
    fastcgi::Connection* conn = nullptr;
    ParamList params;
    std::string method, query, uri, content_type; // storage behind SG(request_info)
    bool closed = false;         // fastcgi_finish_request() ended the FastCGI request
    bool stderr_started = false; // php-fpm separates FCGI_STDERR messages with "; "
    // After closed: what php-fpm still takes from the script (closed_output.h).
    // nginx keeping the connection (fastcgi_keep_conn) leaves php-fpm's socket
    // open, so its writes go on succeeding: ours are dropped then, never failed.
    bool kept_after_finish = false;
    ClosedOutput after_finish;
    bool abort_after_log = false; // a message did not fit: abort once logged
    // REQUEST_BODY_FILE: the body nginx wrote to a file (fastcgi_pass_request_body off).
    UniqueFd body_file;
    // ini entries locked by PHP_ADMIN_VALUE for this request only.
    std::vector<std::pair<zend_ini_entry*, uint8_t>> locked_entries;
};

struct CgiGlobals {
    bool rfc2616_headers = false;
    bool nph = false;
    bool fix_pathinfo = true;
    bool discard_path = false;
    bool fcgi_logging = true;
    bool force_redirect = true;
    char* redirect_status_env = nullptr;
    char* error_header = nullptr;
    char* fpm_config = nullptr;
};

// What the status page and fpm_get_status() read (set per worker).
struct StatusContext {
    Scoreboard* board = nullptr;
    size_t pool_index = 0;
    int tcp_listen_fd = -1; // for the listen queue figures (TCP listeners only)
};

extern CgiGlobals cgi_globals;
extern StatusContext status_context;
extern RequestContext* current_request;
extern const config::PoolConfig* current_pool;
extern WorkerSlot* current_slot;
extern sapi_module_struct lowphp_sapi_module;

// sapi_startup + php_module_startup with the chosen php.ini (zygote, -v/-i/-m).
bool start_php(const config::PoolConfig* pool, const PhpIniOptions& ini);

// Set an ini directive's master value as php-fpm's fpm_php_zend_ini_alter_master
// does: `system` also locks it against ini_set. Returns false when unknown.
bool alter_master_ini(const std::string& name, const std::string& value, bool system);
// Apply pool php_value[] / php_admin_value[] (zygote, after module start-up).
void apply_pool_values(const config::PoolConfig& pool);
// In each worker: loads the pool's extensions, says (on its stderr) what
// could not be set.
void apply_pool_values_in_worker(const config::PoolConfig& pool);
// PHP_VALUE / PHP_ADMIN_VALUE params: INI text applied to this request only.
void apply_request_ini(RequestContext& ctx, const char* text, bool system);
void restore_request_ini(RequestContext& ctx);

// .user.ini and [PATH=] / [HOST=] sections for the current request (activate).
void activate_user_ini();

// Send everything buffered for the request to the web server and end it.
void finish_fastcgi_request(RequestContext& ctx);
// fastcgi_finish_request() on a kept connection: hand it to the worker's
// release hook (see set_release_connection).
void release_kept_connection(RequestContext& ctx);
// Output and flushes once the request is finished: false where php-fpm's
// would fail (the caller then handles an aborted connection).
bool write_after_finish(RequestContext& ctx, ClosedOutput::Stream stream, size_t len);
bool flush_after_finish(RequestContext& ctx);

// FCGI_STDERR + error log, as php-fpm's external zlog logger.
void log_to_fastcgi(config::LogLevel level, const char* msg, size_t len);

// What the request cost, measured by the worker (status page, access log).
struct RequestTimes {
    uint64_t duration_us = 0;
    double cpu_user = 0, cpu_system = 0; // % of one CPU over the duration
};

// The steps of a request that classic mode (request.cpp) and worker mode
// (worker_mode.cpp) share.
// fpm_request_reading_headers: a new request counts from here (php-fpm's
// "accepted conn" counts requests, not connections).
struct RequestClock {
    uint64_t started_us = 0;
    struct tms cpu {};
};
RequestClock begin_request_slot();
// Fill SG(request_info) from the params mapped as php-fpm maps them.
void init_request_info(RequestContext& ctx);
// What the status page shows of the running request.
void record_request();
void set_state(WorkerState s);
RequestTimes end_request_slot(const RequestClock& clock);
// The request's answer is decided: fastcgi.error_header, Finishing, the
// access log line with what it cost.
void record_request_end(RequestContext& ctx, const RequestClock& clock);
// The worker waits for its next request (idle since now).
void set_idle();

// access.log (fd from the master, -1 when the pool has none).
extern int access_log_fd;
void write_access_log(RequestContext& ctx, const RequestTimes& times);

// ping.path / pm.status_path: answered here when the request is one of them.
bool handle_status_request();

extern "C" ZEND_FUNCTION(fpm_get_status);
extern "C" ZEND_FUNCTION(lowphp_handle_request);

// What the cgi-fcgi module gives scripts; a worker-mode pool adds
// lowphp_handle_request() and FrankenPHP's names.
extern const zend_function_entry sapi_functions[];
extern const zend_function_entry worker_mode_functions[];

// Set while a worker script runs: output the client cannot take is dropped
// (connection_aborted() says so) instead of ending the script, which would
// end the whole warm worker.
extern bool worker_mode_active;

} // namespace lowphp::sapi
