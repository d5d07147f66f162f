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

struct WorkerSlot {
    std::atomic<int> pid;
    std::atomic<int> state;
    std::atomic<uint64_t> requests;
    std::atomic<uint64_t> request_started_us; // 0 when idle
    uint64_t process_started_us;
    char method[16];
    char uri[256];
    char script[256];
};

struct PoolBoard {
    char name[64];
    uint32_t first_slot;
    uint32_t slot_count;
    uint64_t start_time_s;
    std::atomic<uint64_t> accepted_conn;
    std::atomic<uint32_t> max_children_reached;
};

// Owns the mapping; copies of the pointer are inherited by every child.
class Scoreboard {
  public:
    Scoreboard() = default;
    // `slots_per_pool[i]` slots for pool i.
    bool create(const std::vector<std::string>& pools, const std::vector<uint32_t>& slots_per_pool);
    ~Scoreboard();
    Scoreboard(const Scoreboard&) = delete;
    Scoreboard& operator=(const Scoreboard&) = delete;

    PoolBoard& pool(size_t i) { return pools_[i]; }
    size_t pool_count() const { return pool_count_; }
    WorkerSlot& slot(uint32_t index) { return slots_[index]; }
    WorkerSlot* slot_ptr(uint32_t index) { return &slots_[index]; }

  private:
    void* base_ = nullptr;
    size_t size_ = 0;
    PoolBoard* pools_ = nullptr;
    size_t pool_count_ = 0;
    WorkerSlot* slots_ = nullptr;
};

uint64_t now_us();

} // namespace lowphp
