// The reload hand-over record (see handover.h).
#include <cstdlib>
#include <string>

#include "handover.h"

namespace lowphp::master {
namespace {

constexpr const char* kHandover = "LOWPHP_FPM_HANDOVER";

} // namespace

void Handover::put() const {
    std::string record;
    for (const auto& [address, fd] : sockets)
        record += "socket " + std::to_string(fd) + " " + address + "\n";
    for (const auto& [pool, fd] : parked)
        record += "parked " + std::to_string(fd) + " " + pool + "\n";
    setenv(kHandover, record.c_str(), 1);
}

Handover Handover::take() {
    Handover h;
    const char* env = getenv(kHandover);
    h.reloaded = env != nullptr;
    std::string record = env ? env : "";
    unsetenv(kHandover);
    size_t pos = 0;
    while (pos < record.size()) {
        size_t end = record.find('\n', pos);
        if (end == std::string::npos) end = record.size();
        std::string line = record.substr(pos, end - pos);
        pos = end + 1;
        size_t first = line.find(' '), second = line.find(' ', first + 1);
        if (first == std::string::npos || second == std::string::npos) continue;
        int fd = atoi(line.c_str() + first + 1);
        std::string kind = line.substr(0, first), name = line.substr(second + 1);
        if (kind == "socket")
            h.sockets.emplace_back(name, fd);
        else if (kind == "parked")
            h.parked.emplace(name, fd);
    }
    return h;
}

} // namespace lowphp::master
