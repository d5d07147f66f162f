// FastCGI params -> sapi::map_request (php-fpm's init_request_info), with the
// filesystem faked (no stat of fuzzed paths), plus the small helpers of
// request_mapping.h. The input is text, one item a line, so seeds read as
// nginx configurations do:
//   NAME=value          a FastCGI param (the first '=' splits)
//   @file=PATH          a regular file;  @dir=PATH  a directory
//   @php_files          every "*.php" is a regular file
//   @plain_dirs         every path without a '.' is a directory
//   @nofix @discard @noini   cgi.fix_pathinfo=0, cgi.discard_path=1,
//                       cgi.fix_pathinfo not set in php.ini
//   @doc_root=PATH      php.ini doc_root
// The same request is mapped through both overloads and must map the same.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "lowphp/request_mapping.h"

using namespace lowphp::sapi;

namespace {

// The last path segment ends in `suffix`.
bool last_segment_ends(const std::string& p, const std::string& suffix) {
    size_t slash = p.rfind('/');
    std::string last = slash == std::string::npos ? p : p.substr(slash + 1);
    return last.size() >= suffix.size() &&
           last.compare(last.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    MappingOptions opts;
    bool php_files = false, plain_dirs = false;
    std::set<std::string> files, dirs;
    Params params;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        size_t eq = line.find('=');
        std::string name(line.substr(0, eq));
        std::string value(eq == std::string_view::npos ? "" : line.substr(eq + 1));
        if (name == "@file")
            files.insert(value);
        else if (name == "@dir")
            dirs.insert(value);
        else if (name == "@php_files")
            php_files = true;
        else if (name == "@plain_dirs")
            plain_dirs = true;
        else if (name == "@nofix")
            opts.fix_pathinfo = false;
        else if (name == "@discard")
            opts.discard_path = true;
        else if (name == "@noini")
            opts.fix_pathinfo_in_php_ini = false;
        else if (name == "@doc_root")
            opts.doc_root = value;
        else
            params[name] = value;
    }
    IsRegularFile is_regular = [&](const std::string& p) {
        return files.count(p) > 0 || (php_files && last_segment_ends(p, ".php"));
    };
    PathExists exists = [&](const std::string& p) {
        return is_regular(p) || dirs.count(p) > 0 ||
               (plain_dirs && !p.empty() && p.find('.') == std::string::npos);
    };

    RequestInfo info = map_request(params, opts, is_regular, exists);
    // The worker's form: looked up in place.
    ParamLookup lookup = [&params](const std::string& name) -> std::optional<std::string> {
        auto it = params.find(name);
        if (it == params.end()) return std::nullopt;
        return it->second;
    };
    RequestInfo again = map_request(lookup, opts, is_regular, exists);
    if (again.path_translated != info.path_translated || again.puts != info.puts ||
        again.php_self != info.php_self)
        __builtin_trap();

    for (const auto& [name, value] : params) {
        (void)is_valid_path(value);
        (void)sapi_getenv_hides(name);
    }
    if (info.path_translated) (void)is_valid_path(*info.path_translated);
    (void)server_http_proxy(params.count("HTTP_PROXY") > 0, std::nullopt);
    return 0;
}
