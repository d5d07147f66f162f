// The fpm-fcgi SAPI: PHP's view of a FastCGI request (output, headers, input,
// variables) and the pool's PHP start-up in its zygote.
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <unistd.h>

#include "lowphp/backends.h"
#include "lowphp/headers.h"
#include "lowphp/log.h"
#include "lowphp/sapi.h"
#include "sapi_internal.h"

extern "C" {
#include "ext/standard/info.h"
#include "php_ini.h"
}

namespace lowphp::sapi {

CgiGlobals cgi_globals;
RequestContext* current_request = nullptr;
const config::PoolConfig* current_pool = nullptr;
WorkerSlot* current_slot = nullptr;

namespace {

size_t ub_write(const char* str, size_t len) {
    RequestContext* ctx = current_request;
    // -i / -m / -v, and a worker script's boot (no client yet): plain stdout.
    if (!ctx || !ctx->conn) return fwrite(str, 1, len, stdout);
    bool written = ctx->closed ? write_after_finish(*ctx, ClosedOutput::Stream::Stdout, len)
                               : ctx->conn->write(fastcgi::kStdout, str, len);
    if (!written) {
        if (worker_mode_active) {
            PG(connection_status) |= PHP_CONNECTION_ABORTED;
            return len;
        }
        // As php-fpm: output the client cannot get aborts the script unless
        // ignore_user_abort is set.
        php_handle_aborted_connection();
        return 0;
    }
    return len;
}

void flush(void* server_context) {
    auto* ctx = static_cast<RequestContext*>(server_context);
    if (!ctx || !ctx->conn) {
        fflush(stdout);
        return;
    }
    // Only what PHP already wrote goes out: flush() sends no headers (php-fpm's
    // sapi_cgibin_flush), so header() still works while output_buffering holds
    // the body.
    bool flushed = ctx->closed ? flush_after_finish(*ctx) : ctx->conn->flush();
    if (flushed) return;
    if (worker_mode_active)
        PG(connection_status) |= PHP_CONNECTION_ABORTED;
    else
        php_handle_aborted_connection();
}

int send_headers(sapi_headers_struct* headers) {
    if (SG(request_info).no_headers == 1) return SAPI_HEADER_SENT_SUCCESSFULLY;
    ResponseHead head;
    head.status = headers->http_response_code;
    if (headers->http_status_line) head.status_line = headers->http_status_line;
    head.rfc2616_headers = cgi_globals.rfc2616_headers;
    head.nph = cgi_globals.nph;
    head.headers.reserve(zend_llist_count(&headers->headers));
    zend_llist_position pos;
    for (auto* h =
             static_cast<sapi_header_struct*>(zend_llist_get_first_ex(&headers->headers, &pos));
         h; h = static_cast<sapi_header_struct*>(zend_llist_get_next_ex(&headers->headers, &pos)))
        head.headers.emplace_back(h->header, h->header_len);
    std::string block = encode_head(head);
    RequestContext* ctx = current_request;
    if (ctx && !ctx->conn) return SAPI_HEADER_SENT_SUCCESSFULLY; // a worker script's boot
    if (ctx && !ctx->closed)
        ctx->conn->write(fastcgi::kStdout, block.data(), block.size());
    else if (!ctx)
        fwrite(block.data(), 1, block.size(), stdout);
    return SAPI_HEADER_SENT_SUCCESSFULLY;
}

size_t read_post(char* buffer, size_t count) {
    RequestContext* ctx = current_request;
    if (!ctx || !ctx->conn || ctx->closed) return 0;
    size_t remaining = static_cast<size_t>(SG(request_info).content_length) - SG(read_post_bytes);
    if (remaining < count) count = remaining;
    // php-fpm's sapi_cgibin_read_post: with REQUEST_BODY_FILE the body is read
    // from that file, not from the FastCGI stream.
    if (!ctx->body_file) {
        const std::string_view* file = ctx->params.find("REQUEST_BODY_FILE");
        if (file && !file->empty()) {
            ctx->body_file.reset(open(file->data(), O_RDONLY | O_CLOEXEC));
            if (!ctx->body_file) {
                int err = errno;
                php_error(E_WARNING, "REQUEST_BODY_FILE: open('%s') failed: %s (%d)", file->data(),
                          strerror(err), err);
                return 0;
            }
        }
    }
    if (!ctx->body_file) return ctx->conn->read_stdin(buffer, count);
    size_t done = 0;
    while (done < count) {
        ssize_t n = ::read(ctx->body_file.get(), buffer + done, count - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += static_cast<size_t>(n);
    }
    return done;
}

char* sapi_getenv(const char* name, size_t len) {
    if (!current_request) return getenv(name);
    std::string_view key(name, len);
    if (key == "HTTP_PROXY") return nullptr; // httpoxy
    // PHP's getenv() callers only read the value (NUL-terminated: see ParamList).
    const std::string_view* v = current_request->params.find(key);
    return v ? const_cast<char*>(v->data()) : nullptr;
}

char* read_cookies() {
    return sapi_getenv("HTTP_COOKIE", sizeof("HTTP_COOKIE") - 1);
}

void (*php_import_environment_original)(zval*) = nullptr;

// $_SERVER (and $_ENV): the process environment, then every FastCGI param.
void import_environment(zval* array) {
    if (Z_TYPE(PG(http_globals)[TRACK_VARS_ENV]) == IS_ARRAY &&
        Z_ARR_P(array) != Z_ARR(PG(http_globals)[TRACK_VARS_ENV]) &&
        zend_hash_num_elements(Z_ARRVAL(PG(http_globals)[TRACK_VARS_ENV])) > 0) {
        zend_array_destroy(Z_ARR_P(array));
        Z_ARR_P(array) = zend_array_dup(Z_ARR(PG(http_globals)[TRACK_VARS_ENV]));
        return;
    }
    if (Z_TYPE(PG(http_globals)[TRACK_VARS_SERVER]) == IS_ARRAY &&
        Z_ARR_P(array) != Z_ARR(PG(http_globals)[TRACK_VARS_SERVER]) &&
        zend_hash_num_elements(Z_ARRVAL(PG(http_globals)[TRACK_VARS_SERVER])) > 0) {
        zend_array_destroy(Z_ARR_P(array));
        Z_ARR_P(array) = zend_array_dup(Z_ARR(PG(http_globals)[TRACK_VARS_SERVER]));
        return;
    }
    php_import_environment_original(array);
    if (!current_request) return;
    bool is_env = Z_ARR_P(array) == Z_ARR(PG(http_globals)[TRACK_VARS_ENV]);
    // php-fpm's param table lists the newest entry first (FCGI_ROLE last).
    const auto& items = current_request->params.items();
    for (auto it = items.rbegin(); it != items.rend(); ++it) {
        const auto& [name, value] = *it;
        if (name == "HTTP_PROXY") continue; // httpoxy: php-fpm never exposes it
        char* val = const_cast<char*>(value.data());
        size_t new_len;
        if (sapi_module.input_filter(is_env ? PARSE_ENV : PARSE_SERVER, name.data(), &val,
                                     value.size(), &new_len))
            php_register_variable_safe(name.data(), val, new_len, array);
    }
}

void load_environment(zval* array) {
    php_import_environment_original(array);
    if (!current_request) return;
    const auto& items = current_request->params.items();
    for (auto it = items.rbegin(); it != items.rend(); ++it)
        if (it->first != "HTTP_PROXY")
            php_register_variable_safe(it->first.data(), it->second.data(), it->second.size(),
                                       array);
}

void register_variables(zval* track) {
    php_import_environment_variables(track);
    std::string self = SG(request_info).request_uri ? SG(request_info).request_uri : "";
    if (cgi_globals.fix_pathinfo && current_request) {
        if (const std::string_view* pi = current_request->params.find("PATH_INFO")) self += *pi;
    }
    char* val = self.data();
    size_t len = self.size();
    if (sapi_module.input_filter(PARSE_SERVER, "PHP_SELF", &val, len, &len))
        php_register_variable_safe("PHP_SELF", val, len, track);
}

void log_message(const char* message, int) {
    log::write(log::LogLevel::Notice, "sapi_cgi_log_message", 0, false, "PHP message: %s", message);
    // php-fpm aborts inside its FastCGI logger when a message after
    // fastcgi_finish_request() does not fit; ours aborts here, outside the
    // C++ logger, so no destructor is skipped by the bailout.
    if (current_request && std::exchange(current_request->abort_after_log, false))
        php_handle_aborted_connection();
}

// Worker mode: header() between handled requests (or at boot) has no response
// to go to; dropped rather than left for the next request.
int worker_header_handler(sapi_header_struct*, sapi_header_op_enum, sapi_headers_struct*) {
    return current_request && current_request->conn ? SAPI_HEADER_ADD : 0;
}

int activate() {
    if (current_request) activate_user_ini();
    return SUCCESS;
}

int deactivate() {
    if (SG(sapi_started) && current_request) finish_fastcgi_request(*current_request);
    return SUCCESS;
}

PHP_INI_BEGIN()
STD_PHP_INI_BOOLEAN("cgi.rfc2616_headers", "0", PHP_INI_ALL, OnUpdateBool, rfc2616_headers,
                    CgiGlobals, cgi_globals)
STD_PHP_INI_BOOLEAN("cgi.nph", "0", PHP_INI_ALL, OnUpdateBool, nph, CgiGlobals, cgi_globals)
STD_PHP_INI_BOOLEAN("cgi.force_redirect", "1", PHP_INI_SYSTEM, OnUpdateBool, force_redirect,
                    CgiGlobals, cgi_globals)
STD_PHP_INI_ENTRY("cgi.redirect_status_env", nullptr, PHP_INI_SYSTEM, OnUpdateString,
                  redirect_status_env, CgiGlobals, cgi_globals)
STD_PHP_INI_BOOLEAN("cgi.fix_pathinfo", "1", PHP_INI_SYSTEM, OnUpdateBool, fix_pathinfo, CgiGlobals,
                    cgi_globals)
STD_PHP_INI_BOOLEAN("cgi.discard_path", "0", PHP_INI_SYSTEM, OnUpdateBool, discard_path, CgiGlobals,
                    cgi_globals)
STD_PHP_INI_BOOLEAN("fastcgi.logging", "1", PHP_INI_SYSTEM, OnUpdateBool, fcgi_logging, CgiGlobals,
                    cgi_globals)
STD_PHP_INI_ENTRY("fastcgi.error_header", nullptr, PHP_INI_SYSTEM, OnUpdateString, error_header,
                  CgiGlobals, cgi_globals)
STD_PHP_INI_ENTRY("fpm.config", nullptr, PHP_INI_SYSTEM, OnUpdateString, fpm_config, CgiGlobals,
                  cgi_globals)
PHP_INI_END()

PHP_MINIT_FUNCTION(cgi_fcgi) {
    (void)type;
    REGISTER_INI_ENTRIES();
    return SUCCESS;
}

PHP_MSHUTDOWN_FUNCTION(cgi_fcgi) {
    (void)type;
    UNREGISTER_INI_ENTRIES();
    return SUCCESS;
}

PHP_MINFO_FUNCTION(cgi_fcgi) {
    php_info_print_table_start();
    php_info_print_table_row(2, "php-fpm", "active");
    php_info_print_table_end();
    DISPLAY_INI_ENTRIES();
}

// Named "cgi-fcgi" as in php-fpm: apps test extension_loaded('cgi-fcgi').
zend_module_entry cgi_module_entry = {
    STANDARD_MODULE_HEADER,
    "cgi-fcgi",
    sapi_functions,
    PHP_MINIT(cgi_fcgi),
    PHP_MSHUTDOWN(cgi_fcgi),
    nullptr,
    nullptr,
    PHP_MINFO(cgi_fcgi),
    PHP_VERSION,
    STANDARD_MODULE_PROPERTIES,
};

int startup(sapi_module_struct* module) {
    return php_module_startup(module, &cgi_module_entry);
}

} // namespace

sapi_module_struct lowphp_sapi_module = {
    const_cast<char*>("fpm-fcgi"),    // name: opcache only runs under known SAPI names
    const_cast<char*>("FPM/FastCGI"), // pretty name
    startup,
    php_module_shutdown_wrapper,
    activate,
    deactivate,
    ub_write,
    flush,
    nullptr, // get_stat
    sapi_getenv,
    php_error,
    nullptr, // header_handler
    send_headers,
    nullptr, // send_header
    read_post,
    read_cookies,
    register_variables,
    log_message,
    nullptr, // get_request_time
    nullptr, // terminate_process
    STANDARD_SAPI_MODULE_PROPERTIES,
};

namespace {

std::string fpm_config_dir() {
    return "/etc/php/" + std::to_string(PHP_MAJOR_VERSION) + "." +
           std::to_string(PHP_MINOR_VERSION) + "/fpm";
}

// php.ini lookup as php-fpm does it: -c, then PHPRC, then php-fpm's own
// directory; a pool's `php_ini` takes precedence over all of them.
void choose_ini(const config::PoolConfig* pool, const PhpIniOptions& ini,
                std::string& path_storage) {
    lowphp_sapi_module.php_ini_ignore = ini.no_ini ? 1 : 0;
    lowphp_sapi_module.php_ini_ignore_cwd = 1;
    if (pool && !pool->php_ini.empty())
        path_storage = pool->php_ini;
    else if (!ini.ini_path.empty())
        path_storage = ini.ini_path;
    else if (const char* rc = getenv("PHPRC"); rc && *rc)
        path_storage = rc;
    else
        path_storage = fpm_config_dir();
    // -n: no php.ini, unless one is named (-c or the pool's php_ini), which PHP
    // then still loads (php_init_config), as php-fpm's -n -c does.
    bool named = (pool && !pool->php_ini.empty()) || !ini.ini_path.empty();
    lowphp_sapi_module.php_ini_path_override = ini.no_ini && !named ? nullptr : path_storage.data();
}

// PHP reads its scan directories from PHP_INI_SCAN_DIR, else from the one built
// into libphp (the embed SAPI's conf.d): php-fpm's is fpm/conf.d, so that one
// is given, and where the variable names a blank directory (":/extra") PHP
// would put its built-in one, php-fpm's goes instead. The variable is put back
// as it was once PHP has started: scripts (getenv with clear_env = no) and
// their child processes must not inherit our setting.
class ScanDirForStartup {
  public:
    explicit ScanDirForStartup(const config::PoolConfig* pool) {
        const char* env = getenv("PHP_INI_SCAN_DIR");
        if (env) saved_ = env;
        std::string dirs = pool && !pool->php_ini_scan_dir.empty() ? pool->php_ini_scan_dir
                           : env                                   ? std::string(env)
                                                                   : std::string();
        std::string fpm_dir = fpm_config_dir() + "/conf.d";
        if (!env && dirs.empty()) dirs = fpm_dir;
        setenv("PHP_INI_SCAN_DIR", with_default_dir(dirs, fpm_dir).c_str(), 1);
    }
    ~ScanDirForStartup() {
        if (saved_)
            setenv("PHP_INI_SCAN_DIR", saved_->c_str(), 1);
        else
            unsetenv("PHP_INI_SCAN_DIR");
    }
    ScanDirForStartup(const ScanDirForStartup&) = delete;
    ScanDirForStartup& operator=(const ScanDirForStartup&) = delete;

  private:
    // Blank entries of a ':' list become `dflt`; an empty list stays empty (no scan).
    static std::string with_default_dir(const std::string& list, const std::string& dflt) {
        if (list.empty()) return list;
        std::string out;
        size_t start = 0;
        for (bool first = true;; first = false) {
            size_t end = list.find(':', start);
            std::string dir = list.substr(start, end == std::string::npos ? end : end - start);
            out += (first ? "" : ":") + (dir.empty() ? dflt : dir);
            if (end == std::string::npos) return out;
            start = end + 1;
        }
    }

    std::optional<std::string> saved_;
};

// -d entries as INI text, quoted the way php_ini_builder_define quotes them.
char* build_ini_entries(const PhpIniOptions& ini) {
    static std::string text; // PHP keeps the pointer for the life of the process
    text.clear();
    for (const auto& d : ini.defines) {
        size_t eq = d.find('=');
        if (eq == std::string::npos) {
            text += d + "=1\n";
            continue;
        }
        std::string name = d.substr(0, eq), value = d.substr(eq + 1);
        unsigned char first = value.empty() ? 0 : static_cast<unsigned char>(value[0]);
        bool quote = first && !isalnum(first) && first != '"' && first != '\'';
        text += name + "=" + (quote ? "\"" + value + "\"" : value) + "\n";
    }
    return text.data();
}

std::string running_binary() {
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string("/usr/sbin/lowphp-fpm");
}

} // namespace

bool start_php(const config::PoolConfig* pool, const PhpIniOptions& ini) {
    static std::string ini_path;
    zend_signal_startup();
    sapi_startup(&lowphp_sapi_module);
    choose_ini(pool, ini, ini_path);
    lowphp_sapi_module.ini_entries = build_ini_entries(ini);
    // PHP_BINARY: php-fpm passes its argv[0], which PHP resolves to the
    // binary's real path; ours is the running binary wherever it was started.
    static std::string binary = running_binary();
    lowphp_sapi_module.executable_location = binary.data();
    php_import_environment_original = php_import_environment_variables;
    php_import_environment_variables = import_environment;
    php_load_environment_variables = load_environment;
    if (pool && pool->worker_mode()) {
        cgi_module_entry.functions = worker_mode_functions;
        lowphp_sapi_module.header_handler = worker_header_handler;
    }
    if (pool) backends::register_php_module(*pool);
    ScanDirForStartup scan_dir(pool);
    return lowphp_sapi_module.startup(&lowphp_sapi_module) == SUCCESS;
}

bool start_pool(const config::PoolConfig& pool, const PhpIniOptions& ini) {
    if (!start_php(&pool, ini)) return false;
    apply_pool_values(pool);
    return true;
}

void shutdown_worker() {
    php_module_shutdown();
    sapi_shutdown();
}

} // namespace lowphp::sapi

namespace lowphp::sapi {

void init_worker(const config::PoolConfig& pool, Scoreboard& board, size_t pool_index,
                 uint32_t slot, int tcp_listen_fd, int access_fd) {
    access_log_fd = access_fd;
    current_pool = &pool;
    current_slot = board.slot_ptr(slot);
    status_context = {&board, pool_index, tcp_listen_fd};
    // PHP's deferred-signal layer re-installs its handlers at every request with
    // the ones it recorded at start-up as "original": record the worker's own
    // (SIGQUIT = graceful stop) instead of the zygote's, as php-fpm does.
    zend_signal_startup();
    apply_pool_values_in_worker(pool);
    // Every log line of a worker also reaches the web server on FCGI_STDERR.
    log::set_external_logger(log_to_fastcgi);
}

} // namespace lowphp::sapi
