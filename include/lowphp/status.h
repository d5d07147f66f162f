// The status page (pm.status_path) and fpm_get_status(): a snapshot of one
// pool's scoreboard and its five renderings, worded field for field as
// php-fpm 8.2 prints them. Pure: no PHP here, the SAPI sends what this returns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowphp/backend_board.h"
#include "lowphp/scoreboard.h"

namespace lowphp::status {

struct PoolStatus {
    std::string pool;
    std::string process_manager; // "static", "dynamic", "ondemand"
    uint64_t start_time = 0;     // epoch seconds
    uint64_t start_since = 0;
    uint64_t accepted_conn = 0;
    uint32_t listen_queue = 0;
    uint32_t max_listen_queue = 0;
    int listen_queue_len = 0;
    int idle = 0, active = 0, total = 0, max_active = 0;
    uint32_t max_children_reached = 0;
    uint64_t slow_requests = 0;
    // lowphp's pm.max_memory; shown only by pools that set it, so a php-fpm
    // pool's page stays byte for byte php-fpm's.
    uint64_t max_memory = 0, memory_recycles = 0;
    // lowphp's worker mode: shown only by pools with worker.script.
    bool worker_mode = false;
    uint64_t worker_boot_failures = 0;
    // connections.reuse (lowphp): shown only by pools that turn it on.
    bool connections_reuse = false;
    uint64_t kept_connections = 0, reuses = 0, resets = 0, rollbacks = 0, reconnects = 0;
};

struct ProcStatus {
    int pid = 0;
    std::string state;
    uint64_t start_time = 0, start_since = 0, requests = 0, request_duration_us = 0;
    std::string method, uri, query, user, script; // empty = not known ("-")
    uint64_t content_length = 0;
    double last_cpu = 0;
    uint64_t last_memory = 0;
};

struct Snapshot {
    PoolStatus pool;
    std::vector<ProcStatus> procs;
    // Per-site backends (lowphp): shown only by pools that declare any.
    std::vector<BackendStatus> backends;
};

// Copy pool `index` out of the scoreboard. `listen_fd` (a TCP listener, or -1)
// gives the listen queue figures; max active processes is updated on the board.
Snapshot take_snapshot(Scoreboard& board, size_t index, int listen_fd, Now now);

enum class Format { Text, Html, Xml, Json, OpenMetrics };

struct Page {
    std::string content_type; // as php-fpm hands it to PHP's header()
    std::string body;
};

Page render(const Snapshot& s, Format format, bool full);

// The escapes php-fpm applies: htmlspecialchars (html, xml) and json_encode's.
std::string escape_html(const std::string& s);
std::string escape_json(const std::string& s);

} // namespace lowphp::status
