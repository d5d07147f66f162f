// connections.reuse (lowphp): unchanged apps get warm, clean database
// connections. The PDO (pgsql, mysql), mysqli and pgsql connections a request
// opens become PHP persistent connections, kept by the worker; between
// requests an open transaction is rolled back (and logged), the session is
// reset and PDO attributes start from their defaults; a kept connection the
// server closed is dropped before it is handed out. The public face for sapi/
// and worker/: no PHP types.
#pragma once

#include "lowphp/config.h"

namespace lowphp {
struct BackendTable;
struct PoolBoard;
struct WorkerSlot;
} // namespace lowphp

namespace lowphp::reuse {

// Zygote, after PHP started: connect calls are made persistent (a pool with
// connections.reuse = on; nothing otherwise).
void install(const config::PoolConfig& pool);
// Worker: where the counters go; `tables` and `nudge_fd` (the pool's backend
// token tables, backend_board.h; null and -1 without pgsql[]/mysql[]) cap
// kept connections to a declared backend by its connections.max.
void init_worker(const config::PoolConfig& pool, PoolBoard* board, WorkerSlot* slot,
                 BackendTable* const* tables = nullptr, int nudge_fd = -1);
// The backend nudge fired while idle: a kept connection to a backend other
// workers wait for is closed and its token given to them.
void give_back_idle();
bool active();
// Before a request's script runs: kept connections the server closed go.
void request_starting();
// The script is done, the response not yet ended: a transaction it left open
// is logged (it also reaches the web server as FastCGI stderr).
void script_done(const char* script);
// After the response: rollback, session reset, PDO attribute defaults, for
// the connections the request took (`every`: all the worker keeps, for
// worker mode, where the app may hold them across requests).
void request_done(bool every = false);
// The worker has served nothing for connections.idle_timeout: its kept
// connections are closed.
void close_all();
// Seconds after which an idle worker closes its kept connections (0: never).
int idle_timeout();

} // namespace lowphp::reuse
