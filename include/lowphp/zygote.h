// The contract between the master (no PHP) and a pool's zygote (PHP started
// with the pool's php.ini). The master forks the zygote and then only talks to it
// through `control_fd`, a SOCK_SEQPACKET socketpair.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowphp/config.h"
#include "lowphp/identity.h"
#include "lowphp/php_ini_options.h"

namespace lowphp {
class Scoreboard;
class BackendBoard;
} // namespace lowphp

namespace lowphp::zygote {

struct Params {
    const config::Config* config = nullptr;
    size_t pool_index = 0;
    PhpIniOptions ini;
    int listen_fd = -1;
    int status_listen_fd = -1; // pm.status_listen, or -1
    int control_fd = -1;
    // Kept-alive FastCGI connections that no worker is serving: a worker's
    // thread puts one that nginx writes on into the pool's handoff queue
    // (`handoff_send_fd`), which the pool's workers read (`handoff_fd`). The
    // master holds those of exiting workers (`park_fd`) and queues them too.
    int park_fd = -1;
    int handoff_fd = -1;
    int handoff_send_fd = -1;
    // worker.match: the queue of connections for classic workers ([0]) and
    // for worker-mode ones ([1]); -1 without worker.match.
    int route_fd[2] = {-1, -1};
    int route_send_fd[2] = {-1, -1};
    Scoreboard* scoreboard = nullptr;
    BackendBoard* backends = nullptr; // connections.max[] tokens (lowphp addition)
    bool run_as_root = false;
    const pool::Identity* identity = nullptr; // who the workers become (pool/identity)
    // The zygote's and its workers' parent: each dies with it (PR_SET_PDEATHSIG).
    pid_t master_pid = 0;
};

// master -> zygote: make a worker for scoreboard slot `slot`. Descriptors the
// worker needs travel with it (SCM_RIGHTS), in this order, as `fds` says: the
// stdout and stderr pipes when the pool catches worker output, then the access
// log and the slow log. They come from the master each time, so a worker made
// after SIGUSR1 writes to the reopened files.
enum SpawnFds : uint32_t { kOutputFds = 1, kAccessLogFd = 2, kSlowlogFd = 4 };
constexpr uint32_t kStatusWorker = 1u << 8; // not an fd: this worker serves pm.status_listen
constexpr int kMaxSpawnFds = 4;

struct SpawnCommand {
    uint32_t slot;
    uint32_t fds; // SpawnFds bits
};

// zygote -> master: the worker's pid (or -errno). slot == kReadySlot reports the
// zygote's own start-up result (pid = zygote pid, or a negative value on failure).
struct SpawnReply {
    uint32_t slot;
    int32_t pid;
};
constexpr uint32_t kReadySlot = UINT32_MAX;

// Runs in the freshly forked zygote process; never returns.
[[noreturn]] void run(const Params& params);

} // namespace lowphp::zygote
