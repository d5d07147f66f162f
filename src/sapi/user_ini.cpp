// Per-directory configuration for the current request: [HOST=] and [PATH=]
// sections of php.ini and the .user.ini files from DOCUMENT_ROOT down to the
// script's directory, cached for user_ini.cache_ttl seconds (php-fpm's
// php_cgi_ini_activate_user_config).
#include <climits>
#include <cstdlib>
#include <ctime>
#include <map>
#include <memory>

#include "sapi_internal.h"

extern "C" {
#include "php_ini.h"
}

namespace lowphp::sapi {
namespace {

struct HashTableDeleter {
    void operator()(HashTable* ht) const {
        zend_hash_destroy(ht);
        free(ht);
    }
};

struct UserIniEntry {
    time_t expires = 0;
    std::unique_ptr<HashTable, HashTableDeleter> config;
};

std::map<std::string, UserIniEntry>& user_ini_cache() {
    static std::map<std::string, UserIniEntry> cache; // per worker, like php-fpm's CGIG
    return cache;
}

HashTable* new_config_hash() {
    auto* ht = static_cast<HashTable*>(malloc(sizeof(HashTable)));
    zend_hash_init(ht, 8, nullptr, config_zval_dtor, 1);
    return ht;
}

void parse_user_ini_chain(std::string path, const std::string& doc_root, HashTable* target) {
    if (path.empty() || path[0] != '/') {
        char resolved[PATH_MAX];
        if (!realpath(path.c_str(), resolved)) return;
        path = resolved;
    }
    // With its final slash, as php-fpm walks it: the script's own directory is
    // the last one read (a script right in DOCUMENT_ROOT reads its .user.ini).
    if (path.back() != '/') path += '/';
    const std::string& shorter = path.size() > doc_root.size() ? doc_root : path;
    const std::string& longer = path.size() > doc_root.size() ? path : doc_root;
    // Inside DOCUMENT_ROOT: every directory from the root down; outside: just this one.
    if (longer.compare(0, shorter.size(), shorter) == 0) {
        size_t pos = doc_root.size();
        while ((pos = longer.find('/', pos)) != std::string::npos) {
            php_parse_user_ini_file(longer.substr(0, pos).c_str(), PG(user_ini_filename), target);
            ++pos;
        }
    } else {
        php_parse_user_ini_file(path.c_str(), PG(user_ini_filename), target);
    }
}

void activate_user_config(const std::string& path, const std::string& doc_root) {
    time_t now = static_cast<time_t>(sapi_get_request_time());
    UserIniEntry& entry = user_ini_cache()[path];
    if (!entry.config) entry.config.reset(new_config_hash());
    if (now > entry.expires) {
        zend_hash_clean(entry.config.get());
        parse_user_ini_chain(path, doc_root, entry.config.get());
        entry.expires = now + PG(user_ini_cache_ttl);
    }
    php_ini_activate_config(entry.config.get(), PHP_INI_PERDIR, PHP_INI_STAGE_HTACCESS);
}

} // namespace

void activate_user_ini() {
    RequestContext* ctx = current_request;
    if (!SG(request_info).path_translated) return;
    if (php_ini_has_per_host_config()) {
        if (const std::string_view* host = ctx->params.find("SERVER_NAME")) {
            std::string lower(*host);
            zend_str_tolower(lower.data(), lower.size());
            php_ini_activate_per_host_config(lower.c_str(), lower.size());
        }
    }
    bool user_ini = PG(user_ini_filename) && *PG(user_ini_filename);
    if (!php_ini_has_per_dir_config() && !user_ini) return;
    std::string path = SG(request_info).path_translated;
    path.resize(zend_dirname(path.data(), path.size()));
    php_ini_activate_per_dir_config(path.data(), path.size());
    if (!user_ini) return;
    const std::string_view* root =
        ctx->params.find("CONTEXT_DOCUMENT_ROOT"); // preferred, as php-fpm
    if (!root) root = ctx->params.find("DOCUMENT_ROOT");
    if (!root) return;
    std::string doc_root(*root);
    if (!doc_root.empty() && doc_root.back() == '/') doc_root.pop_back();
    activate_user_config(path, doc_root);
}

} // namespace lowphp::sapi
