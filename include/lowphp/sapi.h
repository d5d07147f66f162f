// The PHP side of a pool, as seen by the zygote and workers (no PHP types here).
#pragma once

#include <string>

#include "lowphp/fastcgi.h"

#include "lowphp/config.h"
#include "lowphp/php_ini_options.h"
#include "lowphp/scoreboard.h"

namespace lowphp::sapi {

// php_module_startup with the pool's php.ini (zygote). Returns false on failure.
bool start_pool(const config::PoolConfig& pool, const PhpIniOptions& ini);

// True when the pool leaves session.save_path to lowphp: session.save_handler is
// "files" and neither php.ini (with its conf.d and -d) nor the pool's
// php_value / php_admin_value sets session.save_path. Call after start_pool.
bool session_path_unset(const config::PoolConfig& pool);

// Makes `path` the pool's session.save_path (a master value: scripts and
// .user.ini may still change it, as with a php.ini line).
void set_session_path(const std::string& path);

// Per-worker set-up after fork and privilege drop (environment hooks, logging,
// the scoreboard the status page reads; `tcp_listen_fd` -1 for unix listeners).
void init_worker(const config::PoolConfig& pool, Scoreboard& board, size_t pool_index,
                 uint32_t slot, int tcp_listen_fd, int access_log_fd);

// request_slowlog_timeout: the thread that writes this worker's backtraces to
// `slowlog_fd` when the master asks (see slowlog.cpp). No-op without a slowlog.
void start_slowlog_thread(const config::PoolConfig& pool, WorkerSlot* slot, int slowlog_fd);

// fastcgi_finish_request() on a connection nginx keeps answers nginx, which may
// send its next request on that connection while the script runs on. php-fpm
// leaves that request waiting for the script; lowphp-fpm hands the connection
// to `release` (the worker parks it with the master, so another worker serves
// it). The callee owns and closes the fd. Unset: the connection stays.
using ReleaseConnection = void (*)(int fd);
void set_release_connection(ReleaseConnection release);

// Serve the request just read from `conn` into `req`; the answer goes out on
// `conn`, which is closed afterwards unless it is kept. Returns false when
// PHP could not start the request (the worker must stop).
bool serve(fastcgi::Connection& conn, const fastcgi::Request& req);

// Worker mode (worker.script): where lowphp_handle_request() gets its
// requests from. Implemented by the worker (worker/), called by the SAPI.
class WorkerLoop {
  public:
    // The next request, read from `conn` into `req`; false when the worker
    // must stop (both stay valid until the next call).
    virtual bool next(fastcgi::Connection*& conn, const fastcgi::Request*& req) = 0;
    // The request just answered is done (its connection kept or closed);
    // false when the worker must stop after it (max requests, memory).
    virtual bool done() = 0;

  protected:
    ~WorkerLoop() = default;
};

// How a worker script ended.
enum WorkerScriptEnd {
    kWorkerScriptEnded,   // lowphp_handle_request() returned false, or exit()
    kWorkerScriptCrashed, // a fatal error (or timeout, memory_limit) in a handled request
    kWorkerScriptFailed,  // it never reached lowphp_handle_request(): a boot failure
};

// Boot pool.worker_script and serve the pool's requests from its handler.
WorkerScriptEnd run_worker_script(const config::PoolConfig& pool, WorkerLoop& loop);

// Module shutdown at worker exit (flushes sessions etc. are per request already).
void shutdown_worker();

} // namespace lowphp::sapi
