// The master's state: the event loop, the signals, the reload, and the list of
// pools it routes between (each pool runs its own zygote and workers).
#pragma once

#include <event2/event.h>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

#include "file_watch.h"
#include "handover.h"
#include "lowphp/config.h"
#include "lowphp/event.h"
#include "lowphp/master.h"
#include "lowphp/net.h"
#include "lowphp/pool.h"
#include "lowphp/scoreboard.h"
#include "lowphp/systemd_notify.h"

namespace lowphp::master {

struct EventBaseDeleter {
    void operator()(event_base* b) const { event_base_free(b); }
};

// Reloading: like Finishing, then the master re-executes itself keeping its
// listening sockets open (php-fpm's SIGUSR2).
enum class State { Starting, Running, Finishing, Terminating, Reloading };

class Master final : public pool::Host {
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
    void reexec();
    void reap_children();
    void count_failure();

    // What the pools ask of the master (pool::Host).
    bool starting() const override { return state_ == State::Starting; }
    bool stopping() const override {
        return state_ == State::Finishing || state_ == State::Terminating ||
               state_ == State::Reloading;
    }
    bool reloading() const override { return state_ == State::Reloading; }
    void pool_ready() override;
    void start_failed() override;
    void worker_crashed() override { count_failure(); }
    bool may_spawn() override;
    std::optional<int> take_early_exit(pid_t pid) override;
    void child_gone() override;

    event_base* base() { return base_.get(); }
    Scoreboard& scoreboard() { return scoreboard_; }

  private:
    bool setup_logging();
    bool create_pools();
    bool create_listeners();
    bool listen_on(const config::PoolConfig& cfg, net::Listener& out,
                   std::vector<std::pair<std::string, int>>& inherited);
    bool write_pid_file();
    bool apply_master_limits();
    bool open_pool_logs(bool reopen);
    bool daemonize_if_asked();
    void notify_parent(bool ok);
    void install_events();
    bool watch_worker_files();
    void adopt_previous_generation();
    void retire_previous_generation();
    void cleanup();
    void signal_workers(int signo);
    void report_to_systemd();

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
    BackendBoard backends_;
    std::vector<std::unique_ptr<pool::Pool>> pools_;
    std::map<pid_t, int> early_exits_; // reaped before the zygote reported them
    // Workers of the previous generation whose pool is gone, and its zygotes.
    std::set<pid_t> orphans_, previous_zygotes_;
    EventPtr retire_event_;     // process_control_timeout for the previous generation
    EventPtr emergency_reload_; // emergency_restart_threshold reached
    FileWatch file_watch_;      // worker.watch of the worker-mode pools
    State state_ = State::Starting;
    std::string pid_path_;
    std::string exe_path_; // the binary as started: a reload executes the file now there
    bool process_max_warned_ = false;
    int daemon_pipe_ = -1;
    std::vector<uint64_t> failures_us_; // emergency_restart_threshold bookkeeping
};

} // namespace lowphp::master
