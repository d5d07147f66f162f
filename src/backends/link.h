// One connection to one backend, driven without blocking: the interface the
// three clients (libpq, MariaDB Connector/C, hiredis) implement, and the
// operations PHP code submits to them. Internal to backends/.
//
// Only the worker's main thread touches a Link, and only while PHP runs (a
// LowPHP\ call, or the end of a request): results are built as zvals with
// emalloc, so memory_limit counts them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lowphp/config.h"
#include "php.h"

namespace lowphp::backends {

// A statement parameter, converted from its PHP value by the PHP API.
struct Param {
    enum class Type { Null, Int, Float, Bool, String } type = Type::Null;
    int64_t i = 0;
    double d = 0;
    bool b = false;
    std::string s; // binary-safe
};

// One call: a statement (pgsql, mysql) or a command (redis). The Link settles
// it: `settled` true, then either `result` (Query: a list of associative rows;
// Execute: the affected rows as int; Command: the reply) or `failed` with
// `sqlstate` (PostgreSQL/MariaDB SQLSTATE; Redis: the error's first word) and
// `message` ("[pgsql NAME] <the server's error>").
struct Op {
    enum class Kind { Query, Execute, Command } kind = Kind::Query;
    std::string sql;
    std::vector<Param> params;
    std::vector<std::string> args; // redis: the command and its arguments
    bool settled = false;
    bool failed = false;
    std::string sqlstate;
    std::string message;
    zval result; // IS_UNDEF until settled without failure; owned by the Op
    Op() { ZVAL_UNDEF(&result); }
    ~Op() { zval_ptr_dtor(&result); }
    Op(const Op&) = delete;
    Op& operator=(const Op&) = delete;
    void fail(std::string state, std::string text) {
        settled = failed = true;
        sqlstate = std::move(state);
        message = std::move(text);
    }
};

// What a busy Link waits for: poll(2) events on fd, and/or a deadline.
struct Wait {
    int fd = -1;
    short events = 0;
    uint64_t deadline_ms = 0; // mono_ms(); 0 = none
};

// The life of a connection: Connecting → Ready (ops run in order) → at the end
// of a request Resetting (replies read later, before the next use) → Ready;
// Broken (lost, or failed to connect) until dropped.
class Link {
  public:
    virtual ~Link() = default;
    // Starts a non-blocking connect. False: failed at once (error()).
    virtual bool start_connect() = 0;
    // Queues `op` behind those before it; the Link holds the pointer until it
    // settles (or abandon()).
    virtual void submit(Op* op) = 0;
    // Connecting, an op in flight or queued, or a reset's replies pending.
    virtual bool busy() const = 0;
    // While busy(): what to wait for.
    virtual Wait wait() const = 0;
    // Progress after poll(2) reported `revents` on wait().fd (0: the deadline
    // passed). Settles ops; on a lost connection fails them all (08006 for
    // pgsql, 08S01 for mysql, "ERR" for redis) and becomes broken().
    virtual void advance(short revents) = 0;
    // Connected, and not lost.
    virtual bool ready() const = 0;
    virtual bool broken() const = 0;
    // Why it broke or failed to connect.
    virtual std::string error() const = 0;
    // Whether the server has a transaction open on it (after the ops settled).
    virtual bool in_transaction() const = 0;
    // End of a request, nothing in flight: sends what resets the session
    // (rollback, session state, connect-time state restored) without waiting
    // for the replies; busy() until they are read.
    virtual void start_reset() = 0;
    // Before a Ready, idle connection is handed out: false if the server
    // closed it meanwhile (readable/HUP when it should be silent).
    virtual bool alive() = 0;
    // Forget every queued op without settling it (their owner is gone).
    virtual void abandon() = 0;
    // Closes the socket; `graceful` sends the protocol's goodbye first (never
    // in a forked child: it would end the parent's session).
    virtual void close(bool graceful) = 0;
};

using LinkPtr = std::unique_ptr<Link>;
// `pool` names the site (application_name / client name, log lines).
LinkPtr make_pgsql_link(const config::BackendConfig& backend, const std::string& pool);
LinkPtr make_mysql_link(const config::BackendConfig& backend, const std::string& pool);
LinkPtr make_redis_link(const config::BackendConfig& backend, const std::string& pool);

// Monotonic milliseconds (deadlines).
uint64_t mono_ms();

// Builders shared by the clients: a list of rows, each an associative array.
// add_column follows PDO: a repeated column name, the last one wins.
void add_column(zval* row, zend_string* name, zval* value);

} // namespace lowphp::backends
