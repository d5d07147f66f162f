// php-fpm.conf text -> config::load() (parser, includes, validation) -> dump().
//
// load() reads a path, so the input is written to a file in a private sandbox
// directory. include= is followed only inside that sandbox: the prefix is the
// sandbox's inc/ (a few fixed files, one including itself), and an input whose
// include pattern is absolute or has a ".." is refused (-1, kept out of the
// corpus), so no input globs or reads arbitrary paths.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <strings.h>
#include <unistd.h>

#include "config/values.h"
#include "lowphp/config.h"

namespace {

std::string g_dir;  // the sandbox
std::string g_main; // the input's file

void put(const std::string& path, const std::string& text) {
    FILE* f = fopen(path.c_str(), "wb");
    if (!f) abort();
    if (!text.empty() && fwrite(text.data(), 1, text.size(), f) != text.size()) abort();
    fclose(f);
}

void remove_sandbox() {
    std::error_code ec;
    if (!g_dir.empty()) std::filesystem::remove_all(g_dir, ec);
}

// The lines as parser.cpp's read_lines() hands them to the scanner: getline()
// pieces (with their '\n'), read as C strings, the first without a UTF-8 BOM.
bool includes_stay_inside(const uint8_t* data, size_t size) {
    size_t start = 0;
    for (int lineno = 1; start < size; ++lineno) {
        const void* nl = memchr(data + start, '\n', size - start);
        size_t end = nl ? static_cast<size_t>(static_cast<const uint8_t*>(nl) - data) + 1 : size;
        std::string piece(reinterpret_cast<const char*>(data + start), end - start);
        start = end;
        const char* line = piece.c_str();
        if (lineno == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0) line += 3;
        lowphp::config::values::Line l = lowphp::config::values::scan_line(line);
        if (l.kind != lowphp::config::values::Line::Entry || l.offset) continue;
        if (strcasecmp(l.name.c_str(), "include") != 0 || l.value.empty()) continue;
        if (l.value[0] == '/' || l.value.find("..") != std::string::npos) return false;
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    char tmpl[] = "/tmp/lowphp-fuzz-config.XXXXXX";
    if (!mkdtemp(tmpl)) abort();
    g_dir = tmpl;
    atexit(remove_sandbox);
    std::string inc = g_dir + "/inc";
    std::filesystem::create_directories(inc + "/sub");
    put(inc + "/pool.conf", "[inc]\nlisten = /run/inc.sock\npm = dynamic\npm.max_children = 5\n"
                            "pm.start_servers = 2\npm.min_spare_servers = 1\n"
                            "pm.max_spare_servers = 3\nphp_admin_value[memory_limit] = 32M\n");
    put(inc + "/global.conf", "[global]\npid = run/fuzz.pid\nlog_level = debug\n");
    put(inc + "/nest.conf", "include = pool.conf\nslowlog = $pool.slow\n");
    put(inc + "/loop.conf", "include = loop.conf\n");
    put(inc + "/bad.conf", "[x\n");
    put(inc + "/sub/a.conf", "[sub]\nlisten = 9001\npm.max_children = 1\n");
    g_main = g_dir + "/main.conf";
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (!includes_stay_inside(data, size)) return -1;
    put(g_main, std::string(reinterpret_cast<const char*>(data), size));
    lowphp::config::ParseOptions opts;
    opts.prefix = g_dir + "/inc";
    opts.default_prefix = "/usr";
    lowphp::config::ParseResult r = lowphp::config::load(g_main, opts);
    if (r.config) {
        std::vector<std::string> lines = lowphp::config::dump(*r.config);
        if (lines.empty()) abort(); // the dump always has its [global] section
    }
    return 0;
}
