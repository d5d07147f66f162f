// The reload hand-over record (see handover.h).
#include <cstdlib>
#include <string>

#include "handover.h"

namespace lowphp::master {
namespace {

constexpr const char* kHandover = "LOWPHP_FPM_HANDOVER";

// lowphp-fpm 0.2.0 left three variables: a package upgrade reloads such an
// image into this one, which must still find its sockets and connections.
void take_0_2_0(Handover& h) {
    const char* reloaded = getenv("LOWPHP_FPM_RELOADED");
    const char* sockets = getenv("LOWPHP_FPM_SOCKETS"); // "address=fd,address=fd"
    const char* parked = getenv("LOWPHP_FPM_PARKED");   // "fd pool\n" lines
    h.reloaded = h.reloaded || reloaded;
    for (std::string list = sockets ? sockets : "", item; !list.empty();) {
        size_t comma = list.find(',');
        item = list.substr(0, comma);
        list = comma == std::string::npos ? "" : list.substr(comma + 1);
        size_t eq = item.rfind('=');
        if (eq != std::string::npos)
            h.sockets.emplace_back(item.substr(0, eq), atoi(item.c_str() + eq + 1));
    }
    for (std::string list = parked ? parked : "", line; !list.empty();) {
        size_t nl = list.find('\n');
        line = list.substr(0, nl);
        list = nl == std::string::npos ? "" : list.substr(nl + 1);
        size_t sp = line.find(' ');
        if (sp != std::string::npos) h.parked.emplace(line.substr(sp + 1), atoi(line.c_str()));
    }
    for (const char* name : {"LOWPHP_FPM_RELOADED", "LOWPHP_FPM_SOCKETS", "LOWPHP_FPM_PARKED"})
        unsetenv(name);
}

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
    take_0_2_0(h);
    return h;
}

} // namespace lowphp::master
