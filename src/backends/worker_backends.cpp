// The worker's backend connections: leases for requests, the poll loop that
// drives them, resets after each request, reconnects with backoff, and the
// shared cap (tokens) across the pool's workers.
#include <cerrno>
#include <mysql.h>
#include <poll.h>
#include <unistd.h>

#include "internal.h"
#include "lowphp/backends.h"
#include "lowphp/log.h"
#include "lowphp/scoreboard.h"

namespace lowphp::backends {
namespace {

std::unique_ptr<Worker> the_worker;

constexpr int kDrainMs = 5000;       // ops a request left running, after its response
constexpr int kFirstBackoffMs = 100; // a failed connect: retried after 100 ms, doubling
constexpr int kMaxBackoffMs = 5000;

LinkPtr make_link(const config::BackendConfig& cfg, const std::string& pool) {
    switch (cfg.kind) {
    case config::BackendKind::Pgsql:
        return make_pgsql_link(cfg, pool);
    case config::BackendKind::Mysql:
        return make_mysql_link(cfg, pool);
    case config::BackendKind::Redis:
        return make_redis_link(cfg, pool);
    }
    return nullptr;
}

} // namespace

uint64_t mono_ms() {
    return lowphp::mono_us() / 1000;
}

Worker* worker() {
    return the_worker.get();
}

std::string Backend::label() const {
    return "backend " + cfg->name + " (" + config::backend_kind_name(cfg->kind) + ")";
}

Worker::Worker(const config::PoolConfig& pool, BackendTable* const* tables, int nudge_fd)
    : pool_(pool.name), nudge_fd_(nudge_fd), wait_timeout_ms_(pool.connections_wait_timeout_ms),
      pid_(getpid()) {
    for (size_t i = 0; i < pool.backends.size(); ++i) {
        Backend b;
        b.cfg = &pool.backends[i];
        b.table = tables[i];
        backends_.push_back(std::move(b));
    }
}

Backend* Worker::find(const std::string& name) {
    for (auto& b : backends_)
        if (b.cfg->name == name) return &b;
    return nullptr;
}

Op* Worker::new_op() {
    ops_.push_back(std::make_unique<Op>());
    return ops_.back().get();
}

void Worker::drop_ops() {
    for (auto& b : backends_)
        if (b.link) b.link->abandon();
    ops_.clear();
}

// One poll(2) over every busy connection; each is advanced on its events or
// when its deadline passed.
void Worker::run_once(int timeout_ms) {
    std::vector<struct pollfd> fds;
    std::vector<Link*> links;
    uint64_t now = mono_ms(), next_deadline = 0;
    for (auto& b : backends_) {
        if (!b.link || !b.link->busy()) continue;
        Wait w = b.link->wait();
        fds.push_back({w.fd, w.events, 0});
        links.push_back(b.link.get());
        if (w.deadline_ms && (!next_deadline || w.deadline_ms < next_deadline))
            next_deadline = w.deadline_ms;
    }
    if (links.empty()) return;
    if (next_deadline) {
        int until = next_deadline > now ? static_cast<int>(next_deadline - now) : 0;
        timeout_ms = timeout_ms < 0 ? until : std::min(timeout_ms, until);
    }
    int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) ZLOG_SYSERROR("poll() on backend connections failed");
    if (n < 0) return;
    now = mono_ms();
    for (size_t i = 0; i < links.size(); ++i) {
        Wait w = links[i]->wait();
        if (fds[i].revents || (w.deadline_ms && now >= w.deadline_ms))
            links[i]->advance(fds[i].revents);
    }
}

void Worker::drop(Backend& b, bool graceful) {
    if (b.link) b.link->close(graceful);
    b.link.reset();
}

void Worker::release_token(Backend& b, bool for_waiter) {
    if (b.token < 0) return;
    tokens::release(*b.table, b.token, for_waiter);
    b.token = -1;
}

bool Worker::connect(Backend& b, std::string& sqlstate) {
    uint64_t now = mono_ms();
    sqlstate = "08001";
    if (now < b.retry_at_ms) {
        b.last_error = b.last_error.substr(0, b.last_error.find(" (retrying")) + " (retrying in " +
                       std::to_string(b.retry_at_ms - now) + " ms)";
        return false;
    }
    b.link = make_link(*b.cfg, pool_);
    if (b.link->start_connect()) run_until([&] { return !b.link->busy(); });
    if (b.link->ready()) {
        b.backoff_ms = 0;
        return true;
    }
    b.last_error = b.link->error();
    b.backoff_ms = b.backoff_ms ? std::min(b.backoff_ms * 2, kMaxBackoffMs) : kFirstBackoffMs;
    b.retry_at_ms = mono_ms() + static_cast<uint64_t>(b.backoff_ms);
    drop(b, false);
    return false;
}

std::string Worker::lease(Backend& b, std::string& sqlstate) {
    if (b.leased) {
        if (b.link && !b.link->broken()) return "";
        // Lost during this request: the request keeps failing on it (its
        // transaction and session are gone) until it ends.
        sqlstate = b.cfg->kind == config::BackendKind::Mysql   ? "08S01"
                   : b.cfg->kind == config::BackendKind::Redis ? "ERR"
                                                               : "08006";
        return b.link ? b.link->error() : "connection lost";
    }
    if (b.token < 0) {
        uint64_t deadline = lowphp::mono_us() + static_cast<uint64_t>(wait_timeout_ms_) * 1000;
        b.token = tokens::acquire(*b.table, pid_, nudge_fd_, deadline);
        if (b.token < 0) {
            sqlstate = "HYT00";
            return "no connection to " + b.cfg->name + " within " +
                   std::to_string(wait_timeout_ms_) +
                   " ms, connections.max = " + std::to_string(b.cfg->max);
        }
    }
    tokens::set_busy(*b.table, b.token, pid_, true);
    // The previous request's reset: its replies are usually in the socket already.
    if (b.link && b.link->busy()) run_until([&] { return !b.link->busy(); });
    if (b.link && (b.link->broken() || !b.link->alive())) {
        drop(b, false);
        b.table->reconnects.fetch_add(1);
    }
    if (!b.link && !connect(b, sqlstate)) {
        release_token(b);
        return b.last_error;
    }
    b.leased = true;
    return "";
}

// Before the response ends, so that the line also reaches the web server's
// error log (FastCGI stderr), as a worker's log lines do.
void Worker::warn_open_transactions() {
    for (auto& b : backends_)
        if (b.leased && b.link && !b.link->busy() && b.link->in_transaction())
            ZLOG_WARNING("[pool %s] %s: %s left a transaction open; rolled back", pool_.c_str(),
                         b.label().c_str(), script_.c_str());
}

void Worker::end_request() {
    drop_ops();
    for (auto& b : backends_) {
        if (!b.leased) continue;
        b.leased = false;
        uint64_t until = mono_ms() + kDrainMs;
        run_until([&] { return !b.link || !b.link->busy() || mono_ms() >= until; });
        if (!b.link || b.link->broken() || b.link->busy()) {
            drop(b, false);
            release_token(b);
            continue;
        }
        b.link->start_reset();
        if (tokens::claim_give_back(*b.table)) {
            // Another worker waits for this backend: its connection, not ours.
            run_until([&] { return !b.link->busy(); });
            drop(b, true);
            release_token(b, true);
        } else {
            tokens::set_busy(*b.table, b.token, pid_, false);
        }
    }
    script_.clear();
    ++generation_;
}

void Worker::give_back_idle() {
    for (auto& b : backends_) {
        if (b.leased || b.token < 0 || !tokens::claim_give_back(*b.table)) continue;
        if (b.link && b.link->busy()) run_until([&] { return !b.link->busy(); });
        drop(b, true);
        release_token(b, true);
    }
}

void Worker::release_idle(size_t index) {
    if (index >= backends_.size()) return;
    Backend& b = backends_[index];
    if (b.leased || b.token < 0) return;
    if (b.link && b.link->busy()) run_until([&] { return !b.link->busy(); });
    drop(b, true);
    release_token(b);
}

void Worker::warm_up() {
    for (auto& b : backends_) {
        b.token = tokens::try_acquire(*b.table, pid_);
        if (b.token < 0) continue; // the cap is full: connected lazily, at first use
        b.link = make_link(*b.cfg, pool_);
        if (!b.link->start_connect()) continue;
    }
    run_until([] { return false; });
    for (auto& b : backends_) {
        if (!b.link || b.link->ready()) continue;
        ZLOG_WARNING("[pool %s] %s: %s; retried at first use", pool_.c_str(), b.label().c_str(),
                     b.link->error().c_str());
        drop(b, false);
        release_token(b);
    }
}

void Worker::shutdown() {
    drop_ops();
    for (auto& b : backends_) {
        drop(b, getpid() == pid_);
        if (getpid() == pid_) release_token(b);
    }
}

// The public face (lowphp/backends.h).

void init_worker(const config::PoolConfig& pool, BackendTable* const* tables, int nudge_fd) {
    if (pool.backends.empty() || !tables) return;
    // Connector/C's global state, before any thread could use it (never in the zygote).
    mysql_library_init(0, nullptr, nullptr);
    the_worker = std::make_unique<Worker>(pool, tables, nudge_fd);
}

namespace {
BackendBoard* status_board = nullptr;
size_t status_pool = 0;
} // namespace

void init_status(BackendBoard& board, size_t pool_index) {
    status_board = &board;
    status_pool = pool_index;
}

std::vector<BackendStatus> status() {
    return status_board ? status_board->status(status_pool) : std::vector<BackendStatus>{};
}

void warm_up() {
    if (the_worker) the_worker->warm_up();
}

void give_back_idle() {
    if (the_worker) the_worker->give_back_idle();
}

void release_idle(size_t index) {
    if (the_worker) the_worker->release_idle(index);
}

void request_ending() {
    if (the_worker) the_worker->warn_open_transactions();
}

void end_request() {
    if (the_worker) the_worker->end_request();
}

void shutdown_worker() {
    if (the_worker) the_worker->shutdown();
}

} // namespace lowphp::backends
