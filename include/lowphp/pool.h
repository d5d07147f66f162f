// One site as the master runs it: its zygote, its workers, the kept-alive
// connections parked with it, its workers' captured output and its process
// manager's counters. The master owns the event loop, the signals and the
// list of pools, and routes between them; a pool reaches back only through
// `Host`. Worker mode and backend pools attach here.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

#include "lowphp/backend_board.h"
#include "lowphp/child_output.h"
#include "lowphp/config.h"
#include "lowphp/event.h"
#include "lowphp/generation.h"
#include "lowphp/identity.h"
#include "lowphp/net.h"
#include "lowphp/php_ini_options.h"
#include "lowphp/scoreboard.h"
#include "lowphp/unique_fd.h"

namespace lowphp::pool {

// What a pool asks of the master that runs it.
class Host {
  public:
    virtual bool starting() const = 0;
    virtual bool stopping() const = 0;
    virtual bool reloading() const = 0;
    // A zygote or a worker came up: the start-up may be complete.
    virtual void pool_ready() = 0;
    // PHP could not start in a zygote before the master was ready.
    virtual void start_failed() = 0;
    // A worker died of SIGSEGV or SIGBUS (emergency_restart_threshold).
    virtual void worker_crashed() = 0;
    // process.max, which counts the workers of every pool.
    virtual bool may_spawn() = 0;
    // A child reaped before its zygote named it (it exited at once).
    virtual std::optional<int> take_early_exit(pid_t pid) = 0;
    // A child of the pool is gone: the master may be done stopping.
    virtual void child_gone() = 0;

  protected:
    ~Host() = default;
};

// What every pool shares with the master.
struct Shared {
    event_base* base = nullptr;
    Scoreboard* scoreboard = nullptr;
    BackendBoard* backends = nullptr;
    const config::Config* config = nullptr; // the whole file: the zygote reads [global] too
    PhpIniOptions ini;
    bool run_as_root = false;
};

// One child's captured stdout or stderr (catch_workers_output).
struct OutputPipe {
    UniqueFd fd;
    EventPtr ev;
    std::optional<log::ChildOutput> lines; // cuts the bytes into log lines
    const char* stream_name = "stderr";
    pid_t pid = 0;
    OutputPipe* other = nullptr; // the same worker's other stream (both captured)
    bool is_stderr = false;      // brings the end-of-request marker
};

struct Worker {
    pid_t pid = 0;
    uint32_t slot = 0;
    uint64_t started_us = 0;
    bool idle_kill = false;           // stopped by the process manager: do not replace
    bool status = false;              // the pm.status_listen worker: outside the pm's counts
    uint64_t slow_logged_request = 0; // request_started_us already reported slow
    uint64_t terminated_request = 0;  // request_started_us already ended by the timeout
    // Of the previous generation (a reload): serves until this one is up, then
    // ends after its request; outside the pm's counts, its slot in the old board.
    bool retiring = false;
    std::unique_ptr<OutputPipe> out, err;
};

// A kept-alive connection parked with the pool until nginx writes on it: the
// descriptor and the one-shot event watching it, closed together.
struct ParkedConnection {
    UniqueFd fd;
    EventPtr ev; // destroyed first: never an event on a closed descriptor
};

class Pool {
  public:
    Pool(size_t index, config::PoolConfig cfg, Identity identity, const Shared& shared, Host& host);
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    const config::PoolConfig& cfg() const { return cfg_; }
    const std::string& name() const { return cfg_.name; }

    // The sockets the master opened (or inherited) for this pool.
    net::Listener listener;
    net::Listener status_listener; // pm.status_listen, served by one extra worker

    // Start-up (pool.cpp, parking.cpp).
    bool open_logs(bool reopen, bool& any, bool& access_reopened); // access.log, slowlog
    // The previous generation's channels when a reload handed them over (its
    // workers go on parking there), else new ones.
    bool open_parking(const Channels* inherited);
    void adopt_parked(int fd);                       // a kept connection handed over by a reload
    void adopt_retiring(const RetiringChild& child); // a worker of the previous generation
    bool start();    // the zygote now, or at an ondemand pool's first connection
    bool up() const; // start-up waits for nothing more of this pool

    // Running (process_manager.cpp, request_timeouts.cpp).
    void manage(); // the 1-second tick
    void check_request_timeouts(uint64_t now_us);
    bool on_child_exit(pid_t pid, int status); // false: not a child of this pool
    size_t children() const;                   // workers alive or being forked
    int total_workers() const;                 // the pm's count: without the status worker
    int idle_workers() const;
    void quit_workers(); // graceful replacement (SIGUSR1)
    // worker.watch: a new zygote (fresh opcache memory: the new code even with
    // opcache.validate_timestamps = 0), then every worker replaced gracefully
    // by one forked from it. The other pools are not touched.
    void restart(const std::string& why);
    void quit_retiring(); // this generation is up: the previous one ends
    void kill_retiring(); // it outlived process_control_timeout

    // Stopping (pool.cpp, parking.cpp).
    int signal_workers(int signo); // those still alive
    void stop();                   // no new workers; the zygote ends
    bool finished() const { return workers_.empty() && zygote_pid_ == 0; }
    void close_parked();
    // A reload, for the next image: every parked connection, the channels,
    // and the children (those an image before handed over too).
    void release_parked(std::vector<int>& fds);
    Channels release_channels();
    void release_children(std::vector<RetiringChild>& out);

  private:
    // process_manager.cpp
    uint32_t free_slot();
    bool is_idle(const Worker& w) const;
    template <typename Fn> void each_idle_slot(Fn fn) const;
    bool claim_idle_worker();
    void spawn_initial();
    bool connection_waiting() const;
    void watch_ondemand();
    void on_ondemand_connection(bool edge); // edge: the socket's event, not a tick's look
    void manage_dynamic(int idle, int total);
    void manage_ondemand();
    void warn_max_children(const char* directive);
    Worker* first_started_idle();
    void kill_idle_worker();
    bool quit_worker(Worker& w);
    void on_worker_exit(Worker& w, int status);
    void report_boot_failure(const Worker& w);
    void on_retiring_exit(Worker& w, int status);
    void free_worker_slot(const Worker& w);
    void on_zygote_exit(int status);
    // zygote_link.cpp
    bool start_zygote();
    void on_zygote_message();
    void on_worker_forked(pid_t pid, uint32_t slot);
    // The slot the zygote is asked to fill (UINT32_MAX: none).
    uint32_t request_spawn(bool status_worker = false, bool replacement = false);
    void count_new_worker_active();
    // parking.cpp
    void on_park();
    bool open_routes(const Channels* inherited);
    void watch_parked(int fd);
    void on_parked_readable(int fd);
    void wait_for_room(int fd);
    void on_handoff_room();
    // worker_output.cpp
    void watch_output(Worker& w);
    void on_output(OutputPipe* pipe);
    void flush_output(OutputPipe* pipe);
    void log_output(OutputPipe* pipe, const std::vector<std::string>& lines);

    PoolBoard& board() { return shared_.scoreboard->pool(index_); }
    WorkerSlot& slot(uint32_t i) { return shared_.scoreboard->slot(i); }
    const WorkerSlot& slot(uint32_t i) const { return shared_.scoreboard->slot(i); }

    size_t index_; // in the configuration and the scoreboard
    config::PoolConfig cfg_;
    Identity identity_; // who its workers become, resolved at start-up
    Shared shared_;
    Host& host_;

    std::map<pid_t, Worker> workers_;
    pid_t zygote_pid_ = 0;
    UniqueFd zygote_ctl_;
    EventPtr zygote_ev_;
    EventPtr ondemand_ev_; // ondemand: wakes the pool when a connection waits
    bool zygote_ready_ = false;
    // An ondemand pool's zygote (its PHP start-up) waits for the first connection.
    bool zygote_wanted_ = true;
    // ondemand: connections that came (one event each) before the zygote was ready.
    int early_connections_ = 0;
    // ondemand: idle workers a connection event counts on, by slot (claim_idle_worker).
    struct Claim {
        uint64_t at_us;
        uint64_t requests; // the slot's count then: the next request ends the claim
    };
    std::map<uint32_t, Claim> claims_;
    bool boot_failures_announced_ = false; // worker mode: the 503 line was logged
    bool restart_requested_ = false;       // restart(): the zygote's exit was asked for
    bool replace_workers_ = false;         // restart(): quit the workers once it is up
    int zygote_restarts_ = 0;              // consecutive short-lived zygotes: the restart backoff
    uint64_t zygote_started_us_ = 0;
    uint64_t zygote_retry_at_us_ = 0;
    std::vector<bool> slot_busy_; // slot index (relative) reserved or in use
    int pending_spawns_ = 0;
    int idle_spawn_rate_ = 1; // dynamic pm: doubles while spawning is needed
    bool warned_max_children_ = false;
    // Pending output pipes per slot while the zygote forks the worker.
    std::map<uint32_t, std::pair<std::unique_ptr<OutputPipe>, std::unique_ptr<OutputPipe>>>
        pending_pipes_;
    std::set<uint32_t> announced_spawns_; // pending slots replacing a worker that exited

    // access.log and slowlog, opened by the master (as root) and handed to each new worker.
    UniqueFd access_log_fd_, slowlog_fd_;

    // Kept-alive connections: workers park them here (park_*), and idle workers
    // take readable ones from the handoff queue (handoff_*).
    UniqueFd park_rx_, park_tx_, handoff_rx_, handoff_tx_;
    // worker.match: the queues to the classic workers ([0]) and to the
    // worker-mode ones ([1]); read by workers only. Inherited ones a pool
    // without worker.match no longer reads are drained into parking.
    UniqueFd route_rx_[2], route_tx_[2];
    EventPtr route_drain_[2];
    EventPtr park_ev_;
    std::map<int, ParkedConnection> parked_; // by fd
    // Parked connections with a request that the full handoff queue refused,
    // oldest first, and the event telling when the queue has room again.
    std::deque<int> waiting_for_room_;
    EventPtr room_ev_;
};

} // namespace lowphp::pool
