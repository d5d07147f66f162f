// The master's state, shared by its translation units (lifecycle, process
// management, zygote control, worker output capture).
#pragma once

#include <deque>
#include <event2/event.h>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

#include <optional>

#include "event.h"
#include "handover.h"
#include "lowphp/child_output.h"
#include "lowphp/config.h"
#include "lowphp/master.h"
#include "lowphp/net.h"
#include "lowphp/scoreboard.h"
#include "lowphp/systemd_notify.h"
#include "lowphp/unique_fd.h"

namespace lowphp::master {

struct EventBaseDeleter {
    void operator()(event_base* b) const { event_base_free(b); }
};

class Master;

// One child's captured stdout or stderr (catch_workers_output).
struct OutputPipe {
    UniqueFd fd;
    EventPtr ev;
    std::optional<log::ChildOutput> lines; // cuts the bytes into log lines
    const char* stream_name = "stderr";
    pid_t pid = 0;
    size_t pool = 0;
    OutputPipe* other = nullptr; // the same worker's other stream (both captured)
    bool is_stderr = false;      // brings the end-of-request marker
};

// "SIGQUIT" for SIGQUIT, as php-fpm's fpm_signal_names; empty if unknown.
std::string signal_name(int signo);

struct Worker {
    pid_t pid = 0;
    size_t pool = 0;
    uint32_t slot = 0;
    uint64_t started_us = 0;
    bool idle_kill = false;           // stopped by the process manager: do not replace
    bool status = false;              // the pm.status_listen worker: outside the pm's counts
    uint64_t slow_logged_request = 0; // request_started_us already reported slow
    uint64_t terminated_request =
        0; // request_started_us already ended by request_terminate_timeout
    std::unique_ptr<OutputPipe> out, err;
};

// A kept-alive connection the master holds for a pool until nginx writes on
// it: the descriptor and the one-shot event watching it, closed together.
struct ParkedConnection {
    UniqueFd fd;
    EventPtr ev; // destroyed first: never an event on a closed descriptor
};

struct PoolRuntime {
    config::PoolConfig cfg;
    pool::Identity identity; // who its workers become, resolved at start-up
    net::Listener listener;
    net::Listener status_listener; // pm.status_listen, served by one extra worker
    pid_t zygote_pid = 0;
    UniqueFd zygote_ctl;
    EventPtr zygote_ev;
    EventPtr ondemand_ev; // ondemand: wakes the master when a connection waits
    bool zygote_ready = false;
    // An ondemand pool's zygote (its PHP start-up) waits for the first connection.
    bool zygote_wanted = true;
    // ondemand: connections that came (one event each) before the zygote was ready.
    int early_connections = 0;
    int zygote_restarts = 0; // consecutive short-lived zygotes: the restart backoff
    uint64_t zygote_started_us = 0;
    uint64_t zygote_retry_at_us = 0;
    std::vector<bool> slot_busy; // slot index (relative) reserved or in use
    int pending_spawns = 0;
    int idle_spawn_rate = 1; // dynamic pm: doubles while spawning is needed
    bool warned_max_children = false;
    // Kept-alive connections parked by workers (see worker/connections.cpp).
    UniqueFd park_rx, park_tx, handoff_rx, handoff_tx;
    // access.log and slowlog, opened by the master (as root) and handed to each new worker.
    UniqueFd access_log_fd, slowlog_fd;
    EventPtr park_ev;
    std::map<int, ParkedConnection> parked; // by fd
    // Parked connections with a request that the full handoff queue refused,
    // oldest first, and the event telling when the queue has room again.
    std::deque<int> waiting_for_room;
    EventPtr room_ev;
    // Pending output pipes per slot while the zygote forks the worker.
    std::map<uint32_t, std::pair<std::unique_ptr<OutputPipe>, std::unique_ptr<OutputPipe>>>
        pending_pipes;
    std::set<uint32_t> announced_spawns; // pending slots replacing a worker that exited
};

// Reloading: like Finishing, then the master re-executes itself keeping its
// listening sockets open (php-fpm's SIGUSR2).
enum class State { Starting, Running, Finishing, Terminating, Reloading };

class Master {
  public:
    Master(config::Config cfg, std::vector<pool::Identity> identities, const Options& opts)
        : cfg_(std::move(cfg)), identities_(std::move(identities)), opts_(opts) {}
    int run();

    // Lifecycle (master.cpp).
    void on_signal(int signo);
    bool configuration_loads();
    void on_tick();
    void check_request_timeouts(); // request_terminate_timeout, request_slowlog_timeout
    // `announce`: log what a signal asked for ("Finishing ...", "Reloading in
    // progress ...", "Terminating ..."); php-fpm's emergency restart does not.
    void begin_stop(State how, bool announce = true);
    bool stopping() const {
        return state_ == State::Finishing || state_ == State::Terminating ||
               state_ == State::Reloading;
    }
    void reexec();
    void maybe_exit();

    // Zygotes (zygote_control.cpp).
    bool start_zygote(size_t pool);
    void on_zygote_message(size_t pool);
    void request_spawn(size_t pool, bool status_worker = false, bool replacement = false);
    void maybe_ready();
    void count_new_worker_active(size_t pool);

    // Parked kept-alive connections (parking.cpp).
    bool open_parking(size_t pool);
    void on_park(size_t pool);
    void watch_parked(size_t pool, int fd);
    void on_parked_readable(size_t pool, int fd);
    void wait_for_room(size_t pool, int fd);
    void on_handoff_room(size_t pool);
    void close_parked();
    void keep_parked_across_exec(Handover& next); // reload: parked fds survive execv
    void adopt_parked();                          // after a reload: take them back

    // Workers (process_manager.cpp).
    void reap_children();
    void manage_pools();
    void spawn_initial(size_t pool);
    // `edge`: the listening socket's event (a new connection), not a tick's look.
    void on_ondemand_connection(size_t pool, bool edge);
    void watch_ondemand(size_t pool);
    bool connection_waiting(size_t pool);
    bool is_idle(const Worker& w, size_t pool);
    int idle_workers(size_t pool);
    int total_workers(size_t pool);
    bool spawning(size_t pool) const { return pools_[pool].pending_spawns > 0; }
    void watch_output(Worker& w);
    void on_output(OutputPipe* pipe);
    void flush_output(OutputPipe* pipe, bool all);
    void log_output(OutputPipe* pipe, const std::vector<std::string>& lines);

    event_base* base() { return base_.get(); }
    Scoreboard& scoreboard() { return scoreboard_; }

  private:
    bool setup_logging();
    bool create_listeners();
    bool listen_on(const config::PoolConfig& cfg, net::Listener& out,
                   std::vector<std::pair<std::string, int>>& inherited);
    bool write_pid_file();
    bool apply_master_limits();
    bool open_pool_logs(bool reopen);
    bool daemonize_if_asked();
    void notify_parent(bool ok);
    void install_events();
    void cleanup();
    void signal_workers(int signo);
    bool quit_worker(Worker& w);
    void on_worker_exit(Worker& w, int status);
    void count_failure();
    void on_zygote_exit(size_t pool, int status);
    Worker* first_started_idle(size_t pool);
    void kill_idle_worker(size_t pool);
    uint32_t free_slot(size_t pool);

    config::Config cfg_;
    std::vector<pool::Identity> identities_; // moved into pools_ by run()
    Handover handover_;                      // what the image before a reload left
    Options opts_;
    std::unique_ptr<event_base, EventBaseDeleter> base_;
    std::vector<EventPtr> signal_events_;
    EventPtr tick_event_;
    EventPtr heartbeat_event_; // request timeouts, when a pool has one
    EventPtr escalate_event_;
    EventPtr systemd_heartbeat_; // STATUS= lines to systemd, when it asks for them
    systemd_notify::Heartbeat systemd_state_;
    Scoreboard scoreboard_;
    std::vector<PoolRuntime> pools_;
    std::map<pid_t, Worker> workers_;
    std::map<pid_t, int> early_exits_; // reaped before the zygote reported them
    State state_ = State::Starting;
    int stop_signal_sent_ = 0;
    std::string pid_path_;
    std::string exe_path_;
    bool process_max_warned_ = false; // the binary as started: a reload executes the file now there
    int daemon_pipe_ = -1;
    std::vector<uint64_t> failures_us_; // emergency_restart_threshold bookkeeping
};

} // namespace lowphp::master
