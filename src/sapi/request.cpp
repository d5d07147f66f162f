// One request through PHP, in php-fpm's order (fpm_main.c's request loop):
// map params → request startup → 404 / limit_extensions → execute → shutdown.
#include <cerrno>
#include <cstring>
#include <sys/stat.h>
#include <sys/times.h>
#include <unistd.h>

#include "lowphp/backends.h"
#include "lowphp/log.h"
#include "lowphp/request_mapping.h"
#include "lowphp/reuse.h"
#include "lowphp/sapi.h"
#include "sapi_internal.h"

extern "C" {
#include "fopen_wrappers.h"
#include "php_output.h"
}

namespace lowphp::sapi {

void ParamList::load(const fastcgi::Request& req) {
    items_.clear();
    owned_.clear();
    index_.clear();
    items_.reserve(64); // nginx sends ~20-40 params: no regrowth per request
    // php-fpm's FastCGI layer records the role as the first param.
    names_ = 0;
    add("FCGI_ROLE", req.role);
    for (auto [name, value] : req.params) {
        // php-fpm hands values to PHP as C strings: a NUL ends them.
        value = value.substr(0, value.find('\0'));
        if (Item* it = lookup(name))
            it->second = value; // a repeated param: last value wins
        else
            add(name, value);
    }
}

void ParamList::add(std::string_view name, std::string_view value) {
    items_.emplace_back(name, value);
    names_ |= filter_bit(name);
    if (!index_.empty())
        index_.emplace(name, items_.size() - 1);
    else if (items_.size() > kLinearMax)
        reindex();
}

void ParamList::reindex() {
    index_.clear();
    if (items_.size() <= kLinearMax) return;
    index_.reserve(items_.size() * 2);
    for (size_t i = 0; i < items_.size(); ++i)
        index_.emplace(items_[i].first, i);
}

uint64_t ParamList::filter_bit(std::string_view name) {
    if (name.empty()) return 1;
    auto c = [&](size_t i) { return static_cast<unsigned>(static_cast<unsigned char>(name[i])); };
    return uint64_t{1} << ((name.size() * 7 + c(name.size() - 1) * 3 + c(name.size() / 2)) & 63);
}

// std::string_view's == compares the lengths first.
const ParamList::Item* ParamList::item(std::string_view name) const {
    if (!(names_ & filter_bit(name))) return nullptr;
    if (!index_.empty()) {
        auto found = index_.find(name);
        return found == index_.end() ? nullptr : &items_[found->second];
    }
    for (const Item& it : items_)
        if (it.first == name) return &it;
    return nullptr;
}

ParamList::Item* ParamList::lookup(std::string_view name) {
    return const_cast<Item*>(item(name));
}

const std::string_view* ParamList::find(std::string_view name) const {
    const Item* it = item(name);
    return it ? &it->second : nullptr;
}

void ParamList::set(std::string_view name, const std::optional<std::string>& value) {
    Item* it = lookup(name);
    if (value) {
        std::string_view stored = owned_.emplace_back(*value);
        if (it)
            it->second = stored;
        else
            add(owned_.emplace_back(name), stored);
    } else if (it) {
        items_.erase(items_.begin() + (it - items_.data()));
        if (!index_.empty()) reindex(); // positions after it moved
    }
}

void log_to_fastcgi(config::LogLevel, const char* msg, size_t len) {
    RequestContext* ctx = current_request;
    if (!cgi_globals.fcgi_logging || !ctx || !ctx->conn || !msg || len == 0) return;
    if (ctx->closed) {
        using Stream = ClosedOutput::Stream;
        bool fits = (!ctx->stderr_started || write_after_finish(*ctx, Stream::Stderr, 2)) &&
                    write_after_finish(*ctx, Stream::Stderr, len);
        ctx->stderr_started = true;
        ctx->abort_after_log = ctx->abort_after_log || !fits;
        return;
    }
    if (ctx->stderr_started) ctx->conn->write(fastcgi::kStderr, "; ", 2);
    ctx->stderr_started = true;
    ctx->conn->write(fastcgi::kStderr, msg, len);
}

void finish_fastcgi_request(RequestContext& ctx) {
    if (ctx.closed || !ctx.conn) return;
    ctx.closed = true;
    // php-fpm always lingers on a connection nginx does not keep (a round trip
    // per request); Connection::finish lingers only while input is unread.
    ctx.kept_after_finish = ctx.conn->finish();
}

namespace {
ReleaseConnection release_connection = nullptr;
} // namespace

void set_release_connection(ReleaseConnection release) {
    release_connection = release;
}

void release_kept_connection(RequestContext& ctx) {
    // Only a connection at a request boundary can serve another request
    // elsewhere: not while the body is unread, nor when the next request is
    // already in our buffer.
    if (!release_connection || !ctx.kept_after_finish) return;
    if (int fd = ctx.conn->release(); fd >= 0) release_connection(fd);
}

bool write_after_finish(RequestContext& ctx, ClosedOutput::Stream stream, size_t len) {
    return ctx.kept_after_finish || ctx.after_finish.write(stream, len);
}

bool flush_after_finish(RequestContext& ctx) {
    return ctx.kept_after_finish || ctx.after_finish.flush();
}

namespace {

bool is_regular_file(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// php-fpm asks tsrm_realpath() whether SCRIPT_FILENAME exists: PHP's realpath
// cache answers for a script resolved within realpath_cache_ttl, so a warm
// worker makes no syscall for it (a stat() here cost one per request).
bool resolves(const std::string& path) {
    char resolved[MAXPATHLEN];
    return tsrm_realpath(path.c_str(), resolved) != nullptr;
}

// security.limit_extensions (fpm_php_limit_extensions): empty list allows all.
bool extension_allowed(const char* path) {
    const std::string& list = current_pool->security_limit_extensions;
    if (!path || list.find_first_not_of(" \t") == std::string::npos) return true;
    size_t path_len = strlen(path);
    size_t pos = 0;
    while (pos < list.size()) {
        size_t start = list.find_first_not_of(" \t", pos);
        if (start == std::string::npos) break;
        size_t end = list.find_first_of(" \t", start);
        if (end == std::string::npos) end = list.size();
        size_t ext_len = end - start;
        if (path_len > ext_len && list.compare(start, ext_len, path + path_len - ext_len) == 0)
            return true;
        pos = end;
    }
    ZLOG_NOTICE("Access to the script '%s' has been denied (see security.limit_extensions)", path);
    return false;
}

} // namespace

// init_request_info: fill SG(request_info) from the mapped params.
void init_request_info(RequestContext& ctx) {
    MappingOptions opts;
    opts.fix_pathinfo = cgi_globals.fix_pathinfo;
    opts.discard_path = cgi_globals.discard_path;
    if (PG(doc_root) && *PG(doc_root)) opts.doc_root = PG(doc_root);
    ParamLookup lookup = [&ctx](const std::string& name) {
        const std::string_view* v = ctx.params.find(name);
        return v ? std::optional<std::string>(*v) : std::nullopt;
    };
    RequestInfo info = map_request(lookup, opts, is_regular_file, resolves);
    // php-fpm's FCGI_PUTENV calls, in its order: $_SERVER's order depends on it.
    for (const auto& [name, value] : info.puts)
        ctx.params.set(name, value);
    ctx.method = info.request_method.value_or("");
    ctx.query = info.query_string.value_or("");
    ctx.uri = info.request_uri.value_or("");
    ctx.content_type = info.content_type.value_or("");
    auto& ri = SG(request_info);
    ri.request_method = info.request_method ? ctx.method.c_str() : nullptr;
    ri.query_string = info.query_string ? ctx.query.data() : nullptr;
    ri.request_uri = info.request_uri ? ctx.uri.data() : nullptr;
    ri.content_type = info.content_type ? ctx.content_type.c_str() : nullptr;
    ri.content_length = info.content_length;
    ri.path_translated = info.path_translated ? estrdup(info.path_translated->c_str()) : nullptr;
    ri.proto_num = 1000;
    SG(sapi_headers).http_response_code = info.script_not_found ? 404 : 200;
    // Freed by the previous request's shutdown but not reset by PHP: a request
    // that skips php_handle_auth_data must not see them (php-fpm prints such a
    // stale buffer in %u of its access log).
    ri.auth_user = ri.auth_password = ri.auth_digest = nullptr;
    if (info.script_path_given) {
        const std::string_view* auth = ctx.params.find("HTTP_AUTHORIZATION");
        php_handle_auth_data(auth ? auth->data() : nullptr);
    }
    if (const std::string_view* v = ctx.params.find("PHP_VALUE"))
        apply_request_ini(ctx, v->data(), false);
    if (const std::string_view* v = ctx.params.find("PHP_ADMIN_VALUE"))
        apply_request_ini(ctx, v->data(), true);
}

void set_state(WorkerState s) {
    if (current_slot) current_slot->state.store(static_cast<int>(s), std::memory_order_relaxed);
}

// The clock started when the worker began to read the request (worker.cpp's
// start_reading), as php-fpm's does.
RequestClock begin_request_slot() {
    RequestClock clock;
    times(&clock.cpu);
    if (!current_slot) {
        clock.started_us = mono_us();
        return clock;
    }
    clock.started_us = current_slot->request_started_us.load(std::memory_order_relaxed);
    status_context.board->pool(status_context.pool_index).accepted_conn.fetch_add(1);
    begin_slot_write(*current_slot);
    current_slot->requests.fetch_add(1, std::memory_order_relaxed);
    current_slot->method[0] = current_slot->uri[0] = current_slot->query[0] = '\0';
    current_slot->script[0] = current_slot->auth_user[0] = '\0';
    current_slot->content_length = 0;
    end_slot_write(*current_slot);
    return clock;
}

namespace {
// Truncating copy (PHP's headers turn snprintf into its own, slower one).
void copy_field(char* dst, size_t size, const char* src) {
    size_t n = src ? strnlen(src, size - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

} // namespace

// fpm_request_info: what the status page shows of the running request.
void record_request() {
    if (!current_slot) return;
    const auto& ri = SG(request_info);
    begin_slot_write(*current_slot);
    copy_field(current_slot->method, sizeof current_slot->method, ri.request_method);
    copy_field(current_slot->uri, sizeof current_slot->uri, ri.request_uri);
    copy_field(current_slot->query, sizeof current_slot->query, ri.query_string);
    copy_field(current_slot->script, sizeof current_slot->script, ri.path_translated);
    copy_field(current_slot->auth_user, sizeof current_slot->auth_user, ri.auth_user);
    current_slot->content_length =
        ri.content_length > 0 ? static_cast<uint64_t>(ri.content_length) : 0;
    end_slot_write(*current_slot);
}

// fpm_request_end: duration, CPU share and peak memory of the finished request.
RequestTimes end_request_slot(const RequestClock& clock) {
    RequestTimes t;
    uint64_t now = mono_us();
    t.duration_us = now > clock.started_us ? now - clock.started_us : 0;
    struct tms cpu;
    times(&cpu);
    static const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    double seconds = static_cast<double>(t.duration_us) / 1e6;
    auto percent = [&](clock_t a, clock_t b) {
        return seconds > 0 ? static_cast<double>(a + b) / tick / seconds * 100. : 0.;
    };
    t.cpu_user =
        percent(cpu.tms_utime - clock.cpu.tms_utime, cpu.tms_cutime - clock.cpu.tms_cutime);
    t.cpu_system =
        percent(cpu.tms_stime - clock.cpu.tms_stime, cpu.tms_cstime - clock.cpu.tms_cstime);
    if (!current_slot) return t;
    begin_slot_write(*current_slot);
    current_slot->last_duration_us = t.duration_us;
    current_slot->last_cpu_percent = t.cpu_user + t.cpu_system;
    current_slot->last_memory = zend_memory_peak_usage(1);
    end_slot_write(*current_slot);
    return t;
}

namespace {
// fastcgi.error_header: sent instead of the status when the script failed.
void apply_error_header() {
    if (EG(exit_status) == 255 && cgi_globals.error_header && *cgi_globals.error_header &&
        !SG(headers_sent)) {
        sapi_header_line ctr{};
        ctr.line = cgi_globals.error_header;
        ctr.line_len = strlen(cgi_globals.error_header);
        sapi_header_op(SAPI_HEADER_REPLACE, &ctr);
    }
}
} // namespace

void record_request_end(RequestContext& ctx, const RequestClock& clock) {
    apply_error_header();
    set_state(WorkerState::Finishing);
    write_access_log(ctx, end_request_slot(clock));
}

void set_idle() {
    if (current_slot) current_slot->idle_since_us.store(mono_us(), std::memory_order_relaxed);
    set_state(WorkerState::Idle);
}

namespace {

void execute_primary_script() {
    const char* path = SG(request_info).path_translated;
    if (!path) {
        zend_try {
            ZLOG_DEBUG("Primary script unknown");
            SG(sapi_headers).http_response_code = 404;
            PUTS("File not found.\n");
        }
        zend_catch {}
        zend_end_try();
        return;
    }
    if (!extension_allowed(path)) {
        SG(sapi_headers).http_response_code = 403;
        PUTS("Access denied.\n");
        return;
    }
    std::string primary = path; // php_fopen_primary_script may free path_translated
    zend_file_handle fh;
    if (php_fopen_primary_script(&fh) == FAILURE) {
        int err = errno;
        zend_try {
            ZLOG_ERROR("Unable to open primary script: %s (%s)", primary.c_str(), strerror(err));
            SG(sapi_headers).http_response_code = err == EACCES ? 403 : 404;
            PUTS(err == EACCES ? "Access denied.\n" : "No input file specified.\n");
        }
        zend_catch {}
        zend_end_try();
        return;
    }
    set_state(WorkerState::Running);
    EG(exit_status) = 0;
    php_execute_script(&fh);
    zend_destroy_file_handle(&fh);
}

} // namespace

bool serve(fastcgi::Connection& conn, const fastcgi::Request& req) {
    RequestClock clock = begin_request_slot();
    RequestContext ctx;
    ctx.conn = &conn;
    ctx.params.load(req);
    set_state(WorkerState::GettingInfo);
    current_request = &ctx;
    SG(server_context) = &ctx;
    init_request_info(ctx);
    record_request();
    if (php_request_startup() == FAILURE) {
        finish_fastcgi_request(ctx);
        SG(server_context) = nullptr;
        current_request = nullptr;
        return false;
    }
    reuse::request_starting();
    if (!handle_status_request() && SG(request_info).request_method) execute_primary_script();
    reuse::script_done(current_slot ? current_slot->script : "");
    record_request_end(ctx, clock);
    if (SG(request_info).path_translated) {
        efree(SG(request_info).path_translated);
        SG(request_info).path_translated = nullptr;
    }
    php_request_shutdown(nullptr);
    restore_request_ini(ctx);
    finish_fastcgi_request(ctx);
    SG(server_context) = nullptr;
    current_request = nullptr;
    // After the response: the request's backend sessions are reset.
    backends::end_request();
    reuse::request_done();
    set_idle();
    return true;
}

} // namespace lowphp::sapi
