// Worker mode: what one handled request may change in the engine, and how the
// next one gets it back as it was right after the worker script's boot. php-fpm
// gets all of this back by ending the PHP request; a warm worker must undo each
// piece by hand (FrankenPHP shipped each of these leaks: see
// docs/design/worker-mode.md).
#include <clocale>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lowphp/word_list.h"
#include "worker_mode_internal.h"

extern "C" {
#include "ext/date/php_date.h"
#include "ext/random/php_random.h"
#include "ext/session/php_session.h"
#include "ext/standard/basic_functions.h"
#include "ext/standard/php_filestat.h"
#include "php_output.h"
#include "zend_exceptions.h"
#include "zend_ini.h"
}

namespace lowphp::sapi {
namespace {

zend_date_globals* date_globals_ptr() {
    auto* date =
        static_cast<zend_module_entry*>(zend_hash_str_find_ptr(&module_registry, "date", 4));
    return date ? static_cast<zend_date_globals*>(date->globals_ptr) : nullptr;
}

// A superglobal rebuilt by the callback PHP registered for it (the same one
// php_hash_environment runs at a classic request's start).
void rebuild(const char* name) {
    auto* ag = static_cast<zend_auto_global*>(
        zend_hash_str_find_ptr(CG(auto_globals), name, strlen(name)));
    if (ag && ag->auto_global_callback) ag->armed = ag->auto_global_callback(ag->name);
}

bool in_symbol_table(const char* name) {
    return zend_hash_str_find(&EG(symbol_table), name, strlen(name)) != nullptr;
}

} // namespace

void RequestState::take_baseline(const std::string& keep_ini) {
    std::vector<std::string> names = split_words(keep_ini);
    keep_ini_ = std::set<std::string>(names.begin(), names.end());
    ini_.clear();
    if (!EG(modified_ini_directives)) return take_other_baselines();
    zend_string* name;
    void* ptr;
    ZEND_HASH_FOREACH_STR_KEY_PTR(EG(modified_ini_directives), name, ptr) {
        auto* entry = static_cast<zend_ini_entry*>(ptr);
        if (!name) continue;
        IniValue v;
        v.set = entry->value != nullptr;
        if (v.set) v.value.assign(ZSTR_VAL(entry->value), ZSTR_LEN(entry->value));
        v.modifiable = entry->modifiable;
        ini_.emplace(std::string(ZSTR_VAL(name), ZSTR_LEN(name)), std::move(v));
    }
    ZEND_HASH_FOREACH_END();
    take_other_baselines();
}

void RequestState::take_other_baselines() {
    for (int i = 0; i < PS_NUM_APIS; ++i)
        ZVAL_COPY(&session_handlers_[i], &PS(mod_user_names).names[i]);
    putenv_keys_.clear();
    zend_string* key;
    ZEND_HASH_FOREACH_STR_KEY(&BG(putenv_ht), key) {
        if (key) putenv_keys_.emplace(ZSTR_VAL(key), ZSTR_LEN(key));
    }
    ZEND_HASH_FOREACH_END();
    const char* locale = setlocale(LC_ALL, nullptr);
    locale_ = locale ? locale : "C";
    zend_date_globals* date = date_globals_ptr();
    has_timezone_ = date && date->timezone;
    if (has_timezone_) timezone_ = date->timezone;
    cwd_.reset(open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    shutdown_base_ =
        BG(user_shutdown_function_names) ? BG(user_shutdown_function_names)->nNextFreeElement : 0;
    if (shutdown_base_ < 0) shutdown_base_ = 0;
}

void RequestState::release_baseline() {
    for (zval& handler : session_handlers_) {
        zval_ptr_dtor(&handler);
        ZVAL_UNDEF(&handler);
    }
}

// Last request's error_get_last() and exit status must not show in this one.
void RequestState::clear_last_error() {
    if (PG(last_error_message)) {
        zend_string_release(PG(last_error_message));
        PG(last_error_message) = nullptr;
    }
    if (PG(last_error_file)) {
        zend_string_release(PG(last_error_file));
        PG(last_error_file) = nullptr;
    }
    PG(last_error_type) = 0;
    PG(last_error_lineno) = 0;
}

// $_GET, $_POST, $_COOKIE, $_FILES, $_SERVER (and $_ENV, $_REQUEST when the
// code uses them) from this request; no $_SESSION before session_start().
// $_FILES is emptied first: the multipart parser fills it while $_POST is built.
void RequestState::fresh_superglobals() {
    zend_hash_str_del_ind(&EG(symbol_table), "_SESSION", sizeof("_SESSION") - 1);
    // All of them go first, as php_request_shutdown drops them: import_environment
    // copies a $_SERVER that is still there into a new $_ENV (EGPCS).
    for (zval& array : PG(http_globals)) {
        zval_ptr_dtor_nogc(&array);
        ZVAL_UNDEF(&array);
    }
    for (const char* name : {"_GET", "_POST", "_COOKIE", "_FILES"})
        rebuild(name);
    // $_SERVER is copied from a non-empty $_ENV (import_environment): the
    // request's $_ENV first.
    if (in_symbol_table("_ENV")) rebuild("_ENV");
    rebuild("_SERVER");
    if (in_symbol_table("_REQUEST")) rebuild("_REQUEST");
}

void RequestState::before_request() {
    clear_last_error();
    EG(exit_status) = 0;
    zend_memory_reset_peak_usage();
    php_clear_stat_cache(false, nullptr, 0);
    RANDOM_G(mt19937_seeded) = false;
}

// register_shutdown_function() during a request: run at its end, as php-fpm
// runs them, then forgotten (the boot's own stay for the worker's exit).
void RequestState::run_request_shutdown_functions() {
    HashTable* fns = BG(user_shutdown_function_names);
    if (!fns) return;
    for (zend_long i = shutdown_base_; i < fns->nNextFreeElement; ++i) {
        zval* entry = zend_hash_index_find(fns, static_cast<zend_ulong>(i));
        if (!entry) continue;
        auto* fn = static_cast<php_shutdown_function_entry*>(Z_PTR_P(entry));
        zval retval;
        fn->fci.retval = &retval;
        if (zend_call_function(&fn->fci, &fn->fci_cache) == SUCCESS) zval_ptr_dtor(&retval);
        if (EG(exception)) zend_exception_error(EG(exception), E_ERROR);
        zend_hash_index_del(fns, static_cast<zend_ulong>(i));
    }
    shutdown_base_ = fns->nNextFreeElement; // the next request's start here
}

// The request's session is written and closed now (php-fpm: session RSHUTDOWN),
// and nothing of it stays for the next request (GHSA-r3xh-3r3w-47gp).
void RequestState::end_session() {
    if (PS(session_status) == php_session_active) php_session_flush(1);
    zval_ptr_dtor(&PS(http_session_vars));
    ZVAL_UNDEF(&PS(http_session_vars));
    if (PS(mod_data) || PS(mod_user_implemented)) {
        zend_try {
            PS(mod)->s_close(&PS(mod_data));
        }
        zend_end_try();
    }
    if (PS(id)) {
        zend_string_release_ex(PS(id), 0);
        PS(id) = nullptr;
    }
    if (PS(session_vars)) {
        zend_string_release_ex(PS(session_vars), 0);
        PS(session_vars) = nullptr;
    }
    PS(session_status) = php_session_none;
    PS(in_save_handler) = false;
    PS(set_handler) = false;
    PS(mod_data) = nullptr;
    PS(mod_user_is_open) = false;
    PS(define_sid) = true;
    zend_hash_str_del_ind(&EG(symbol_table), "_SESSION", sizeof("_SESSION") - 1);
}

// ini_set(), PHP_VALUE and .user.ini changes go back to the boot's values,
// except the names in worker.keep_ini.
void RequestState::restore_ini() {
    std::vector<zend_string*> changed;
    zend_string* name;
    if (EG(modified_ini_directives)) {
        ZEND_HASH_FOREACH_STR_KEY(EG(modified_ini_directives), name) {
            if (name) changed.push_back(zend_string_copy(name));
        }
        ZEND_HASH_FOREACH_END();
    }
    for (zend_string* n : changed) {
        std::string key(ZSTR_VAL(n), ZSTR_LEN(n));
        if (!ini_.count(key) && !keep_ini_.count(key))
            zend_restore_ini_entry(n, ZEND_INI_STAGE_DEACTIVATE);
        zend_string_release(n);
    }
    for (const auto& [key, base] : ini_) {
        if (keep_ini_.count(key)) continue;
        auto* entry = static_cast<zend_ini_entry*>(
            zend_hash_str_find_ptr(EG(ini_directives), key.data(), key.size()));
        if (!entry) continue;
        bool same = base.set
                        ? entry->value && zend_string_equals_cstr(entry->value, base.value.data(),
                                                                  base.value.size())
                        : !entry->value;
        if (same) continue;
        zend_string* n = zend_string_init(key.data(), key.size(), 0);
        zend_string* v = zend_string_init(base.value.data(), base.value.size(), 0);
        zend_alter_ini_entry_ex(n, v, ZEND_INI_SYSTEM, ZEND_INI_STAGE_DEACTIVATE, true);
        entry->modifiable = base.modifiable;
        zend_string_release(v);
        zend_string_release(n);
    }
}

// session_set_save_handler() in a request: the boot's handlers come back (the
// ini restore already put session.save_handler back).
void RequestState::restore_session_handlers() {
    for (int i = 0; i < PS_NUM_APIS; ++i) {
        zval& now = PS(mod_user_names).names[i];
        zval& base = session_handlers_[i];
        if (Z_TYPE(now) == Z_TYPE(base) &&
            (!Z_REFCOUNTED(now) || Z_COUNTED(now) == Z_COUNTED(base)))
            continue;
        zval_ptr_dtor(&now);
        ZVAL_COPY(&now, &base);
    }
}

// What basic's and date's RSHUTDOWN give a classic request back: putenv(),
// setlocale(), umask(), date_default_timezone_set(), and the working directory.
void RequestState::restore_process_state() {
    // Deleting a putenv() key restores the variable as it was before it.
    std::vector<zend_string*> added;
    zend_string* key;
    ZEND_HASH_FOREACH_STR_KEY(&BG(putenv_ht), key) {
        if (key && !putenv_keys_.count(std::string(ZSTR_VAL(key), ZSTR_LEN(key))))
            added.push_back(key);
    }
    ZEND_HASH_FOREACH_END();
    for (zend_string* k : added)
        zend_hash_del(&BG(putenv_ht), k);
    const char* locale = setlocale(LC_ALL, nullptr);
    if (!locale || locale_ != locale) {
        setlocale(LC_ALL, locale_.c_str());
        zend_update_current_locale();
        if (BG(ctype_string)) {
            zend_string_release(BG(ctype_string));
            BG(ctype_string) = nullptr;
        }
    }
    if (BG(umask) != -1) {
        umask(static_cast<mode_t>(BG(umask)));
        BG(umask) = -1;
    }
    if (zend_date_globals* date = date_globals_ptr()) {
        bool same = has_timezone_ ? date->timezone && timezone_ == date->timezone : !date->timezone;
        if (!same) {
            if (date->timezone) efree(date->timezone);
            date->timezone = has_timezone_ ? estrdup(timezone_.c_str()) : nullptr;
        }
    }
    if (cwd_) (void)!fchdir(cwd_.get());
}

void RequestState::after_request() {
    restore_ini();
    restore_session_handlers();
    restore_process_state();
    clear_last_error();
    SG(sapi_headers).http_response_code = 200;
}

} // namespace lowphp::sapi
