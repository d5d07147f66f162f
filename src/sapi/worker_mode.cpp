// Worker mode: the pool's worker.script runs once per worker as one long PHP
// request; each call of lowphp_handle_request($handler) waits for the next
// FastCGI request, gives the handler that request's superglobals, input,
// headers and output, answers it, and gives the next one a fresh start
// (worker_state.cpp). The steps mirror php_request_startup and
// php_request_shutdown minus what would throw the booted app away.
//
// Frames that a fatal error can longjmp over (zend_bailout) hold only plain
// data: the C++ objects live in WorkerMode.
#include <cstring>
#include <optional>

#include "lowphp/backends.h"
#include "lowphp/log.h"
#include "lowphp/reuse.h"
#include "lowphp/sapi.h"
#include "worker_mode_internal.h"

extern "C" {
#include "ext/spl/spl_exceptions.h"
#include "php_output.h"
#include "zend_exceptions.h"
}

namespace lowphp::sapi {

bool worker_mode_active = false;

namespace {

struct WorkerMode {
    WorkerLoop* loop = nullptr;
    const config::PoolConfig* pool = nullptr;
    RequestContext boot;               // the script's own "request": no client
    std::optional<RequestContext> ctx; // the handled request
    RequestClock clock;
    RequestState state;
    bool booted = false;  // the script reached lowphp_handle_request()
    bool stopped = false; // lowphp_handle_request() said false
    bool in_handler = false;
    bool request_open = false;   // a handled request not answered yet
    bool stop_after = false;     // the worker leaves after the current request
    bool ending = false;         // end_request() runs (shutdown functions, destructors...)
    bool crashed = false;        // a fatal error while a request ended
    bool handler_bailed = false; // a fatal error in the handler
};

WorkerMode* wm = nullptr;

// Extensions whose per-request state must be renewed by their RINIT/RSHUTDOWN
// (filter keeps raw copies of the input for filter_input()). Never session
// (end_session), date or opcache.
constexpr const char* kRenewedModules[] = {"filter"};

void renew_modules(bool startup) {
    for (const char* name : kRenewedModules) {
        auto* m = static_cast<zend_module_entry*>(
            zend_hash_str_find_ptr(&module_registry, name, strlen(name)));
        if (!m) continue;
        auto fn = startup ? m->request_startup_func : m->request_shutdown_func;
        if (fn) fn(m->type, m->module_number);
    }
}

void set_path_translated(const char* path) {
    if (SG(request_info).path_translated) efree(SG(request_info).path_translated);
    SG(request_info).path_translated = path ? estrdup(path) : nullptr;
}

// sapi_deactivate frees these without clearing them (sapi_activate would, at
// the next classic request): cleared here, or the worker's final
// php_request_shutdown would free them a second time.
void deactivate_sapi() {
    zend_try {
        sapi_deactivate();
    }
    zend_end_try();
    auto& ri = SG(request_info);
    ri.auth_user = ri.auth_password = ri.auth_digest = nullptr;
    ri.content_type_dup = nullptr;
    ri.current_user = nullptr;
    SG(rfc1867_uploaded_files) = nullptr;
}

void leave_request_context() {
    current_request = nullptr;
    SG(server_context) = nullptr;
}

// The boot's "request" ends where the first handled one begins: its output
// buffers and headers go, what it left in the engine becomes the baseline.
void end_boot() {
    zend_try {
        php_output_end_all();
    }
    zend_end_try();
    zend_try {
        php_output_deactivate();
    }
    zend_end_try();
    renew_modules(false);
    deactivate_sapi();
    set_path_translated(nullptr);
    zend_unset_timeout();    // the boot's: waiting for a request costs no execution time
    backends::end_request(); // what the boot queried
    reuse::request_done(true);
    wm->state.take_baseline(wm->pool->worker_keep_ini);
    leave_request_context();
    wm->booted = true;
    if (current_slot) current_slot->boot_failures.store(0);
}

// php_request_startup for a handled request, minus zend_activate (the app's
// classes, functions and objects stay) and minus the modules' RINIT.
bool start_request(fastcgi::Connection& conn, const fastcgi::Request& req) {
    RequestContext& ctx = wm->ctx.emplace();
    ctx.conn = &conn;
    ctx.params.load(req);
    ctx.params.set("FRANKENPHP_WORKER", "1");
    ctx.params.set("LOWPHP_WORKER", "1");
    wm->clock = begin_request_slot();
    set_state(WorkerState::GettingInfo);
    current_request = &ctx;
    SG(server_context) = &ctx;
    wm->request_open = true; // from here the request is answered, whatever happens
    volatile bool ok = true; // read after a longjmp
    zend_try {
        init_request_info(ctx); // PHP_VALUE may call the app's error handler
        // Nothing is executed from SCRIPT_FILENAME: no 404 for a path that does not exist.
        SG(sapi_headers).http_response_code = 200;
        record_request();
        php_output_activate();
        PG(header_is_being_sent) = 0;
        PG(connection_status) = PHP_CONNECTION_NORMAL;
        PG(in_error_log) = 0;
        wm->state.before_request();
        sapi_activate();
        SG(sapi_started) = 1;
        if (PG(expose_php) && !SG(headers_sent))
            sapi_add_header(SAPI_PHP_VERSION_HEADER, sizeof(SAPI_PHP_VERSION_HEADER) - 1, 1);
        if (PG(output_handler) && PG(output_handler)[0]) {
            zval oh;
            ZVAL_STRING(&oh, PG(output_handler));
            php_output_start_user(&oh, 0, PHP_OUTPUT_HANDLER_STDFLAGS);
            zval_ptr_dtor(&oh);
        } else if (PG(output_buffering)) {
            php_output_start_user(nullptr, PG(output_buffering) > 1 ? PG(output_buffering) : 0,
                                  PHP_OUTPUT_HANDLER_STDFLAGS);
        } else if (PG(implicit_flush)) {
            php_output_set_implicit_flush(1);
        }
        renew_modules(true);
        reuse::request_starting();
        wm->state.fresh_superglobals();
        if (PS(auto_start)) php_session_start();
    }
    zend_catch {
        ok = false;
    }
    zend_end_try();
    return ok;
}

void close_request_body() {
    if (php_stream* body = SG(request_info).request_body) {
        SG(request_info).request_body = nullptr;
        php_stream_free(body, PHP_STREAM_FREE_CLOSE);
    }
}

// php_request_shutdown for a handled request: the response is complete once
// sapi_deactivate has run; the resets after it cost the client nothing.
void end_request() {
    RequestContext& ctx = *wm->ctx;
    wm->ending = true;
    record_request_end(ctx, wm->clock);
    // A fatal error in a shutdown function, an output handler, a session
    // write handler or a destructor: the response still completes, and the
    // worker leaves after it (a bailout leaves the engine unfit for more).
    zend_try {
        wm->state.run_request_shutdown_functions();
    }
    zend_catch {
        wm->crashed = true;
    }
    zend_end_try();
    zend_try {
        php_output_end_all();
    }
    zend_catch {
        wm->crashed = true;
    }
    zend_end_try();
    zend_unset_timeout();
    renew_modules(false);
    zend_try {
        wm->state.end_session();
    }
    zend_catch {
        wm->crashed = true;
    }
    zend_end_try();
    zend_try {
        php_output_deactivate();
    }
    zend_end_try();
    set_path_translated(nullptr);
    close_request_body();
    backends::request_ending();
    reuse::script_done(current_slot ? current_slot->script : "");
    deactivate_sapi();
    finish_fastcgi_request(ctx);
    if (EG(exception)) zend_exception_error(EG(exception), E_ERROR); // from a destructor
    // After the response: the request's backend sessions are reset.
    backends::end_request();
    reuse::request_done(true);
    zend_try {
        wm->state.after_request();
    }
    zend_catch {
        wm->crashed = true;
    }
    zend_end_try();
    restore_request_ini(ctx);
    // A request that raised memory_limit and grew the heap past the pool's
    // value: this worker cannot honour the limit any more.
    if (zend_set_memory_limit(PG(memory_limit)) == FAILURE) wm->stop_after = true;
    if (wm->crashed) wm->stop_after = true;
    leave_request_context();
    wm->request_open = wm->ending = false;
    set_idle();
    if (!wm->loop->done()) wm->stop_after = true;
}

// The next request the handler should see; false when the worker must stop.
// ping.path and pm.status_path are answered here, as in classic mode.
bool next_request() {
    for (;;) {
        fastcgi::Connection* conn = nullptr;
        const fastcgi::Request* req = nullptr;
        if (wm->stop_after || !wm->loop->next(conn, req)) return false;
        if (!start_request(*conn, *req)) {
            end_request();
            return false;
        }
        // Something the request's start-up threw (an error handler for a
        // PHP_VALUE warning): reported, the request goes on.
        if (EG(exception)) zend_exception_error(EG(exception), E_ERROR);
        if (!handle_status_request() && SG(request_info).request_method) return true;
        end_request();
    }
}

// An exception the handler did not catch: the user's exception handler, then
// "PHP Fatal error: Uncaught ..." and a 500 as in classic mode, but no bailout:
// the worker goes on.
void report_uncaught_exception() {
    if (Z_TYPE(EG(user_exception_handler)) != IS_UNDEF) zend_user_exception_handler();
    if (EG(exception)) zend_exception_error(EG(exception), E_ERROR);
}

} // namespace

extern "C" ZEND_FUNCTION(lowphp_handle_request) {
    zend_fcall_info fci;
    zend_fcall_info_cache fcc;
    ZEND_PARSE_PARAMETERS_START(1, 1)
    Z_PARAM_FUNC(fci, fcc)
    ZEND_PARSE_PARAMETERS_END();
    if (!wm) {
        zend_throw_exception(spl_ce_RuntimeException,
                             "lowphp_handle_request() called while not in worker mode", 0);
        RETURN_THROWS();
    }
    if (wm->in_handler || wm->ending) {
        zend_throw_error(nullptr, "lowphp_handle_request() cannot be called from its handler");
        RETURN_THROWS();
    }
    if (wm->stopped) { // a loop that ignores false must not spin
        zend_throw_unwind_exit();
        RETURN_THROWS();
    }
    if (!wm->booted) end_boot();
    if (!next_request()) {
        wm->stopped = true;
        RETURN_FALSE;
    }
    zend_set_timeout(EG(timeout_seconds), 0);
    set_state(WorkerState::Running);
    zval retval;
    fci.retval = &retval;
    wm->in_handler = true;
    wm->handler_bailed = false; // in WorkerMode: a local would not survive the longjmp
    zend_try {
        if (zend_call_function(&fci, &fcc) == SUCCESS) zval_ptr_dtor(&retval);
    }
    zend_catch {
        wm->handler_bailed = true;
    }
    zend_end_try();
    wm->in_handler = false;
    if (wm->handler_bailed) {
        // A fatal error, max_execution_time or memory_limit: the script unwinds
        // and run_worker_script completes the response, as php-fpm would.
        wm->stopped = true;
        zend_bailout();
    }
    if (EG(exception)) {
        if (zend_is_unwind_exit(EG(exception)) || zend_is_graceful_exit(EG(exception))) {
            // exit(): the script ends (no catch or finally runs), the response
            // is completed on the way out and the worker replaced.
            wm->stopped = true;
            return;
        }
        report_uncaught_exception();
    }
    end_request();
    RETURN_TRUE;
}

WorkerScriptEnd run_worker_script(const config::PoolConfig& pool, WorkerLoop& loop) {
    WorkerMode mode;
    mode.loop = &loop;
    mode.pool = &pool;
    wm = &mode;
    worker_mode_active = true;
    const std::string& script = pool.worker_script;
    std::string dir = script.substr(0, script.rfind('/'));
    std::string name = script.substr(script.rfind('/'));
    mode.boot.params.set("SCRIPT_FILENAME", script);
    mode.boot.params.set("SCRIPT_NAME", name);
    mode.boot.params.set("PHP_SELF", name);
    mode.boot.params.set("DOCUMENT_ROOT", dir.empty() ? "/" : dir);
    mode.boot.params.set("FRANKENPHP_WORKER", "1");
    mode.boot.params.set("LOWPHP_WORKER", "1");
    current_request = &mode.boot;
    SG(server_context) = &mode.boot;
    SG(request_info).request_method = nullptr;
    SG(request_info).query_string = nullptr;
    SG(request_info).request_uri = nullptr;
    SG(request_info).content_type = nullptr;
    SG(request_info).content_length = 0;
    SG(sapi_headers).http_response_code = 200;
    set_path_translated(script.c_str());
    if (php_request_startup() == FAILURE) {
        leave_request_context();
        return kWorkerScriptFailed;
    }
    zend_file_handle fh;
    zend_stream_init_filename(&fh, script.c_str());
    fh.primary_script = 1;
    EG(exit_status) = 0;
    php_execute_script(&fh);
    zend_destroy_file_handle(&fh);
    // A fatal error sets exit status 255; exit() leaves its own.
    bool crashed = mode.crashed || (mode.request_open && EG(exit_status) == 255);
    if (mode.request_open) {
        // The handler died (fatal error, exit): its request ends with the script.
        record_request_end(*mode.ctx, mode.clock);
    }
    if (!mode.booted) set_path_translated(nullptr);
    mode.state.release_baseline();
    php_request_shutdown(nullptr);
    if (mode.request_open) {
        finish_fastcgi_request(*mode.ctx);
        restore_request_ini(*mode.ctx);
        mode.request_open = false;
        loop.done();
    }
    leave_request_context();
    wm = nullptr;
    if (!mode.booted) return kWorkerScriptFailed;
    return crashed ? kWorkerScriptCrashed : kWorkerScriptEnded;
}

} // namespace lowphp::sapi
