// Shared token tables for connections.max[NAME] (see backend_board.h).
#include "lowphp/backend_board.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <linux/futex.h>
#include <new>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lowphp/log.h"
#include "lowphp/scoreboard.h"

namespace lowphp {
namespace {

// Shared (not FUTEX_PRIVATE_FLAG): the words live in a MAP_SHARED mapping
// that several processes wait on.
void futex_wait(std::atomic<uint32_t>& word, uint32_t seen, uint64_t timeout_us) {
    struct timespec ts {
        static_cast<time_t>(timeout_us / 1000000), static_cast<long>(timeout_us % 1000000) * 1000
    };
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT, seen, &ts, nullptr, 0);
}

void futex_wake(std::atomic<uint32_t>& word, int n) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE, n, nullptr, nullptr, 0);
}

uint32_t owner_pid(uint32_t word) {
    return word & ~BackendTable::kBusy;
}

} // namespace

BackendBoard::~BackendBoard() {
    if (tables_) munmap(tables_, sizeof(BackendTable) * count_);
    for (int fd : nudge_)
        if (fd >= 0) close(fd);
}

bool BackendBoard::create(const std::vector<config::PoolConfig>& pools) {
    for (const auto& p : pools) {
        first_.push_back(count_);
        sizes_.push_back(p.backends.size());
        count_ += p.backends.size();
    }
    nudge_.assign(pools.size(), -1);
    if (count_ == 0) {
        first_.assign(pools.size(), 0);
        return true;
    }
    void* base = mmap(nullptr, sizeof(BackendTable) * count_, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        ZLOG_SYSERROR("unable to allocate the backend board: mmap(%zu)",
                      sizeof(BackendTable) * count_);
        return false;
    }
    tables_ = static_cast<BackendTable*>(base);
    for (size_t i = 0; i < pools.size(); ++i) {
        for (size_t b = 0; b < pools[i].backends.size(); ++b) {
            const auto& cfg = pools[i].backends[b];
            BackendTable* t = new (&tables_[first_[i] + b]) BackendTable{};
            strncpy(t->name, cfg.name.c_str(), sizeof t->name - 1);
            t->kind = static_cast<int>(cfg.kind);
            t->max = static_cast<uint32_t>(cfg.max);
        }
        if (pools[i].backends.empty()) continue;
        // Not CLOEXEC: the zygote (forked) and its workers inherit it.
        nudge_[i] = eventfd(0, EFD_NONBLOCK);
        if (nudge_[i] < 0) {
            ZLOG_SYSERROR("eventfd() failed for the backends of pool %s", pools[i].name.c_str());
            return false;
        }
    }
    return true;
}

std::vector<BackendStatus> BackendBoard::status(size_t pool) const {
    std::vector<BackendStatus> out;
    if (pool >= first_.size()) return out;
    for (size_t b = 0; b < sizes_[pool]; ++b) {
        const BackendTable& t = tables_[first_[pool] + b];
        BackendStatus s;
        s.name = t.name;
        s.type = config::backend_kind_name(static_cast<config::BackendKind>(t.kind));
        s.max = t.max;
        for (uint32_t i = 0; i < t.max; ++i) {
            uint32_t w = t.owner[i].load(std::memory_order_relaxed);
            s.open += w != 0;
            s.busy += (w & BackendTable::kBusy) != 0;
        }
        s.waits = t.waits.load();
        s.wait_us = t.wait_us.load();
        s.errors = t.errors.load();
        s.reconnects = t.reconnects.load();
        out.push_back(std::move(s));
    }
    return out;
}

// A pid is not reused before its parent reaps it, so no live worker can own
// a word carrying it here.
void BackendBoard::release_pid(pid_t pid) {
    for (size_t i = 0; i < count_; ++i) {
        BackendTable& t = tables_[i];
        bool freed = false;
        for (uint32_t s = 0; s < t.max; ++s) {
            uint32_t w = t.owner[s].load();
            if (w && owner_pid(w) == static_cast<uint32_t>(pid) &&
                t.owner[s].compare_exchange_strong(w, 0))
                freed = true;
        }
        if (!freed) continue;
        t.release_seq.fetch_add(1);
        futex_wake(t.release_seq, INT_MAX);
    }
}

namespace tokens {

int try_acquire(BackendTable& t, pid_t pid) {
    for (uint32_t i = 0; i < t.max; ++i) {
        uint32_t expected = 0;
        if (t.owner[i].compare_exchange_strong(expected, static_cast<uint32_t>(pid)))
            return static_cast<int>(i);
    }
    return -1;
}

int acquire(BackendTable& t, pid_t pid, int nudge_fd, uint64_t deadline_us) {
    if (int i = try_acquire(t, pid); i >= 0) return i;
    uint64_t start = mono_us();
    t.waits.fetch_add(1);
    t.wanted.fetch_add(1);
    uint64_t one = 1;
    if (nudge_fd >= 0 && write(nudge_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        ZLOG_SYSERROR("write() to the backend nudge failed");
    int got = -1;
    uint64_t asked = start;
    while (got < 0) {
        uint32_t seen = t.release_seq.load();
        if ((got = try_acquire(t, pid)) >= 0) break;
        uint64_t now = mono_us();
        if (now >= deadline_us) break;
        // Another waiter's withdrawal may have taken our request: ask again.
        if (now - asked > 100000 && t.wanted.load() == 0) {
            t.wanted.fetch_add(1);
            if (nudge_fd >= 0 && write(nudge_fd, &one, sizeof one) < 0 && errno != EAGAIN)
                ZLOG_SYSERROR("write() to the backend nudge failed");
            asked = now;
        }
        // Bounded: a holder that gave back before we read `seen` woke nobody.
        futex_wait(t.release_seq, seen, std::min<uint64_t>(deadline_us - now, 10000));
    }
    // Our request is served (or given up): withdraw it if nobody claimed it.
    uint32_t w = t.wanted.load();
    while (w > 0 && !t.wanted.compare_exchange_weak(w, w - 1)) {
    }
    t.wait_us.fetch_add(mono_us() - start);
    return got;
}

void set_busy(BackendTable& t, int index, pid_t pid, bool busy) {
    t.owner[index].store(static_cast<uint32_t>(pid) | (busy ? BackendTable::kBusy : 0));
}

void release(BackendTable& t, int index) {
    t.owner[index].store(0);
    t.release_seq.fetch_add(1);
    futex_wake(t.release_seq, 1);
}

bool claim_give_back(BackendTable& t) {
    uint32_t w = t.wanted.load();
    while (w > 0)
        if (t.wanted.compare_exchange_weak(w, w - 1)) return true;
    return false;
}

} // namespace tokens
} // namespace lowphp
