// Per-site backends (pgsql[], mysql[], redis[]): each worker keeps up to one
// connection per backend its pool declares, within connections.max[] across
// the pool; a request leases it from its first use to its end, and the
// session is reset after the response. The public face for worker/ and sapi/:
// no PHP types, no client library types.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "lowphp/config.h"

namespace lowphp {
struct BackendTable;
struct BackendStatus;
class BackendBoard;
} // namespace lowphp

namespace lowphp::backends {

// Zygote, before PHP starts: the LowPHP\ API is registered in pools that
// declare backends (a plain php-fpm pool loads no extra extension).
void register_php_module(const config::PoolConfig& pool);

// Worker, after its identity and environment are set: `tables` are the pool's
// token tables (backend_board.h), `nudge_fd` the pool's give-back eventfd.
void init_worker(const config::PoolConfig& pool, BackendTable* const* tables, int nudge_fd);
// Opens every backend's connection concurrently, as far as the caps allow;
// a backend that is down is logged and retried at its first use.
void warm_up();
// The nudge fired while idle: connections other workers wait for are closed
// and their tokens freed.
void give_back_idle();
// This worker's connection to the pool's backend `index`, when no request
// leases it, is closed and its token freed (connections.reuse needs the token
// for a kept connection to the same backend).
void release_idle(size_t index);
// A request's PHP is done, its response not yet ended: a transaction it left
// open is logged (naming the script).
void request_ending();
// After the response (classic: after php_request_shutdown; worker mode: after
// each handled request): open transactions rolled back, sessions reset,
// leases ended.
void end_request();
// Every worker of the pool (the status worker too): whose tables the status
// page shows.
void init_status(BackendBoard& board, size_t pool_index);
std::vector<BackendStatus> status();
// Before the worker exits: connections closed with their goodbye, tokens freed.
void shutdown_worker();

} // namespace lowphp::backends
