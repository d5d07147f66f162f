// ini values that do not come from php.ini: the pool's php_value / php_admin_value
// (set once in the zygote, as php-fpm sets them in each child) and the
// PHP_VALUE / PHP_ADMIN_VALUE FastCGI params (set for one request).
#include "lowphp/log.h"
#include "lowphp/word_list.h"
#include "sapi_internal.h"

#include <cstring>

extern "C" {
#include "ext/standard/dl.h"
#include "php_ini.h"
#include "zend_ini.h"
#include "zend_ini_scanner.h"
}

namespace lowphp::sapi {
namespace {

// disable_functions / disable_classes only take effect when applied to the engine.
void apply_disable_list(const std::string& value, bool classes) {
    for (const std::string& name : split_words(value, " ,")) {
        if (classes)
            zend_disable_class(name.c_str(), name.size());
        else
            zend_disable_functions(name.c_str());
    }
}

// php-fpm's fpm_php_apply_defines_ex: "extension" loads a module, the rest alter
// the directive's master value. Returns false when the directive is unknown.
bool apply_define(const std::string& name, const std::string& value, bool system) {
    if (name == "extension" && !value.empty()) {
        zval result;
        php_dl(value.c_str(), MODULE_PERSISTENT, &result, 1);
        return Z_TYPE(result) == IS_TRUE;
    }
    if (!alter_master_ini(name, value, system)) return false;
    if (name == "disable_functions" && !value.empty()) apply_disable_list(value, false);
    if (name == "disable_classes" && !value.empty()) apply_disable_list(value, true);
    return true;
}

struct IniParseState {
    RequestContext* ctx;
    bool system;
};

void request_ini_entry(zval* key, zval* value, zval*, int callback_type, void* arg) {
    auto* st = static_cast<IniParseState*>(arg);
    if (callback_type != ZEND_INI_PARSER_ENTRY) {
        ZLOG_ERROR("Passing INI directive through FastCGI: only classic entries are allowed");
        return;
    }
    if (!key || Z_STRLEN_P(key) < 1) {
        ZLOG_ERROR("Passing INI directive through FastCGI: empty key");
        return;
    }
    if (!value) {
        ZLOG_ERROR("Passing INI directive through FastCGI: empty value for key '%s'",
                   Z_STRVAL_P(key));
        return;
    }
    // As php-fpm (fpm_php_apply_defines_ex): "extension" loads the module, which
    // stays loaded in this worker for its later requests (a module cannot be
    // scoped to a request); PHP itself warns when it cannot load it.
    if (zend_string_equals_literal(Z_STR_P(key), "extension") && Z_STRLEN_P(value) > 0) {
        zval result;
        php_dl(Z_STRVAL_P(value), MODULE_PERSISTENT, &result, 1);
        return;
    }
    zend_ini_entry* entry =
        static_cast<zend_ini_entry*>(zend_hash_find_ptr(EG(ini_directives), Z_STR_P(key)));
    if (!entry) {
        ZLOG_ERROR("Passing INI directive through FastCGI: unable to set '%s'", Z_STRVAL_P(key));
        return;
    }
    // Request-scoped: registered as modified, so PHP restores it at request end
    // (php-fpm alters the worker's master value and lets it leak into later requests).
    // A value the directive refuses is dropped without a word of ours, as in
    // php-fpm: the directive's handler has said why (e.g. "Failed to set memory limit").
    if (zend_alter_ini_entry_ex(Z_STR_P(key), Z_STR_P(value), ZEND_INI_SYSTEM,
                                ZEND_INI_STAGE_ACTIVATE, true) != SUCCESS)
        return;
    if (st->system && entry->modifiable != ZEND_INI_SYSTEM) {
        st->ctx->locked_entries.emplace_back(entry, entry->modifiable);
        entry->modifiable = ZEND_INI_SYSTEM;
    }
}

} // namespace

bool alter_master_ini(const std::string& name, const std::string& value, bool system) {
    auto* entry = static_cast<zend_ini_entry*>(
        zend_hash_str_find_ptr(EG(ini_directives), name.c_str(), name.size()));
    if (!entry) return false;
    zend_string* dup = zend_string_init(value.c_str(), value.size(), 1);
    if (!entry->on_modify || entry->on_modify(entry, dup, entry->mh_arg1, entry->mh_arg2,
                                              entry->mh_arg3, ZEND_INI_STAGE_ACTIVATE) == SUCCESS) {
        entry->value = dup;
        // A user value stays changeable (so .user.ini can still override it).
        if (system) entry->modifiable = ZEND_INI_SYSTEM;
    } else {
        zend_string_release(dup);
    }
    return true;
}

namespace {
// What the zygote could not set, in the pool's order (inherited by workers).
std::vector<const config::IniSetting*> pool_value_failures;

bool loads_extension(const config::IniSetting& v) {
    return v.name == "extension" && !v.value.empty();
}
} // namespace

// Extensions wait for the worker: php-fpm loads them in each child, where
// their start-up (MINIT) runs and what it prints reaches the child's stderr.
void apply_pool_values(const config::PoolConfig& pool) {
    for (const auto* list : {&pool.php_values, &pool.php_admin_values})
        for (const auto& v : *list)
            if (!loads_extension(v) &&
                !apply_define(v.name, v.value, list == &pool.php_admin_values))
                pool_value_failures.push_back(&v);
}

// php-fpm applies the pool's values in each child (fpm_php_init_child), which
// says what it could not set on its stderr: seen in the log only through
// catch_workers_output, once per worker. Its extensions are loaded here, in
// the pool's order.
void apply_pool_values_in_worker(const config::PoolConfig& pool) {
    size_t failed = 0;
    bool loaded = false;
    for (const auto* list : {&pool.php_values, &pool.php_admin_values}) {
        bool admin = list == &pool.php_admin_values;
        for (const auto& v : *list) {
            bool ok = true;
            if (loads_extension(v)) {
                // PHP warns when it cannot load it; php-fpm adds nothing.
                loaded = apply_define(v.name, v.value, admin) || loaded;
            } else if (failed < pool_value_failures.size() && pool_value_failures[failed] == &v) {
                ok = false;
                ++failed;
            }
            if (!ok)
                ZLOG_ERROR("Unable to set %s '%s'", admin ? "php_admin_value" : "php_value",
                           v.name.c_str());
        }
    }
    // PHP lists the modules with request hooks once, at start-up: a module
    // loaded since must be added, or its RINIT / RSHUTDOWN never run.
    if (loaded) zend_collect_module_handlers();
}

bool session_path_unset(const config::PoolConfig& pool) {
    for (const auto* list : {&pool.php_values, &pool.php_admin_values})
        for (const auto& v : *list)
            if (v.name == "session.save_path") return false;
    if (cfg_get_entry("session.save_path", sizeof("session.save_path") - 1)) return false;
    if (!zend_hash_str_exists(EG(ini_directives), "session.save_path",
                              sizeof("session.save_path") - 1))
        return false; // no session extension
    const char* handler = zend_ini_string_ex(const_cast<char*>("session.save_handler"),
                                             sizeof("session.save_handler") - 1, 0, nullptr);
    return handler && strcmp(handler, "files") == 0;
}

void set_session_path(const std::string& path) {
    if (!alter_master_ini("session.save_path", path, false))
        ZLOG_ERROR("Unable to set session.save_path");
}

void apply_request_ini(RequestContext& ctx, const char* text, bool system) {
    std::string ini = std::string(text) + "\n";
    IniParseState st{&ctx, system};
    zend_parse_ini_string(ini.data(), 1, ZEND_INI_SCANNER_NORMAL, request_ini_entry, &st);
}

void restore_request_ini(RequestContext& ctx) {
    for (auto& [entry, modifiable] : ctx.locked_entries)
        entry->modifiable = modifiable;
    ctx.locked_entries.clear();
}

} // namespace lowphp::sapi
