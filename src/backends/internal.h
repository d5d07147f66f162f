// Internal to backends/: the worker's connections as the PHP API sees them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "link.h"
#include "lowphp/backend_board.h"

namespace lowphp::backends {

// One declared backend in this worker: its connection (if open), its token,
// and whether the current request leases it.
struct Backend {
    const config::BackendConfig* cfg = nullptr;
    BackendTable* table = nullptr;
    LinkPtr link;
    int token = -1; // index in table->owner, -1 = none held
    bool leased = false;
    uint64_t retry_at_ms = 0; // connect backoff: first uses fail fast until then
    int backoff_ms = 0;
    std::string last_error;
    std::string label() const; // "[pool www] backend main (pgsql)"
};

// The worker's backends; nullptr outside a worker of a pool that has any.
class Worker {
  public:
    Worker(const config::PoolConfig& pool, BackendTable* const* tables, int nudge_fd);
    std::vector<Backend>& all() { return backends_; }
    // By name, or nullptr.
    Backend* find(const std::string& name);
    // The request's lease on `b`, connected and clean; "" or why not (and
    // `sqlstate`).
    std::string lease(Backend& b, std::string& sqlstate);
    // Runs every busy connection until `done()` holds (or none is busy).
    template <typename Done> void run_until(Done done);
    // Ops of the request: owned here, so their results outlive no request.
    Op* new_op();
    uint64_t request_generation() const { return generation_; }
    // The request's PHP memory is about to go: no Op may be touched again.
    void drop_ops();
    // The script that leased a backend first in this request (log lines).
    void set_script(const char* script) { script_ = script; }
    void warn_open_transactions();
    void end_request();
    void give_back_idle();
    void release_idle(size_t index);
    void warm_up();
    void shutdown();
    const std::string& pool_name() const { return pool_; }

  private:
    void run_once(int timeout_ms);
    bool connect(Backend& b, std::string& sqlstate);
    void drop(Backend& b, bool graceful);
    void release_token(Backend& b, bool for_waiter = false);
    std::vector<Backend> backends_;
    std::vector<std::unique_ptr<Op>> ops_;
    std::string pool_, script_;
    int nudge_fd_;
    int wait_timeout_ms_;
    uint64_t generation_ = 1;
    pid_t pid_;
};

Worker* worker();

template <typename Done> void Worker::run_until(Done done) {
    while (!done()) {
        bool any = false;
        for (auto& b : backends_)
            any = any || (b.link && b.link->busy());
        if (!any) return;
        run_once(-1);
    }
}

} // namespace lowphp::backends
