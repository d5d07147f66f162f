// The reload hand-over record (see handover.h).
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

#include "handover.h"

namespace lowphp::master {
namespace {

constexpr const char* kHandover = "LOWPHP_FPM_HANDOVER";

// Calls f on each `sep`-separated item of `text` (null: none).
template <class F> void for_each_item(const char* text, char sep, F f) {
    std::string list = text ? text : "";
    for (size_t pos = 0; pos < list.size();) {
        size_t end = list.find(sep, pos);
        if (end == std::string::npos) end = list.size();
        f(list.substr(pos, end - pos));
        pos = end + 1;
    }
}

std::string numbers(std::initializer_list<int64_t> values) {
    std::string text;
    for (int64_t v : values)
        text += (text.empty() ? "" : ",") + std::to_string(v);
    return text;
}

std::vector<int64_t> parse_numbers(const std::string& text) {
    std::vector<int64_t> values;
    for_each_item(text.c_str(), ',', [&](const std::string& item) {
        values.push_back(strtoll(item.c_str(), nullptr, 10));
    });
    return values;
}

// lowphp-fpm 0.2.0 left three variables: a package upgrade reloads such an
// image into this one, which must still find its sockets and connections.
void take_0_2_0(Handover& h) {
    const char* reloaded = getenv("LOWPHP_FPM_RELOADED");
    const char* sockets = getenv("LOWPHP_FPM_SOCKETS"); // "address=fd,address=fd"
    const char* parked = getenv("LOWPHP_FPM_PARKED");   // "fd pool\n" lines
    h.reloaded = h.reloaded || reloaded;
    for_each_item(sockets, ',', [&](const std::string& item) {
        size_t eq = item.rfind('=');
        if (eq != std::string::npos)
            h.sockets.emplace_back(item.substr(0, eq), atoi(item.c_str() + eq + 1));
    });
    for_each_item(parked, '\n', [&](const std::string& line) {
        size_t sp = line.find(' ');
        if (sp != std::string::npos) h.parked.emplace(line.substr(sp + 1), atoi(line.c_str()));
    });
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
    for (const auto& [pool, c] : channels)
        record += "channels " +
                  numbers({c.park_rx, c.park_tx, c.handoff_rx, c.handoff_tx, c.classic_rx,
                           c.classic_tx, c.script_rx, c.script_tx}) +
                  " " + pool + "\n";
    for (const auto& r : retiring)
        record += "retiring " +
                  numbers({static_cast<int64_t>(r.pid), static_cast<int64_t>(r.started_us), r.out,
                           r.err, r.zygote}) +
                  " " + r.pool + "\n";
    if (backends_fd >= 0) record += "backends " + std::to_string(backends_fd) + " board\n";
    setenv(kHandover, record.c_str(), 1);
}

Handover Handover::take() {
    Handover h;
    const char* env = getenv(kHandover);
    h.reloaded = env != nullptr;
    for_each_item(env, '\n', [&](const std::string& line) {
        size_t first = line.find(' '), second = line.find(' ', first + 1);
        if (first == std::string::npos || second == std::string::npos) return;
        int fd = atoi(line.c_str() + first + 1);
        std::string kind = line.substr(0, first), name = line.substr(second + 1);
        std::vector<int64_t> n = parse_numbers(line.substr(first + 1, second - first - 1));
        if (kind == "socket")
            h.sockets.emplace_back(name, fd);
        else if (kind == "backends")
            h.backends_fd = fd;
        else if (kind == "parked")
            h.parked.emplace(name, fd);
        else if (kind == "channels" && (n.size() == 4 || n.size() == 8)) {
            // 4 numbers: an image from before worker.match
            auto at = [&](size_t i) { return i < n.size() ? static_cast<int>(n[i]) : -1; };
            h.channels[name] =
                pool::Channels{at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7)};
        } else if (kind == "retiring" && n.size() == 5)
            h.retiring.push_back(
                pool::RetiringChild{static_cast<pid_t>(n[0]), name, static_cast<uint64_t>(n[1]),
                                    static_cast<int>(n[2]), static_cast<int>(n[3]), n[4] != 0});
    });
    unsetenv(kHandover);
    take_0_2_0(h);
    return h;
}

} // namespace lowphp::master
