// Internal to reuse/: what the connect wrappers and the between-requests work
// share.
#pragma once

#include <cstdint>
#include <string>

#include "lowphp/config.h"
#include "lowphp/scoreboard.h"
#include "php.h"

namespace lowphp::reuse {

struct State {
    const config::PoolConfig* pool = nullptr;
    PoolBoard* board = nullptr;
    WorkerSlot* slot = nullptr;
    // Resource type ids of the persistent entries (-1: extension not loaded).
    int pgsql_link = -1, pdo_handle = -1, mysqli_links = -1;
};
State& state();

// persistence.cpp: the connect functions' wrappers (zygote).
void wrap_connect_functions();
// End of a request: the PDO handles it opened are no longer in use.
void forget_request_handles();

// The kept connections this request opened or took (PDO dbh, PGconn
// pointers): only those are reset after it, not every one the worker keeps.
void mark_used(const void* handle);
// ext/pgsql: a connection the request took, for which the link was not found.
void mark_every_pg_link_used();
// mysqli's kept links waiting to be taken, over every key.
size_t mysqli_free_links();
// The login a mysqli link was connected or taken with: what it is reset to.
struct MysqliLogin {
    std::string user, password, db;
    bool has_db = false;
};
void remember_login(const void* link, MysqliLogin login);

// Counted on the pool's board (status page).
void count(std::atomic<uint64_t> PoolBoard::*counter);

} // namespace lowphp::reuse
