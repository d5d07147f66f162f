// The cross-worker cap on a site's backend connections (connections.max[NAME]):
// one token word per allowed connection in a shared mapping the master makes
// before any fork. A worker owns a token while it holds a connection open
// (idle between requests, or busy in one); a worker that finds none free
// waits on a futex and nudges idle holders to give theirs back. The master
// frees the tokens of every child it reaps, so a crash never leaks one.
// No PHP and no client library here.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>

#include "lowphp/config.h"

namespace lowphp {

struct BackendTable {
    static constexpr uint32_t kBusy = 1u << 31; // or'ed into the owner pid during a request
    // A token given back for a waiter: only a waiting worker may take it, so
    // one that just arrived cannot overtake those already waiting (pid 1 is
    // never a worker).
    static constexpr uint32_t kReserved = 1;
    // Which backend: a reload's new master finds its tables by this key, so
    // both generations count against one cap.
    char pool[64];
    uint64_t dsn_hash;
    bool configured; // by the current generation
    char name[36];
    int kind; // config::BackendKind
    uint32_t max;
    std::atomic<uint32_t> release_seq; // futex word: bumped at every release
    std::atomic<uint32_t> wanted;      // waiters that asked idle holders to give back
    std::atomic<uint64_t> waits, wait_us, errors, reconnects;
    std::atomic<uint32_t> owner[config::kMaxBackendConnections]; // 0 = free, else pid[|kBusy]
};

// A consistent-enough copy for the status page.
struct BackendStatus {
    std::string name, type;
    uint32_t max = 0, open = 0, busy = 0;
    uint64_t waits = 0, wait_us = 0, errors = 0, reconnects = 0;
};

class BackendBoard {
  public:
    BackendBoard() = default;
    ~BackendBoard();
    BackendBoard(const BackendBoard&) = delete;
    BackendBoard& operator=(const BackendBoard&) = delete;

    // One table per declared backend of every pool, and one nudge eventfd per
    // pool that declares any (inherited by its zygote and workers). The tables
    // live in a memfd: `inherited_fd` is the previous image's (a reload), whose
    // tables of the same pool, name, kind and DSN are taken over.
    bool create(const std::vector<config::PoolConfig>& pools, int inherited_fd = -1);
    // The memfd, for the reload's hand-over (-1: no backends anywhere).
    int fd() const { return fd_; }
    // The pool's tables, in the order of PoolConfig::backends (nullptr: none).
    BackendTable* const* tables(size_t pool) {
        return pool < pools_.size() && !pools_[pool].empty() ? pools_[pool].data() : nullptr;
    }
    int nudge_fd(size_t pool) const { return pool < nudge_.size() ? nudge_[pool] : -1; }
    std::vector<BackendStatus> status(size_t pool) const;
    // Master, for every reaped child: the tokens it held are free again.
    void release_pid(pid_t pid);

    static constexpr size_t kCapacity = 128; // tables in the memfd, all pools together

  private:
    bool map(int inherited_fd);
    BackendTable* place(const std::string& pool, const config::BackendConfig& cfg);
    BackendTable* tables_ = nullptr; // kCapacity of them
    int fd_ = -1;
    std::vector<std::vector<BackendTable*>> pools_;
    std::vector<int> nudge_;
};

// Token operations (any process holding the mapping).
namespace tokens {
// Takes a free token for `pid` at once: its index, or -1.
int try_acquire(BackendTable& t, pid_t pid);
// Waits until `deadline_us` (mono_us) for a token; nudges idle holders
// through `nudge_fd` first. -1 on timeout.
int acquire(BackendTable& t, pid_t pid, int nudge_fd, uint64_t deadline_us);
void set_busy(BackendTable& t, int index, pid_t pid, bool busy);
// `for_waiter`: the token goes to a waiting worker (kReserved).
void release(BackendTable& t, int index, bool for_waiter = false);
// An idle holder asked to give back: claims one pending request (true) or none.
bool claim_give_back(BackendTable& t);
} // namespace tokens

} // namespace lowphp
