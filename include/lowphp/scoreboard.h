// The shared-memory scoreboard: one slot per worker, written by that worker,
// read by the master (process management) and by status pages. Plain data in an
// anonymous shared mapping made by the master before any fork.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lowphp {

// php-fpm's request stages (fpm_request.h), in its order.
enum class WorkerState : int {
    Idle = 0,
    Accepting = 1,
    ReadingHeaders = 2,
    GettingInfo = 3,
    Running = 4,
    Ending = 5,
    Finishing = 6,
};

// php-fpm's names for the stages, as its status page prints them.
const char* state_name(int state);

// The request fields are rewritten by the worker at each request start and end;
// `seq` is odd meanwhile so that a reader (status page, master) can take a
// consistent copy without a lock (a seqlock; php-fpm uses a spinlock here).
// String sizes are php-fpm's (fpm_scoreboard.h), so truncation matches too.
struct WorkerSlot {
    std::atomic<int> pid;
    std::atomic<int> state;
    std::atomic<uint32_t> seq;
    // Bumped by the master (then FUTEX_WAKE) to ask the worker's slowlog thread
    // for a backtrace of the running request.
    std::atomic<uint32_t> trace_requests;
    // Set by the master with each SIGQUIT: a worker that never waits (the queue
    // is never empty under load) would otherwise not see the blocked signal.
    std::atomic<bool> quit;
    // pm.max_memory: the resident size that made the worker leave (0 = it did not).
    std::atomic<uint64_t> over_memory;
    // Worker mode: this slot's workers whose worker.script failed before its
    // first request, in a row (one that boots resets it). At
    // worker.max_consecutive_failures the slot's workers answer 503.
    std::atomic<uint32_t> boot_failures;
    // connections.reuse: database connections this worker keeps between requests.
    std::atomic<uint32_t> kept_connections;
    std::atomic<uint64_t> requests;
    // Monotonic: when the current (or last) request was accepted, when the
    // last one ended (0: none yet).
    std::atomic<uint64_t> request_started_us;
    std::atomic<uint64_t> idle_since_us;
    uint64_t request_accepted_s; // wall clock, for the access log's %t
    uint64_t process_started_us; // wall clock, shown as "start time"
    char method[16];
    char uri[128];
    char query[512];
    char script[256];
    char auth_user[32];
    uint64_t content_length;
    uint64_t last_duration_us; // of the last finished request
    double last_cpu_percent;
    uint64_t last_memory; // peak memory of the last finished request
};

// A consistent copy of one slot (see WorkerSlot::seq).
struct SlotCopy {
    int pid, state;
    uint64_t requests, request_started_us, request_accepted_s, process_started_us;
    std::string method, uri, query, script, auth_user;
    uint64_t content_length, last_duration_us, last_memory;
    double last_cpu_percent;
};
SlotCopy read_slot(const WorkerSlot& slot);
// Writer side: bracket every change of the request fields.
void begin_slot_write(WorkerSlot& slot);
void end_slot_write(WorkerSlot& slot);

struct PoolBoard {
    char name[64];
    int pm; // config::PmStyle as int
    uint32_t first_slot;
    uint32_t slot_count;  // the pool's workers (pm.max_children)
    uint32_t status_slot; // pm.status_listen's worker, after them; UINT32_MAX = none
    uint64_t start_time_s;
    std::atomic<uint64_t> accepted_conn;
    std::atomic<uint32_t> max_children_reached; // times the limit stopped a spawn
    std::atomic<uint64_t> slow_requests;
    std::atomic<int> max_active;
    std::atomic<uint32_t> max_listen_queue;
    uint64_t max_memory; // pm.max_memory (lowphp), 0 = none
    bool worker_mode;    // worker.script set (lowphp)
    std::atomic<uint64_t> memory_recycles;
    // connections.reuse (lowphp): shown only by pools that turn it on.
    bool connections_reuse;
    std::atomic<uint64_t> reuses, resets, rollbacks, reconnects;
};

// Owns the mapping; copies of the pointer are inherited by every child.
class Scoreboard {
  public:
    Scoreboard() = default;
    // `slots_per_pool[i]` slots for pool i.
    bool create(const std::vector<std::string>& pools, const std::vector<int>& pm_styles,
                const std::vector<uint32_t>& slots_per_pool,
                const std::vector<uint64_t>& max_memory, const std::vector<bool>& status_worker);
    ~Scoreboard();
    Scoreboard(const Scoreboard&) = delete;
    Scoreboard& operator=(const Scoreboard&) = delete;

    PoolBoard& pool(size_t i) { return pools_[i]; }
    size_t pool_count() const { return pool_count_; }
    WorkerSlot& slot(uint32_t index) { return slots_[index]; }
    WorkerSlot* slot_ptr(uint32_t index) { return &slots_[index]; }

    // Every pool's zygote starts PHP and may print the same start-up message
    // (php-fpm starts PHP once): true the first time `message` is offered, in
    // whichever zygote (and when the table of kStartupMessages is full).
    bool first_startup_message(const char* message);
    static constexpr size_t kStartupMessages = 64;

  private:
    void* base_ = nullptr;
    size_t size_ = 0;
    PoolBoard* pools_ = nullptr;
    size_t pool_count_ = 0;
    WorkerSlot* slots_ = nullptr;
    std::atomic<uint64_t>* startup_messages_ = nullptr; // hashes, 0 = free
};

// Durations and deadlines use the monotonic clock, so a stepped wall clock
// neither ends a request nor lets one run for ever; wall time is only shown.
uint64_t mono_us();
uint64_t wall_us();
struct Now {
    uint64_t wall_us, mono_us;
};

} // namespace lowphp
