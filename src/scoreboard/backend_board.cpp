// Shared token tables for connections.max[NAME] (see backend_board.h).
#include "lowphp/backend_board.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <linux/futex.h>
#include <new>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
    if (tables_) munmap(tables_, sizeof(BackendTable) * kCapacity);
    if (fd_ >= 0) close(fd_);
    for (int fd : nudge_)
        if (fd >= 0) close(fd);
}

namespace {

uint64_t fnv1a(const std::string& text) {
    uint64_t hash = 14695981039346656037ull;
    for (unsigned char c : text)
        hash = (hash ^ c) * 1099511628211ull;
    return hash;
}

bool same_backend(const BackendTable& t, const std::string& pool,
                  const config::BackendConfig& cfg) {
    return pool == t.pool && cfg.name == t.name && static_cast<int>(cfg.kind) == t.kind &&
           fnv1a(cfg.dsn) == t.dsn_hash;
}

bool unowned(const BackendTable& t) {
    for (const auto& word : t.owner)
        if (word.load()) return false;
    return true;
}

} // namespace

// A memfd rather than an anonymous mapping: the new image of a reloading
// master maps the same pages its previous generation's workers still use.
bool BackendBoard::map(int inherited_fd) {
    size_t size = sizeof(BackendTable) * kCapacity;
    struct stat st {};
    bool inherited = inherited_fd >= 0 && fstat(inherited_fd, &st) == 0 &&
                     static_cast<size_t>(st.st_size) == size;
    if (inherited_fd >= 0 && !inherited) close(inherited_fd); // another build's layout
    fd_ = inherited ? inherited_fd : memfd_create("lowphp-backends", MFD_CLOEXEC);
    if (fd_ < 0 || (!inherited && ftruncate(fd_, static_cast<off_t>(size)) != 0)) {
        ZLOG_SYSERROR("unable to create the backend board (%zu bytes)", size);
        return false;
    }
    fcntl(fd_, F_SETFD, FD_CLOEXEC);
    void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (base == MAP_FAILED) {
        ZLOG_SYSERROR("unable to map the backend board: mmap(%zu)", size);
        return false;
    }
    tables_ = static_cast<BackendTable*>(base);
    if (!inherited)
        for (size_t i = 0; i < kCapacity; ++i)
            new (&tables_[i]) BackendTable{};
    for (size_t i = 0; i < kCapacity; ++i)
        tables_[i].configured = false;
    return true;
}

// The previous generation's table of the same backend, else a table no
// worker holds a token of.
BackendTable* BackendBoard::place(const std::string& pool, const config::BackendConfig& cfg) {
    for (size_t i = 0; i < kCapacity; ++i)
        if (!tables_[i].configured && tables_[i].name[0] && same_backend(tables_[i], pool, cfg))
            return &tables_[i];
    for (size_t i = 0; i < kCapacity; ++i) {
        BackendTable& t = tables_[i];
        if (t.configured || !unowned(t)) continue;
        t.~BackendTable();
        new (&t) BackendTable{};
        strncpy(t.pool, pool.c_str(), sizeof t.pool - 1);
        strncpy(t.name, cfg.name.c_str(), sizeof t.name - 1);
        t.kind = static_cast<int>(cfg.kind);
        t.dsn_hash = fnv1a(cfg.dsn);
        return &t;
    }
    ZLOG_ERROR("[pool %s] backend %s: more than %zu backends in all pools", pool.c_str(),
               cfg.name.c_str(), kCapacity);
    return nullptr;
}

bool BackendBoard::create(const std::vector<config::PoolConfig>& pools, int inherited_fd) {
    pools_.assign(pools.size(), {});
    nudge_.assign(pools.size(), -1);
    bool any =
        std::any_of(pools.begin(), pools.end(), [](const auto& p) { return !p.backends.empty(); });
    if (!any) {
        if (inherited_fd >= 0) close(inherited_fd);
        return true;
    }
    if (!map(inherited_fd)) return false;
    for (size_t i = 0; i < pools.size(); ++i) {
        for (const auto& cfg : pools[i].backends) {
            BackendTable* t = place(pools[i].name, cfg);
            if (!t) return false;
            t->configured = true;
            t->max = static_cast<uint32_t>(cfg.max);
            pools_[i].push_back(t);
        }
        if (pools[i].backends.empty()) continue;
        // Close-on-exec is enough: the zygote and its workers are forked.
        nudge_[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (nudge_[i] < 0) {
            ZLOG_SYSERROR("eventfd() failed for the backends of pool %s", pools[i].name.c_str());
            return false;
        }
    }
    return true;
}

std::vector<BackendStatus> BackendBoard::status(size_t pool) const {
    std::vector<BackendStatus> out;
    if (pool >= pools_.size()) return out;
    for (const BackendTable* tp : pools_[pool]) {
        const BackendTable& t = *tp;
        BackendStatus s;
        s.name = t.name;
        s.type = config::backend_kind_name(static_cast<config::BackendKind>(t.kind));
        s.max = t.max;
        for (const auto& word : t.owner) {
            uint32_t w = word.load(std::memory_order_relaxed);
            s.open += w != 0 && w != BackendTable::kReserved;
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
    for (size_t i = 0; tables_ && i < kCapacity; ++i) {
        BackendTable& t = tables_[i];
        bool freed = false;
        for (auto& word : t.owner) {
            uint32_t w = word.load();
            if (w && owner_pid(w) == static_cast<uint32_t>(pid) &&
                word.compare_exchange_strong(w, 0))
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
    // A waiter may also take a token reserved for waiters.
    auto take = [&]() {
        for (uint32_t i = 0; i < t.max; ++i) {
            for (uint32_t expected : {0u, BackendTable::kReserved})
                if (t.owner[i].compare_exchange_strong(expected, static_cast<uint32_t>(pid)))
                    return static_cast<int>(i);
        }
        return -1;
    };
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
        if ((got = take()) >= 0) break;
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

void release(BackendTable& t, int index, bool for_waiter) {
    t.owner[index].store(for_waiter ? BackendTable::kReserved : 0);
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
