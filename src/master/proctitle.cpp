// argv/environ are one contiguous block set up by the kernel; after copying the
// environment elsewhere the whole block can hold the title.
#include <cstring>
#include <unistd.h>
#include <vector>

#include "lowphp/proctitle.h"

extern char** environ;

namespace lowphp::proctitle {
namespace {

char* area_start = nullptr;
size_t area_size = 0;

} // namespace

void init(int argc, char** argv) {
    if (argc <= 0 || !argv[0]) return;
    char* end = argv[0] + strlen(argv[0]) + 1;
    for (int i = 1; i < argc; ++i)
        if (argv[i] == end) end = argv[i] + strlen(argv[i]) + 1;
    static std::vector<std::string> env_copy;
    static std::vector<char*> env_ptrs;
    for (char** e = environ; e && *e; ++e) {
        if (*e == end) end = *e + strlen(*e) + 1;
        env_copy.emplace_back(*e);
    }
    for (auto& s : env_copy)
        env_ptrs.push_back(s.data());
    env_ptrs.push_back(nullptr);
    environ = env_ptrs.data();
    // argv[1..] are read by main() before the first title is set; copy them too.
    static std::vector<std::string> arg_copy;
    for (int i = 1; i < argc; ++i)
        arg_copy.emplace_back(argv[i]);
    for (int i = 1; i < argc; ++i)
        argv[i] = arg_copy[static_cast<size_t>(i - 1)].data();
    area_start = argv[0];
    area_size = static_cast<size_t>(end - argv[0]);
}

void set(const std::string& title) {
    if (!area_start || area_size < 2) return;
    size_t n = std::min(title.size(), area_size - 1);
    memcpy(area_start, title.data(), n);
    memset(area_start + n, 0, area_size - n);
}

} // namespace lowphp::proctitle
