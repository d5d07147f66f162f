// Internal to reuse/: what the connect wrappers and the between-requests work
// share.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lowphp/config.h"
#include "lowphp/scoreboard.h"
#include "php.h"

namespace lowphp {
struct BackendTable;
}

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
// Around mysqli's own connect: a link it takes that was reset after the last
// request is not reset a second time.
void mysqli_taking(bool on);

// Whether this request opened or took the kept connection `handle`.
bool used_this_request(const void* handle);
// Closes a kept connection (a PDO dbh, PGconn or mysqli's MYSQLND) and forgets it.
void drop_kept(const void* handle);

// caps.cpp: where a connect goes, and the declared backend's cap on it.
struct Target {
    config::BackendKind kind = config::BackendKind::Pgsql;
    std::string host, port, dbname, user;
};
Target pgsql_target(const std::string& conninfo, const std::string& user);
Target pdo_target(const std::string& dsn, const std::string& user);
Target mysqli_target(const std::string& host, const std::string& user, const std::string& db,
                     const std::string& port);
struct Admission {
    int backend = -1;    // the declared backend the connect goes to (-1: none)
    int token = -1;      // taken for a new connection
    std::string refused; // no token within connections.wait_timeout
};
void init_caps(const config::PoolConfig& pool, BackendTable* const* tables, int nudge_fd);
// Before a connect (`key`: what PHP keys the kept connection on, the
// arguments `target` is parsed from, only while caps apply and once per key;
// `shared`: PHP hands the kept one out again within a request, as
// pg_pconnect does).
Admission admit(const std::function<Target()>& target, const std::string& key, bool shared = false);
// After it: `handle` (null: failed), `kept`: PHP keeps it persistently.
void admitted(const Admission& a, const void* handle, const std::string& key, bool kept);
// After a request: tokens of connections no longer `alive` are freed, and
// idle ones are given to waiting workers.
void reconcile_caps(const std::vector<const void*>& alive);
// Idle connections to backends other workers wait for: closed, tokens given.
void give_idle_to_waiters();

// Counted on the pool's board (status page).
void count(std::atomic<uint64_t> PoolBoard::*counter);

} // namespace lowphp::reuse
