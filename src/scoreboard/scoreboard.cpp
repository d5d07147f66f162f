// Scoreboard mapping: MAP_SHARED | MAP_ANONYMOUS, so it exists only in this
// process tree and vanishes with it.
#include <cstring>
#include <new>
#include <sys/mman.h>
#include <time.h>

#include "lowphp/log.h"
#include "lowphp/scoreboard.h"

namespace lowphp {

namespace {
uint64_t clock_us(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec / 1000);
}
} // namespace

uint64_t mono_us() {
    return clock_us(CLOCK_MONOTONIC);
}
uint64_t wall_us() {
    return clock_us(CLOCK_REALTIME);
}

bool Scoreboard::create(const std::vector<std::string>& pools, const std::vector<int>& pm_styles,
                        const std::vector<uint32_t>& slots_per_pool,
                        const std::vector<uint64_t>& max_memory,
                        const std::vector<bool>& status_worker) {
    size_t total = 0;
    for (size_t i = 0; i < slots_per_pool.size(); ++i)
        total += slots_per_pool[i] + (status_worker[i] ? 1 : 0);
    size_ = sizeof(PoolBoard) * pools.size() + sizeof(WorkerSlot) * total +
            sizeof(std::atomic<uint64_t>) * kStartupMessages;
    base_ = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (base_ == MAP_FAILED) {
        base_ = nullptr;
        ZLOG_SYSERROR("unable to allocate scoreboard: mmap(%zu)", size_);
        return false;
    }
    pools_ = static_cast<PoolBoard*>(base_);
    slots_ = reinterpret_cast<WorkerSlot*>(pools_ + pools.size());
    pool_count_ = pools.size();
    uint32_t first = 0;
    for (size_t i = 0; i < pools.size(); ++i) {
        PoolBoard* p = new (&pools_[i]) PoolBoard{};
        strncpy(p->name, pools[i].c_str(), sizeof p->name - 1);
        p->pm = pm_styles[i];
        p->max_memory = max_memory[i];
        p->first_slot = first;
        p->slot_count = slots_per_pool[i];
        p->status_slot = status_worker[i] ? first + slots_per_pool[i] : UINT32_MAX;
        p->start_time_s = wall_us() / 1000000u;
        first += slots_per_pool[i] + (status_worker[i] ? 1 : 0);
    }
    for (size_t i = 0; i < total; ++i)
        new (&slots_[i]) WorkerSlot{};
    startup_messages_ = reinterpret_cast<std::atomic<uint64_t>*>(slots_ + total);
    for (size_t i = 0; i < kStartupMessages; ++i)
        new (&startup_messages_[i]) std::atomic<uint64_t>(0);
    return true;
}

bool Scoreboard::first_startup_message(const char* message) {
    uint64_t hash = 14695981039346656037ull; // FNV-1a
    for (const char* c = message; *c; ++c)
        hash = (hash ^ static_cast<unsigned char>(*c)) * 1099511628211ull;
    if (hash == 0) hash = 1;
    for (size_t i = 0; i < kStartupMessages; ++i) {
        uint64_t seen = 0;
        if (startup_messages_[i].compare_exchange_strong(seen, hash)) return true;
        if (seen == hash) return false;
    }
    return true;
}

Scoreboard::~Scoreboard() {
    if (base_) munmap(base_, size_);
}

} // namespace lowphp
