// php-fpm 8.2's init_request_info (fpm_main.c), as a pure function: which script a
// request runs and how SCRIPT_FILENAME, SCRIPT_NAME, PATH_INFO, PATH_TRANSLATED
// and their ORIG_* copies look to PHP. Branch for branch, with php-fpm's quirks
// (checked against php-fpm8.2 itself, see tests/unit/test_request_mapping.cpp).
#include <cstdlib>
#include <cstring>
#include <strings.h>
#include <sys/stat.h>

#include "lowphp/request_mapping.h"

namespace lowphp::sapi {
namespace {

using Opt = std::optional<std::string>;

// The request's params as init_request_info sees them while it rewrites them:
// get() is FCGI_GETENV, put() is FCGI_PUTENV (recorded in order for the caller).
struct Env {
    const ParamLookup& params;
    RequestInfo& info;
    Opt get(const std::string& name) const {
        auto c = info.changed.find(name);
        if (c != info.changed.end()) return c->second;
        return params(name);
    }
    Opt put(const std::string& name, const Opt& value) {
        info.changed[name] = value;
        info.puts.emplace_back(name, value);
        return value;
    }
};

// php-fpm's local variables of init_request_info. The env_* ones are what it
// reads (and re-points as it rewrites); the orig_* ones are what it got.
struct Mapping {
    explicit Mapping(Env& e) : env(e) {}
    Env& env;
    bool apache_was_here = false;
    Opt script_path_translated; // the script to run
    Opt env_path_info, env_script_name, env_path_translated, env_document_root;
    Opt orig_path_info, orig_script_name, orig_script_filename, orig_path_translated;
    bool redirected = false; // mod_fastcgi: SCRIPT_NAME replaced by REDIRECT_URL
};

// php_raw_url_decode: %XX to the byte, '+' stays (php-fpm 8.2 decodes PATH_INFO raw).
std::string url_decode(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

bool default_exists(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
}

// Apache mod_proxy_fcgi / mod_proxy_balancer send "proxy:fcgi://host:port/path?q".
// Keeps "/path"; true when a path was found (php-fpm's apache_was_here). The
// "?query" goes even when no path follows the host, as in php-fpm.
bool strip_proxy_prefix(std::string& filename, const char* prefix) {
    size_t n = strlen(prefix);
    if (filename.size() < n || strncasecmp(filename.c_str(), prefix, n) != 0) return false;
    size_t slash = filename.find('/', n);
    if (slash != std::string::npos) filename.erase(0, slash);
    size_t q = filename.find('?');
    if (q != std::string::npos) filename.resize(q);
    return slash != std::string::npos;
}

// IIS puts SCRIPT_NAME at the start of PATH_INFO: keep only what follows it.
void fix_iis_path_info(Mapping& m) {
    Opt software = m.env.get("SERVER_SOFTWARE");
    if (!software || !m.env_script_name || !m.env_path_info) return;
    if (software->rfind("Microsoft-IIS", 0) != 0) return;
    if (m.env_path_info->rfind(*m.env_script_name, 0) != 0) return;
    m.env.put("ORIG_PATH_INFO", m.env_path_info);
    std::string rest = m.env_path_info->substr(m.env_script_name->size());
    m.env_path_info = m.env.put("PATH_INFO", rest.empty() ? Opt() : Opt(rest));
}

// php-fpm rewrites SCRIPT_FILENAME in place (no FCGI_PUTENV, same position).
void fix_apache_script_filename(Mapping& m) {
    Opt original = m.env.get("SCRIPT_FILENAME");
    if (!original) return;
    std::string f = *original;
    bool a = strip_proxy_prefix(f, "proxy:fcgi://");
    bool b = strip_proxy_prefix(f, "proxy:balancer://");
    m.apache_was_here = a || b;
    if (f == *original) return;
    m.env.put("SCRIPT_FILENAME", f);
    if (m.script_path_translated == original) m.script_path_translated = f;
}

// PATH_TRANSLATED = DOCUMENT_ROOT + PATH_INFO, or, without a document root,
// the script path minus SCRIPT_NAME plus PATH_INFO.
void set_path_translated(Mapping& m, const std::string& pt) {
    std::string base;
    if (m.env_document_root) {
        base = *m.env_document_root;
        if (!base.empty() && base.back() == '/') base.pop_back();
    } else if (m.env_script_name && pt.find(*m.env_script_name) != std::string::npos) {
        base = pt.substr(0, pt.size() - m.env_script_name->size());
    } else {
        return;
    }
    if (m.orig_path_translated) m.env.put("ORIG_PATH_TRANSLATED", m.orig_path_translated);
    m.env_path_translated = m.env.put("PATH_TRANSLATED", base + m.env_path_info.value_or(""));
}

// PATH_INFO becomes the cut-off tail; SCRIPT_NAME loses it.
void set_path_info(Mapping& m, const std::string& path_info, size_t slen) {
    RequestInfo& info = m.env.info;
    if (m.orig_path_info) {
        m.env.put("ORIG_PATH_INFO", m.orig_path_info);
        // php-fpm NUL-terminates at path_info, which only shortens PATH_INFO when
        // path_info points into it (not for Apache, where it points into the script path).
        std::string head = *m.env_path_info;
        if (!m.apache_was_here) head.resize(head.size() - slen);
        if (!m.orig_script_name || *m.orig_script_name != head) {
            if (m.orig_script_name) m.env.put("ORIG_SCRIPT_NAME", m.orig_script_name);
            info.request_uri = m.env.put("SCRIPT_NAME", head);
        } else {
            info.request_uri = m.orig_script_name;
        }
    } else if (m.apache_was_here && m.env_script_name) {
        // mod_proxy_fcgi sends no PATH_INFO, but SCRIPT_NAME ends with it, as
        // sent or URL-decoded (bug #74129: PATH_INFO taken from the encoded filename).
        const std::string& sn = *m.env_script_name;
        std::string decoded =
            path_info.find('%') != std::string::npos ? url_decode(path_info) : std::string();
        size_t cut = 0;
        if (sn.size() > slen && sn.compare(sn.size() - slen, slen, path_info) == 0)
            cut = slen;
        else if (!decoded.empty() && sn.size() > decoded.size() &&
                 sn.compare(sn.size() - decoded.size(), decoded.size(), decoded) == 0)
            cut = decoded.size();
        if (cut) {
            m.env.put("ORIG_SCRIPT_NAME", m.orig_script_name);
            // php-fpm shortens the shared buffer: orig_script_name changes too.
            m.env_script_name = m.orig_script_name = sn.substr(0, sn.size() - cut);
            info.request_uri = m.env.put("SCRIPT_NAME", m.env_script_name);
        }
    }
    m.env_path_info = m.env.put("PATH_INFO", path_info);
}

// The walk found the regular file `pt` after cutting `len - pt.size()` characters.
void found_script(Mapping& m, const std::string& pt, size_t len) {
    size_t slen = len - pt.size();
    size_t pilen = m.env_path_info ? m.env_path_info->size() : 0;
    Opt path_info;
    if (m.apache_was_here) {
        path_info = m.script_path_translated->substr(pt.size()); // Apache sends no PATH_INFO
        if (slen == 0 || m.orig_path_info == path_info) path_info.reset();
    } else if (m.env_path_info && pilen > slen) {
        // The tail of the given PATH_INFO, only when it is longer than what was
        // cut: CVE-2019-11043 was the pointer underflow when it was not.
        path_info = m.env_path_info->substr(pilen - slen);
    }
    if (path_info) set_path_info(m, *path_info, slen);
    if (m.orig_script_filename != pt) {
        if (m.orig_script_filename) m.env.put("ORIG_SCRIPT_FILENAME", m.orig_script_filename);
        m.script_path_translated = m.env.put("SCRIPT_FILENAME", pt);
    }
    set_path_translated(m, pt);
}

// Cut at the last '/' (only when none is left, at the last '\\') until a
// regular file remains.
bool walk_back(Mapping& m, const IsRegularFile& is_regular_file) {
    std::string pt = *m.script_path_translated;
    size_t len = pt.size();
    for (;;) {
        size_t cut = pt.rfind('/');
        if (cut == std::string::npos) cut = pt.rfind('\\');
        if (cut == std::string::npos) return false;
        pt.resize(cut);
        if (is_regular_file(pt)) {
            found_script(m, pt, len);
            return true;
        }
    }
}

// The path does not exist or ends in '/': find the script, then SCRIPT_NAME.
void map_missing_path(Mapping& m, const IsRegularFile& is_regular_file) {
    RequestInfo& info = m.env.info;
    if (!walk_back(m, is_regular_file)) {
        if (m.orig_script_filename) m.env.put("ORIG_SCRIPT_FILENAME", m.orig_script_filename);
        m.script_path_translated = m.env.put("SCRIPT_FILENAME", std::nullopt);
        info.script_not_found = true;
    }
    if (info.request_uri) return;
    if (!m.orig_script_name || m.orig_script_name != m.env_script_name) {
        if (m.orig_script_name) m.env.put("ORIG_SCRIPT_NAME", m.orig_script_name);
        info.request_uri = m.env.put("SCRIPT_NAME", m.env_script_name);
    } else {
        info.request_uri = m.orig_script_name;
    }
}

// The path exists: record what changed (only the mod_fastcgi redirect changes much).
void map_existing_path(Mapping& m, const Opt& redirect_url) {
    RequestInfo& info = m.env.info;
    if (m.script_path_translated != m.orig_script_filename) {
        if (m.orig_script_filename) m.env.put("ORIG_SCRIPT_FILENAME", m.orig_script_filename);
        m.script_path_translated = m.env.put("SCRIPT_FILENAME", m.script_path_translated);
    }
    if (!m.apache_was_here && redirect_url) {
        if (m.orig_path_info) {
            m.env.put("ORIG_PATH_INFO", m.orig_path_info);
            m.env.put("PATH_INFO", std::nullopt);
        }
        if (m.orig_path_translated) {
            m.env.put("ORIG_PATH_TRANSLATED", m.orig_path_translated);
            m.env.put("PATH_TRANSLATED", std::nullopt);
        }
    }
    if (m.redirected) {
        if (m.orig_script_name) m.env.put("ORIG_SCRIPT_NAME", m.orig_script_name);
        info.request_uri = m.env.put("SCRIPT_NAME", m.env_script_name);
    } else {
        info.request_uri = m.env_script_name;
    }
}

void fix_pathinfo(Mapping& m, const MappingOptions& opts, const IsRegularFile& is_regular_file,
                  const PathExists& exists) {
    Opt redirect_url = m.env.get("REDIRECT_URL");
    m.env_document_root = m.env.get("DOCUMENT_ROOT");
    m.orig_path_translated = m.env_path_translated;
    m.orig_path_info = m.env_path_info;
    m.orig_script_name = m.env_script_name;
    m.orig_script_filename = m.env.get("SCRIPT_FILENAME");
    if (!m.env_document_root && opts.doc_root && !opts.doc_root->empty())
        m.env_document_root = m.env.put("DOCUMENT_ROOT", opts.doc_root);
    // Apache mod_fastcgi: SCRIPT_FILENAME is the php binary, PATH_TRANSLATED the script.
    if (!m.apache_was_here && m.env_path_translated && redirect_url &&
        m.env_path_translated != m.script_path_translated) {
        m.script_path_translated = m.env_path_translated;
        m.env_script_name = redirect_url;
        m.redirected = true;
    }
    // An empty path takes the "exists" branch, as in php-fpm.
    const std::string& sp = *m.script_path_translated;
    if (!sp.empty() && (sp.back() == '/' || !exists(sp)))
        map_missing_path(m, is_regular_file);
    else
        map_existing_path(m, redirect_url);
}

// The part of init_request_info under `if (script_path_translated)`.
void map_script(Env& env, const Opt& script_path, const MappingOptions& opts,
                const IsRegularFile& is_regular_file, const PathExists& exists) {
    RequestInfo& info = env.info;
    Mapping m(env);
    m.script_path_translated = script_path;
    m.env_path_info = env.get("PATH_INFO");
    m.env_script_name = env.get("SCRIPT_NAME");
    m.env_path_translated = env.get("PATH_TRANSLATED");
    fix_iis_path_info(m);
    fix_apache_script_filename(m);
    if (opts.fix_pathinfo) {
        fix_pathinfo(m, opts, is_regular_file, exists);
    } else {
        // "pre 4.3 behaviour": PATH_TRANSLATED, when given, is the script.
        info.request_uri = m.env_path_info ? m.env_path_info : m.env_script_name;
        if (!opts.discard_path && m.env_path_translated)
            m.script_path_translated = m.env_path_translated;
    }
    if (m.script_path_translated && is_valid_path(*m.script_path_translated))
        info.path_translated = m.script_path_translated;
    info.query_string = env.get("QUERY_STRING");
    info.content_type = env.get("CONTENT_TYPE").value_or("");
    Opt cl = env.get("CONTENT_LENGTH");
    info.content_length = cl ? std::atol(cl->c_str()) : 0; // "12abc" is 12, as php-fpm
}

} // namespace

bool is_valid_path(const std::string& path) {
    for (size_t p = path.find(".."); p != std::string::npos; p = path.find("..", p + 1)) {
        bool before = p == 0 || path[p - 1] == '/';
        bool after = p + 2 == path.size() || path[p + 2] == '/';
        if (before && after) return false;
    }
    return true;
}

bool sapi_getenv_hides(std::string_view name) {
    // strncasecmp(name, "HTTP_PROXY", name_len) == 0 in SAPI.c
    return name.size() <= 10 && strncasecmp(name.data(), "HTTP_PROXY", name.size()) == 0;
}

std::optional<std::string> server_http_proxy(bool in_array,
                                             const std::optional<std::string>& process_value) {
    return in_array ? process_value : std::nullopt;
}

RequestInfo map_request(const Params& params, const MappingOptions& opts,
                        const IsRegularFile& is_regular_file, const PathExists& exists) {
    ParamLookup lookup = [&params](const std::string& name) {
        auto it = params.find(name);
        return it == params.end() ? Opt() : Opt(it->second);
    };
    return map_request(lookup, opts, is_regular_file, exists);
}

RequestInfo map_request(const ParamLookup& params, const MappingOptions& opts,
                        const IsRegularFile& is_regular_file, const PathExists& exists) {
    RequestInfo info;
    Env env{params, info};
    // Set before the script check: a request without a script still gets its
    // 404 (a request without a method gets no answer at all).
    info.request_method = env.get("REQUEST_METHOD");
    Opt script_path = env.get("SCRIPT_FILENAME");
    if (!script_path) script_path = env.get("PATH_TRANSLATED"); // some IIS setups
    if (script_path) {
        info.script_path_given = true;
        map_script(env, script_path, opts, is_regular_file,
                   exists ? exists : PathExists(default_exists));
    }
    info.php_self = info.request_uri.value_or("");
    if (opts.fix_pathinfo) info.php_self += env.get("PATH_INFO").value_or("");
    return info;
}

} // namespace lowphp::sapi
