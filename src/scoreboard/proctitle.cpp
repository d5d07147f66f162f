// argv/environ are one contiguous block set up by the kernel; after copying the
// environment elsewhere the whole block can hold the title.
#include <cstring>
#include <memory>
#include <string>
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
    // The copies are never destroyed: environ and argv point into them until
    // the process is gone, and other libraries' destructors run after ours at
    // exit (libfaketime's calls getenv there).
    auto& env_copy = *std::make_unique<std::vector<std::string>>().release();
    auto& env_ptrs = *std::make_unique<std::vector<char*>>().release();
    for (char** e = environ; e && *e; ++e) {
        if (*e == end) end = *e + strlen(*e) + 1;
        env_copy.emplace_back(*e);
    }
    for (auto& s : env_copy)
        env_ptrs.push_back(s.data());
    env_ptrs.push_back(nullptr);
    environ = env_ptrs.data();
    // argv[1..] are read by main() before the first title is set; copy them too.
    auto& arg_copy = *std::make_unique<std::vector<std::string>>().release();
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
