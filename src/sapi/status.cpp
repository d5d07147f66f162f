// pm.status_path, ping.path and fpm_get_status(): the SAPI side of status/.
// Matched on SCRIPT_NAME (SG(request_info).request_uri) before the script is
// looked up, as php-fpm's fpm_status_handle_request.
#include <cstring>

#include "lowphp/backends.h"
#include "lowphp/status.h"
#include "sapi_internal.h"

namespace lowphp::sapi {

StatusContext status_context;

namespace {

void add_header(const char* line) {
    sapi_add_header_ex(const_cast<char*>(line), strlen(line), 1, 1);
}

void no_cache_headers() {
    add_header("Expires: Thu, 01 Jan 1970 00:00:00 GMT");
    add_header("Cache-Control: no-cache, no-store, must-revalidate, max-age=0");
}

// isset($_GET[name]) as php-fpm's fpm_php_get_string_from_table.
bool get_has(const char* name) {
    zval* get = &PG(http_globals)[TRACK_VARS_GET];
    return Z_TYPE_P(get) == IS_ARRAY && zend_hash_str_find(Z_ARRVAL_P(get), name, strlen(name));
}

status::Snapshot snapshot() {
    status::Snapshot s =
        status::take_snapshot(*status_context.board, status_context.pool_index,
                              status_context.tcp_listen_fd, Now{wall_us(), mono_us()});
    s.backends = backends::status();
    return s;
}

void answer_ping() {
    add_header("Content-Type: text/plain");
    no_cache_headers();
    SG(sapi_headers).http_response_code = 200;
    if (SG(request_info).headers_only) return;
    PHPWRITE(current_pool->ping_response.data(), current_pool->ping_response.size());
}

void answer_status() {
    no_cache_headers();
    SG(sapi_headers).http_response_code = 200;
    if (SG(request_info).headers_only) return;
    bool full = get_has("full");
    status::Format f = get_has("html")          ? status::Format::Html
                       : get_has("xml")         ? status::Format::Xml
                       : get_has("json")        ? status::Format::Json
                       : get_has("openmetrics") ? status::Format::OpenMetrics
                                                : status::Format::Text;
    status::Page page = status::render(snapshot(), f, full);
    std::string type = "Content-Type: " + page.content_type;
    add_header(type.c_str());
    PHPWRITE(page.body.data(), page.body.size());
}

void add_string(zval* arr, const char* key, const std::string& v) {
    add_assoc_stringl_ex(arr, key, strlen(key), v.data(), v.size());
}

void add_long(zval* arr, const char* key, uint64_t v) {
    add_assoc_long_ex(arr, key, strlen(key), static_cast<zend_long>(v));
}

void proc_array(zval* out, const status::ProcStatus& p) {
    array_init(out);
    add_long(out, "pid", static_cast<uint64_t>(p.pid));
    add_string(out, "state", p.state);
    add_long(out, "start-time", p.start_time);
    add_long(out, "start-since", p.start_since);
    add_long(out, "requests", p.requests);
    add_long(out, "request-duration", p.request_duration_us);
    add_string(out, "request-method", p.method.empty() ? "-" : p.method);
    add_string(out, "request-uri", p.uri.empty() ? "-" : p.uri);
    add_string(out, "query-string", p.query);
    add_long(out, "request-length", p.content_length);
    add_string(out, "user", p.user.empty() ? "-" : p.user);
    add_string(out, "script", p.script.empty() ? "-" : p.script);
    add_assoc_double_ex(out, "last-request-cpu", strlen("last-request-cpu"), p.last_cpu);
    add_long(out, "last-request-memory", p.last_memory);
}

} // namespace

bool handle_status_request() {
    const char* uri = SG(request_info).request_uri;
    if (!uri || !current_pool) return false;
    const config::PoolConfig& pool = *current_pool;
    bool ping = !pool.ping_path.empty() && pool.ping_path == uri;
    bool status =
        !pool.pm_status_path.empty() && pool.pm_status_path == uri && status_context.board;
    if ((ping || status) && current_slot) // fpm_request_executing: it shows as Running
        current_slot->state.store(static_cast<int>(WorkerState::Running));
    if (ping) {
        answer_ping();
        return true;
    }
    if (status) {
        answer_status();
        return true;
    }
    return false;
}

extern "C" {

PHP_FUNCTION(fpm_get_status) {
    ZEND_PARSE_PARAMETERS_NONE();
    if (!status_context.board) RETURN_FALSE;
    status::Snapshot s = snapshot();
    const status::PoolStatus& p = s.pool;
    array_init(return_value);
    add_string(return_value, "pool", p.pool);
    add_string(return_value, "process-manager", p.process_manager);
    add_long(return_value, "start-time", p.start_time);
    add_long(return_value, "start-since", p.start_since);
    add_long(return_value, "accepted-conn", p.accepted_conn);
    add_long(return_value, "listen-queue", p.listen_queue);
    add_long(return_value, "max-listen-queue", p.max_listen_queue);
    add_long(return_value, "listen-queue-len", static_cast<uint64_t>(p.listen_queue_len));
    add_long(return_value, "idle-processes", static_cast<uint64_t>(p.idle));
    add_long(return_value, "active-processes", static_cast<uint64_t>(p.active));
    add_long(return_value, "total-processes", static_cast<uint64_t>(p.total));
    add_long(return_value, "max-active-processes", static_cast<uint64_t>(p.max_active));
    add_long(return_value, "max-children-reached", p.max_children_reached);
    add_long(return_value, "slow-requests", p.slow_requests);
    zval procs;
    array_init(&procs);
    for (const status::ProcStatus& pr : s.procs) {
        zval one;
        proc_array(&one, pr);
        add_next_index_zval(&procs, &one);
    }
    add_assoc_zval_ex(return_value, "procs", strlen("procs"), &procs);
}

} // extern "C"

} // namespace lowphp::sapi
