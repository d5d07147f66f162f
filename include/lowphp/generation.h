// What one generation of a pool hands to the next across a reload, as plain
// numbers (the master's image changes; the processes and descriptors stay).
#pragma once

#include <cstdint>
#include <string>
#include <sys/types.h>

namespace lowphp::pool {

// The kept-connection channels of a pool (see pool::Pool): the previous
// generation's workers still park on them, and the handoff queue they hold
// is served by the next generation's workers.
struct Channels {
    int park_rx = -1, park_tx = -1, handoff_rx = -1, handoff_tx = -1;
    // worker.match: connections passed to a classic worker / a worker-mode one.
    int classic_rx = -1, classic_tx = -1, script_rx = -1, script_tx = -1;
};

// A child of the previous generation: a worker that goes on serving until the
// next generation is up, then ends after its request; or a zygote on its way out.
struct RetiringChild {
    pid_t pid = 0;
    std::string pool;
    uint64_t started_us = 0; // monotonic, which execv does not reset
    int out = -1, err = -1;  // its captured stdout and stderr, when caught
    bool zygote = false;
};

} // namespace lowphp::pool
