// One worker's life, from the zygote's clone to its exit: privileges, then the
// accept → FastCGI → PHP loop.
#pragma once

#include <cstdint>

#include "lowphp/zygote.h"

namespace lowphp::worker {

struct Params {
    const zygote::Params* zygote = nullptr;
    uint32_t slot = 0;
    int stdout_fd = -1; // catch_workers_output pipes, or -1 for /dev/null
    int stderr_fd = -1;
    int access_log_fd = -1;     // access.log, or -1
    int slowlog_fd = -1;        // slowlog, or -1
    bool status_worker = false; // serves pm.status_listen instead of listen
};

[[noreturn]] void run(const Params& params);

} // namespace lowphp::worker
