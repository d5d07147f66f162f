// php-fpm's init_request_info (fpm_main.c), as a pure function: which script a
// request runs and how SCRIPT_FILENAME, SCRIPT_NAME, PATH_INFO, PATH_TRANSLATED
// and their ORIG_* copies look to PHP. Branch for branch, with php-fpm's quirks.
#include <cstdlib>
#include <cstring>
#include <strings.h>
#include <sys/stat.h>

#include "lowphp/request_mapping.h"

namespace lowphp::sapi {
namespace {

using Opt = std::optional<std::string>;

// The request's params as init_request_info sees them while it rewrites them.
struct Env {
    const Params& params;
    RequestInfo& info;
    Opt get(const std::string& name) const {
        auto c = info.changed.find(name);
        if (c != info.changed.end()) return c->second;
        auto it = params.find(name);
        return it == params.end() ? Opt() : Opt(it->second);
    }
    Opt put(const std::string& name, const Opt& value) {
        info.changed[name] = value;
        return value;
    }
};

bool default_exists(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
}

// Apache mod_proxy_fcgi / mod_proxy_balancer: "proxy:fcgi://host:port/path?q" -> "/path".
bool strip_proxy_prefix(std::string& filename, const char* prefix) {
    size_t n = strlen(prefix);
    if (filename.size() < n || strncasecmp(filename.c_str(), prefix, n) != 0) return false;
    size_t slash = filename.find('/', n);
    bool stripped = false;
    if (slash != std::string::npos) {
        filename = filename.substr(slash);
        stripped = true;
    }
    size_t q = filename.find('?');
    if (q != std::string::npos) filename.resize(q);
    return stripped;
}

struct Walk {
    Env& env;
    const MappingOptions& opts;
    bool apache_was_here;
    Opt script_path_translated;
    Opt env_path_info, env_script_name, env_path_translated;
    Opt orig_path_info, orig_script_name, orig_script_filename, orig_path_translated;
    Opt env_document_root;
};

void set_path_translated(Walk& w, const std::string& pt) {
    Opt& pi = w.env_path_info;
    if (w.env_document_root) {
        std::string root = *w.env_document_root;
        if (!root.empty() && root.back() == '/') root.pop_back();
        if (w.orig_path_translated) w.env.put("ORIG_PATH_TRANSLATED", w.orig_path_translated);
        w.env_path_translated = w.env.put("PATH_TRANSLATED", root + pi.value_or(""));
    } else if (w.env_script_name && pt.find(*w.env_script_name) != std::string::npos) {
        std::string base = pt.substr(0, pt.size() - w.env_script_name->size());
        if (w.orig_path_translated) w.env.put("ORIG_PATH_TRANSLATED", w.orig_path_translated);
        w.env_path_translated = w.env.put("PATH_TRANSLATED", base + pi.value_or(""));
    }
}

// The script was found at `pt`: `slen` characters were cut from the end.
void found_script(Walk& w, const std::string& pt, size_t len) {
    RequestInfo& info = w.env.info;
    const std::string& full = *w.script_path_translated;
    size_t ptlen = pt.size(), slen = len - ptlen;
    size_t pilen = w.env_path_info ? w.env_path_info->size() : 0;
    Opt path_info;
    bool tflag;
    if (w.apache_was_here) {
        path_info = full.substr(ptlen); // PATH_INFO is not set by Apache
        tflag = slen != 0 && (!w.orig_path_info || *w.orig_path_info != *path_info);
    } else {
        // CVE-2019-11043: only when PATH_INFO is longer than what was cut.
        if (w.env_path_info && pilen > slen) path_info = w.env_path_info->substr(pilen - slen);
        tflag = path_info.has_value();
    }
    if (tflag) {
        if (w.orig_path_info) {
            w.env.put("ORIG_PATH_INFO", w.orig_path_info);
            std::string head = w.env_path_info->substr(0, pilen - path_info->size());
            if (!w.orig_script_name || *w.orig_script_name != head) {
                if (w.orig_script_name) w.env.put("ORIG_SCRIPT_NAME", w.orig_script_name);
                info.request_uri = w.env.put("SCRIPT_NAME", head);
            } else {
                info.request_uri = w.orig_script_name;
            }
        } else if (w.apache_was_here && w.env_script_name) {
            const std::string& sn = *w.env_script_name;
            if (sn.size() > slen && sn.compare(sn.size() - slen, slen, *path_info) == 0) {
                w.env.put("ORIG_SCRIPT_NAME", w.orig_script_name);
                w.env_script_name = sn.substr(0, sn.size() - slen);
                info.request_uri = w.env.put("SCRIPT_NAME", w.env_script_name);
            }
        }
        w.env_path_info = w.env.put("PATH_INFO", path_info);
    }
    if (!w.orig_script_filename || *w.orig_script_filename != pt) {
        if (w.orig_script_filename) w.env.put("ORIG_SCRIPT_FILENAME", w.orig_script_filename);
        w.script_path_translated = w.env.put("SCRIPT_FILENAME", pt);
    }
    set_path_translated(w, pt);
}

// The path does not exist (or ends in '/'): cut at '/' from the right until a
// regular file is found.
void walk_back(Walk& w, const IsRegularFile& is_regular_file) {
    RequestInfo& info = w.env.info;
    std::string pt = *w.script_path_translated;
    size_t len = pt.size();
    bool found = false;
    size_t cut;
    while ((cut = pt.find_last_of("/\\")) != std::string::npos) {
        pt.resize(cut);
        if (is_regular_file(pt)) {
            found_script(w, pt, len);
            found = true;
            break;
        }
    }
    if (!found) {
        if (w.orig_script_filename) w.env.put("ORIG_SCRIPT_FILENAME", w.orig_script_filename);
        w.script_path_translated = w.env.put("SCRIPT_FILENAME", std::nullopt);
        info.script_not_found = true;
    }
    if (!info.request_uri) {
        if (!w.orig_script_name || w.orig_script_name != w.env_script_name) {
            if (w.orig_script_name) w.env.put("ORIG_SCRIPT_NAME", w.orig_script_name);
            info.request_uri = w.env.put("SCRIPT_NAME", w.env_script_name);
        } else {
            info.request_uri = w.orig_script_name;
        }
    }
}

void script_exists(Walk& w, bool redirected) {
    RequestInfo& info = w.env.info;
    if (!w.orig_script_filename || *w.script_path_translated != *w.orig_script_filename) {
        if (w.orig_script_filename) w.env.put("ORIG_SCRIPT_FILENAME", w.orig_script_filename);
        w.script_path_translated = w.env.put("SCRIPT_FILENAME", w.script_path_translated);
    }
    Opt redirect_url = w.env.get("REDIRECT_URL");
    if (!w.apache_was_here && redirect_url) {
        if (w.orig_path_info) {
            w.env.put("ORIG_PATH_INFO", w.orig_path_info);
            w.env.put("PATH_INFO", std::nullopt);
        }
        if (w.orig_path_translated) {
            w.env.put("ORIG_PATH_TRANSLATED", w.orig_path_translated);
            w.env.put("PATH_TRANSLATED", std::nullopt);
        }
    }
    if (redirected) {
        if (w.orig_script_name) w.env.put("ORIG_SCRIPT_NAME", w.orig_script_name);
        info.request_uri = w.env.put("SCRIPT_NAME", w.env_script_name);
    } else {
        info.request_uri = w.env_script_name;
    }
}

void fix_pathinfo(Walk& w, const IsRegularFile& is_regular_file, const PathExists& exists) {
    Env& env = w.env;
    Opt redirect_url = env.get("REDIRECT_URL");
    w.env_document_root = env.get("DOCUMENT_ROOT");
    w.orig_path_translated = w.env_path_translated;
    w.orig_path_info = w.env_path_info;
    w.orig_script_name = w.env_script_name;
    w.orig_script_filename = env.get("SCRIPT_FILENAME");
    bool redirected = false;
    // Apache mod_fastcgi: SCRIPT_FILENAME is the php binary, PATH_TRANSLATED the script.
    if (!w.apache_was_here && w.env_path_translated && redirect_url &&
        *w.env_path_translated != *w.script_path_translated) {
        w.script_path_translated = w.env_path_translated;
        w.env_script_name = redirect_url;
        redirected = true;
    }
    const std::string& sp = *w.script_path_translated;
    if (!sp.empty() && (sp.back() == '/' || !exists(sp))) walk_back(w, is_regular_file);
    else if (!sp.empty()) script_exists(w, redirected);
}

} // namespace

bool is_valid_path(const std::string& path) {
    auto is_slash = [](char c) { return c == '/' || c == '\\'; };
    for (size_t p = path.find(".."); p != std::string::npos; p = path.find("..", p + 1)) {
        bool before = p == 0 || is_slash(path[p - 1]);
        bool after = p + 2 == path.size() || is_slash(path[p + 2]);
        if (before && after) return false;
    }
    return true;
}

RequestInfo map_request(const Params& params, const MappingOptions& opts,
                        const IsRegularFile& is_regular_file, const PathExists& exists_in) {
    RequestInfo info;
    Env env{params, info};
    PathExists exists = exists_in ? exists_in : PathExists(default_exists);
    Opt env_script_filename = env.get("SCRIPT_FILENAME");
    Opt env_path_translated = env.get("PATH_TRANSLATED");
    Opt script_path_translated = env_script_filename ? env_script_filename : env_path_translated;
    info.request_method = env.get("REQUEST_METHOD");
    if (!script_path_translated) return info; // 404: nothing to run
    Walk w{env, opts, false, script_path_translated, env.get("PATH_INFO"),
           env.get("SCRIPT_NAME"), env_path_translated, {}, {}, {}, {}, {}};
    // IIS puts SCRIPT_NAME at the start of PATH_INFO.
    Opt software = env.get("SERVER_SOFTWARE");
    if (software && w.env_script_name && w.env_path_info &&
        software->rfind("Microsoft-IIS", 0) == 0 &&
        w.env_path_info->rfind(*w.env_script_name, 0) == 0) {
        env.put("ORIG_PATH_INFO", w.env_path_info);
        std::string rest = w.env_path_info->substr(w.env_script_name->size());
        w.env_path_info = env.put("PATH_INFO", rest.empty() ? Opt() : Opt(rest));
    }
    if (env_script_filename) {
        std::string f = *env_script_filename;
        bool a = strip_proxy_prefix(f, "proxy:fcgi://");
        bool b = strip_proxy_prefix(f, "proxy:balancer://");
        if (f != *env_script_filename) {
            info.changed["SCRIPT_FILENAME"] = f;
            w.script_path_translated = f;
        }
        w.apache_was_here = a || b;
    }
    if (opts.fix_pathinfo) {
        fix_pathinfo(w, is_regular_file, exists);
    } else {
        info.request_uri = w.env_path_info ? w.env_path_info : w.env_script_name;
        if (!opts.discard_path && env_path_translated) w.script_path_translated = env_path_translated;
    }
    if (w.script_path_translated && is_valid_path(*w.script_path_translated))
        info.path_translated = w.script_path_translated;
    info.query_string = env.get("QUERY_STRING");
    Opt ct = env.get("CONTENT_TYPE");
    info.content_type = ct ? ct : Opt("");
    Opt cl = env.get("CONTENT_LENGTH");
    info.content_length = cl ? atol(cl->c_str()) : 0;
    return info;
}

} // namespace lowphp::sapi
