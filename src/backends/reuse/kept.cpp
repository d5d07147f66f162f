// connections.reuse: the connections PHP keeps in EG(persistent_list) for
// this worker (ext/pgsql links, PDO handles, mysqli's pools), looked after
// between requests: an open transaction is logged and rolled back, the
// session reset, PDO attributes back to their defaults, and a connection the
// server closed meanwhile dropped before a request can take it.
#include <libpq-fe.h>
#include <poll.h>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "internal.h"
#include "lowphp/log.h"
#include "lowphp/reuse.h"

extern "C" {
#include "SAPI.h"
#include "ext/mysqli/php_mysqli_structs.h"
#include "ext/mysqlnd/mysqlnd.h"
#include "ext/pdo/php_pdo_driver.h"
}

namespace lowphp::reuse {
namespace {

State the_state;
bool installed = false;
std::string last_script; // the request's, for the warnings after its shutdown
std::unordered_set<const void*> used;
bool every_pg_link_used = false;
std::unordered_map<const void*, MysqliLogin> logins;
zend_mysqli_globals* mysqli_globals_ptr = nullptr; // MyG(), from the module entry
zend_class_entry* mysqli_ce = nullptr;

// Worker mode: a PDO handle the app holds across calls starts each call with
// the attributes it had when the request that opened it ended (the boot, most
// often: where the app configures it), not PDO's defaults.
struct PdoAttributes {
    enum pdo_error_mode error_mode;
    enum pdo_fetch_type default_fetch_type;
    enum pdo_case_conversion desired_case;
    unsigned oracle_nulls, stringify; // bit fields of pdo_dbh_t
};
std::unordered_map<const pdo_dbh_t*, PdoAttributes> configured;
zend_class_entry* pdo_statement_ce = nullptr;

// What DISCARD ALL resets (after a ROLLBACK when needed). In worker mode the
// app may keep PDOStatements across requests: their prepared statements stay.
constexpr const char* kPgReset = "DISCARD ALL";
constexpr const char* kPgResetKeepPrepared =
    "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; "
    "SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES";

enum class Kind { PgLink, PdoPgsql, PdoMysql, Mysqli, Other };

struct Entry {
    zend_string* key;
    zend_resource* res;
    Kind kind;
};

Kind kind_of(const zend_resource* res) {
    const State& s = the_state;
    if (res->type == s.pgsql_link && s.pgsql_link >= 0) return Kind::PgLink;
    if (res->type == s.mysqli_links && s.mysqli_links >= 0) return Kind::Mysqli;
    if (res->type != s.pdo_handle || s.pdo_handle < 0 || !res->ptr) return Kind::Other;
    auto* dbh = static_cast<pdo_dbh_t*>(res->ptr);
    if (!dbh->driver || !dbh->driver_data) return Kind::Other;
    std::string driver(dbh->driver->driver_name, dbh->driver->driver_name_len);
    return driver == "pgsql" ? Kind::PdoPgsql : driver == "mysql" ? Kind::PdoMysql : Kind::Other;
}

std::vector<Entry> entries() {
    std::vector<Entry> out;
    zend_string* key;
    zval* v;
    ZEND_HASH_FOREACH_STR_KEY_VAL(&EG(persistent_list), key, v) {
        if (Z_TYPE_P(v) != IS_RESOURCE || !key) continue;
        Kind k = kind_of(Z_RES_P(v));
        if (k != Kind::Other) out.push_back({key, Z_RES_P(v), k});
    }
    ZEND_HASH_FOREACH_END();
    return out;
}

// Both PDO drivers keep their client handle first in driver_data.
PGconn* pg_of(const Entry& e) {
    if (e.kind == Kind::PgLink) return static_cast<PGconn*>(e.res->ptr);
    return *static_cast<PGconn**>(static_cast<pdo_dbh_t*>(e.res->ptr)->driver_data);
}
MYSQLND* mysql_of(const Entry& e) {
    return *static_cast<MYSQLND**>(static_cast<pdo_dbh_t*>(e.res->ptr)->driver_data);
}
pdo_dbh_t* dbh_of(const Entry& e) {
    return static_cast<pdo_dbh_t*>(e.res->ptr);
}
const pdo_dbh_t* dbh_of_entry_or_null(const Entry& e) {
    return e.kind == Kind::PdoPgsql || e.kind == Kind::PdoMysql ? dbh_of(e) : nullptr;
}

// Held by a live PDO object (worker mode: the app's container). The
// persistent list holds one reference of its own.
bool in_use(const Entry& e) {
    return (e.kind == Kind::PdoPgsql || e.kind == Kind::PdoMysql) && dbh_of(e)->refcount > 1;
}

const char* label(Kind k) {
    switch (k) {
    case Kind::PgLink:
        return "pgsql";
    case Kind::PdoPgsql:
        return "PDO pgsql";
    case Kind::PdoMysql:
        return "PDO mysql";
    case Kind::Mysqli:
        return "mysqli";
    default:
        return "?";
    }
}

bool pg_in_transaction(PGconn* c) {
    auto s = PQtransactionStatus(c);
    return s == PQTRANS_INTRANS || s == PQTRANS_INERROR;
}

bool mysql_in_transaction(MYSQLND* c) {
    return c && (mysqlnd_get_server_status(c) & SERVER_STATUS_IN_TRANS);
}

void warn_open(Kind k) {
    ZLOG_WARNING("[pool %s] %s connection: %s left a transaction open; rolled back",
                 the_state.pool->name.c_str(), label(k), last_script.c_str());
    count(&PoolBoard::rollbacks);
}

// COM_CHANGE_USER with the login the app connected with (mysqli's own
// arguments; mysqlnd's copy of the password is not reliable once mysqli put
// the link back): the server rolls back, drops temporary tables, clears user
// variables, releases named and table locks and restores the session
// variables (what mysqli does when it hands a kept link out again; done here
// too so an idle link holds nothing). Unknown login: left to mysqli.
bool change_user(MYSQLND* link) {
    auto it = logins.find(link);
    if (it == logins.end()) return true;
    const MysqliLogin& l = it->second;
    return mysqlnd_change_user_ex(link, l.user.c_str(), l.password.c_str(),
                                  l.has_db ? l.db.c_str() : nullptr, true,
                                  l.password.size()) == PASS;
}

// mysqli resets a link again when it hands it out (COM_CHANGE_USER, a round
// trip with authentication). A link reset after the last request and not used
// since is already what that would make it: mysqlnd's change_user method is
// wrapped so that, while mysqli takes a link (`taking`), a fresh one with the
// same login is handed out as is.
std::unordered_map<const MYSQLND_CONN_DATA*, MysqliLogin> fresh;
func_mysqlnd_conn_data__change_user original_change_user = nullptr;
bool taking = false;

enum_func_status change_user_unless_fresh(MYSQLND_CONN_DATA* const conn, const char* user,
                                          const char* passwd, const char* db, bool silent,
                                          size_t passwd_len) {
    auto it = taking ? fresh.find(conn) : fresh.end();
    if (it != fresh.end()) {
        const MysqliLogin l = std::move(it->second);
        fresh.erase(it);
        if (l.user == (user ? user : "") &&
            l.password == std::string(passwd ? passwd : "", passwd ? passwd_len : 0) &&
            l.db == (db ? db : ""))
            return PASS;
    }
    return original_change_user(conn, user, passwd, db, silent, passwd_len);
}

void wrap_change_user(MYSQLND* link) {
    if (original_change_user || !link->data || !link->data->m) return;
    original_change_user = link->data->m->change_user;
    link->data->m->change_user = change_user_unless_fresh; // the methods table all links share
}

// A link taken off mysqli's free list and closed: mysqli counts it no more
// (mysqli_get_links_stats, mysqli.max_persistent).
void close_free_link(MYSQLND* link) {
    logins.erase(link);
    fresh.erase(link->data);
    mysqlnd_close(link, MYSQLND_CLOSE_DISCONNECTED);
    if (mysqli_globals_ptr && mysqli_globals_ptr->num_inactive_persistent > 0)
        --mysqli_globals_ptr->num_inactive_persistent;
}

// mysqli's free links: the connections requests gave back to its pool. One
// per key is kept (two open at once in a request gave back two); the one
// this request used is reset now, its open transaction logged.
uint32_t tidy_mysqli_links(const Entry& e) {
    auto* plist = static_cast<mysqli_plist_entry*>(e.res->ptr);
    if (!plist) return 0;
    while (zend_ptr_stack_num_elements(&plist->free_links) > 1)
        close_free_link(static_cast<MYSQLND*>(zend_ptr_stack_pop(&plist->free_links)));
    if (zend_ptr_stack_num_elements(&plist->free_links) == 0) return 0;
    auto* link = static_cast<MYSQLND*>(plist->free_links.elements[0]);
    if (!used.count(link)) return 1; // not taken by this request: still clean
    if (mysql_in_transaction(link)) warn_open(Kind::Mysqli);
    if (!change_user(link)) {
        close_free_link(static_cast<MYSQLND*>(zend_ptr_stack_pop(&plist->free_links)));
        count(&PoolBoard::reconnects);
        return 0;
    }
    count(&PoolBoard::resets);
    if (auto it = logins.find(link); it != logins.end()) {
        wrap_change_user(link);
        fresh[link->data] = it->second;
    }
    return 1;
}

// Worker mode: the kept links of mysqli objects the app holds across calls
// (not on a free list, so mysqli will not reset them at its next connect).
std::vector<MYSQLND*> held_mysqli_links() {
    std::vector<MYSQLND*> out;
    if (!mysqli_ce) return out;
    const zend_objects_store& store = EG(objects_store);
    for (uint32_t i = 1; i < store.top; ++i) {
        zend_object* obj = store.object_buckets[i];
        if (!IS_OBJ_VALID(obj) || !instanceof_function(obj->ce, mysqli_ce)) continue;
        auto* res = static_cast<MYSQLI_RESOURCE*>(php_mysqli_fetch_object(obj)->ptr);
        auto* my = res ? static_cast<MY_MYSQL*>(res->ptr) : nullptr;
        if (my && my->persistent && my->mysql) out.push_back(my->mysql);
    }
    return out;
}

// A held link is reset as a free one is; one that cannot be stays with the
// app, whose next query reports the error.
void reset_held_mysqli_links() {
    for (MYSQLND* link : held_mysqli_links()) {
        if (mysql_in_transaction(link)) warn_open(Kind::Mysqli);
        if (change_user(link)) count(&PoolBoard::resets);
    }
}

bool pg_exec(PGconn* c, const char* sql) {
    PGresult* r = PQexec(c, sql);
    bool ok = r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
    return ok && PQstatus(c) == CONNECTION_OK;
}

// The database PDO mysql's DSN names ("mysql:host=..;dbname=app").
std::string dsn_dbname(const pdo_dbh_t* dbh) {
    std::string dsn(dbh->data_source ? dbh->data_source : "", dbh->data_source_len);
    size_t at = dsn.find("dbname=");
    if (at == std::string::npos) return "";
    size_t end = dsn.find(';', at);
    return dsn.substr(at + 7, end == std::string::npos ? std::string::npos : end - at - 7);
}

// PDO's own defaults (PHP 8.2) for what setAttribute() may have changed.
void reset_pdo_attributes(pdo_dbh_t* dbh, Kind k) {
    dbh->error_mode = PDO_ERRMODE_EXCEPTION;
    dbh->default_fetch_type = PDO_FETCH_BOTH;
    dbh->desired_case = PDO_CASE_NATURAL;
    dbh->oracle_nulls = PDO_NULL_NATURAL;
    dbh->stringify = 0;
    if (pdo_statement_ce && dbh->def_stmt_ce != pdo_statement_ce) {
        dbh->def_stmt_ce = pdo_statement_ce;
        zval_ptr_dtor(&dbh->def_stmt_ctor_args);
        ZVAL_UNDEF(&dbh->def_stmt_ctor_args);
    }
    if (!dbh->methods || !dbh->methods->set_attribute) return;
    zval v;
    ZVAL_BOOL(&v, k == Kind::PdoMysql); // emulated prepares: on for mysql, off for pgsql
    dbh->methods->set_attribute(dbh, PDO_ATTR_EMULATE_PREPARES, &v);
    if (k == Kind::PdoMysql) {
        ZVAL_TRUE(&v);
        dbh->methods->set_attribute(dbh, 1000, &v); // PDO::MYSQL_ATTR_USE_BUFFERED_QUERY
    }
}

// The attributes a held handle is brought back to, taken the first time it
// is seen held.
void restore_configured_attributes(pdo_dbh_t* dbh) {
    auto [it, fresh] = configured.try_emplace(
        dbh, PdoAttributes{dbh->error_mode, dbh->default_fetch_type, dbh->desired_case,
                           dbh->oracle_nulls, dbh->stringify});
    if (fresh) return;
    const PdoAttributes& a = it->second;
    dbh->error_mode = a.error_mode;
    dbh->default_fetch_type = a.default_fetch_type;
    dbh->desired_case = a.desired_case;
    dbh->oracle_nulls = a.oracle_nulls;
    dbh->stringify = a.stringify;
}

// Every kept connection of the worker, for the caps' bookkeeping.
std::vector<const void*> alive_handles() {
    std::vector<const void*> out;
    for (const Entry& e : entries()) {
        if (e.kind != Kind::Mysqli) {
            out.push_back(e.res->ptr);
            continue;
        }
        auto* plist = static_cast<mysqli_plist_entry*>(e.res->ptr);
        for (int i = 0; plist && i < plist->free_links.top; ++i)
            out.push_back(plist->free_links.elements[i]);
    }
    for (MYSQLND* link : held_mysqli_links())
        out.push_back(link);
    return out;
}

void drop(const Entry& e) {
    configured.erase(dbh_of_entry_or_null(e));
    zend_hash_del(&EG(persistent_list), e.key);
}

// One kept connection after a request: rolled back, reset; false if it
// cannot be (it is dropped then).
bool reset(const Entry& e) {
    bool held = in_use(e);
    if (e.kind == Kind::PgLink || e.kind == Kind::PdoPgsql) {
        PGconn* c = pg_of(e);
        if (pg_in_transaction(c) && !pg_exec(c, "ROLLBACK")) return false;
        return pg_exec(c, held ? kPgResetKeepPrepared : kPgReset);
    }
    if (e.kind == Kind::PdoMysql) {
        pdo_dbh_t* dbh = dbh_of(e);
        std::string db = dsn_dbname(dbh);
        // COM_CHANGE_USER: the server rolls back, drops temporary tables,
        // clears variables and releases locks (what mysqli does at reuse).
        return mysqlnd_change_user_ex(mysql_of(e), dbh->username ? dbh->username : "",
                                      dbh->password ? dbh->password : "",
                                      db.empty() ? nullptr : db.c_str(), true,
                                      dbh->password ? strlen(dbh->password) : 0) == PASS;
    }
    return true; // mysqli resets its links itself when it hands them out
}

} // namespace

State& state() {
    return the_state;
}

void mark_used(const void* handle) {
    used.insert(handle);
}

void mysqli_taking(bool on) {
    taking = on;
}

void remember_login(const void* link, MysqliLogin login) {
    logins[link] = std::move(login);
}

bool used_this_request(const void* handle) {
    return used.count(handle) > 0;
}

void drop_kept(const void* handle) {
    for (const Entry& e : entries()) {
        if (e.kind != Kind::Mysqli) {
            if (e.res->ptr != handle) continue;
            drop(e); // frees e.res (an ext/pgsql link's resource): not read after
            return;
        }
        auto* plist = static_cast<mysqli_plist_entry*>(e.res->ptr);
        zend_ptr_stack& free_links = plist->free_links;
        for (int i = 0; i < free_links.top; ++i) {
            if (free_links.elements[i] != handle) continue;
            std::copy(free_links.elements + i + 1, free_links.elements + free_links.top,
                      free_links.elements + i);
            --free_links.top;
            --free_links.top_element; // where zend_ptr_stack_push writes next
            close_free_link(static_cast<MYSQLND*>(const_cast<void*>(handle)));
            return;
        }
    }
}

void mark_every_pg_link_used() {
    every_pg_link_used = true;
}

size_t mysqli_free_links() {
    size_t n = 0;
    zval* v;
    ZEND_HASH_FOREACH_VAL(&EG(persistent_list), v) {
        if (Z_TYPE_P(v) != IS_RESOURCE || Z_RES_P(v)->type != the_state.mysqli_links ||
            the_state.mysqli_links < 0 || !Z_RES_P(v)->ptr)
            continue;
        auto* plist = static_cast<mysqli_plist_entry*>(Z_RES_P(v)->ptr);
        n += zend_ptr_stack_num_elements(&plist->free_links);
    }
    ZEND_HASH_FOREACH_END();
    return n;
}

void count(std::atomic<uint64_t> PoolBoard::*counter) {
    if (the_state.board) (the_state.board->*counter).fetch_add(1);
}

void install(const config::PoolConfig& pool) {
    if (!pool.connections_reuse) return;
    installed = true;
    the_state.pool = &pool;
    the_state.pgsql_link = zend_fetch_list_dtor_id("pgsql link persistent");
    the_state.pdo_handle = zend_fetch_list_dtor_id("PDO persistent database");
    the_state.mysqli_links = zend_fetch_list_dtor_id("MySqli persistent connection");
    auto* mysqli = static_cast<zend_module_entry*>(
        zend_hash_str_find_ptr(&module_registry, "mysqli", strlen("mysqli")));
    if (mysqli) mysqli_globals_ptr = static_cast<zend_mysqli_globals*>(mysqli->globals_ptr);
    mysqli_ce = static_cast<zend_class_entry*>(
        zend_hash_str_find_ptr(CG(class_table), "mysqli", strlen("mysqli")));
    pdo_statement_ce = static_cast<zend_class_entry*>(
        zend_hash_str_find_ptr(CG(class_table), "pdostatement", strlen("pdostatement")));
    // 0 from zend_fetch_list_dtor_id: the extension is not loaded.
    for (int* id : {&the_state.pgsql_link, &the_state.pdo_handle, &the_state.mysqli_links})
        if (*id <= 0) *id = -1;
    wrap_connect_functions();
}

void init_worker(const config::PoolConfig& pool, PoolBoard* board, WorkerSlot* slot,
                 BackendTable* const* tables, int nudge_fd) {
    if (!installed) return;
    the_state.pool = &pool;
    the_state.board = board;
    the_state.slot = slot;
    if (slot) slot->kept_connections.store(0);
    if (tables) init_caps(pool, tables, nudge_fd);
}

bool active() {
    return installed;
}

int idle_timeout() {
    return installed ? the_state.pool->connections_idle_timeout : 0;
}

// pg_terminate_backend, a server restart: an idle socket that is readable
// (or hung up) has been spoken to by the server, which only says goodbye.
void request_starting() {
    if (!installed) return;
    bool dropped = false;
    for (const Entry& e : entries()) {
        if ((e.kind != Kind::PgLink && e.kind != Kind::PdoPgsql) || in_use(e)) continue;
        struct pollfd p {
            PQsocket(pg_of(e)), POLLIN | POLLRDHUP, 0
        };
        if (p.fd >= 0 && poll(&p, 1, 0) == 0 && PQstatus(pg_of(e)) == CONNECTION_OK) continue;
        drop(e);
        count(&PoolBoard::reconnects);
        dropped = true;
    }
    if (dropped) reconcile_caps(alive_handles()); // their tokens serve the reconnects
}

void script_done(const char* script) {
    if (!installed) return;
    last_script = script && *script ? script : "a script";
    for (const Entry& e : entries()) {
        bool open = (e.kind == Kind::PgLink || e.kind == Kind::PdoPgsql)
                        ? pg_in_transaction(pg_of(e))
                    : e.kind == Kind::PdoMysql ? mysql_in_transaction(mysql_of(e))
                                               : false;
        if (open) warn_open(e.kind);
    }
}

void give_back_idle() {
    if (installed) reconcile_caps(alive_handles());
}

void request_done(bool every) {
    if (!installed) return;
    forget_request_handles();
    uint32_t kept = 0;
    for (const Entry& e : entries()) {
        if (e.kind == Kind::Mysqli) {
            kept += tidy_mysqli_links(e);
            continue;
        }
        ++kept;
        bool touched = every || in_use(e) || used.count(e.res->ptr) ||
                       (e.kind == Kind::PgLink && every_pg_link_used);
        if (!touched) continue; // not taken by this request: still clean
        if (!reset(e)) {
            --kept;
            drop(e);
            count(&PoolBoard::reconnects);
            continue;
        }
        count(&PoolBoard::resets);
        if (e.kind == Kind::PdoPgsql || e.kind == Kind::PdoMysql) {
            dbh_of(e)->in_txn = false; // rolled back above
            if (in_use(e))
                restore_configured_attributes(dbh_of(e));
            else
                reset_pdo_attributes(dbh_of(e), e.kind);
        }
    }
    if (every) reset_held_mysqli_links();
    used.clear();
    every_pg_link_used = false;
    reconcile_caps(alive_handles());
    if (the_state.slot) the_state.slot->kept_connections.store(kept);
}

void close_all() {
    if (!installed) return;
    for (const Entry& e : entries()) {
        if (e.kind != Kind::Mysqli) {
            if (!in_use(e)) drop(e);
            continue;
        }
        // mysqli's entry stays: a link an object holds goes back to it.
        auto* plist = static_cast<mysqli_plist_entry*>(e.res->ptr);
        while (plist && zend_ptr_stack_num_elements(&plist->free_links) > 0)
            close_free_link(static_cast<MYSQLND*>(zend_ptr_stack_pop(&plist->free_links)));
    }
    reconcile_caps(alive_handles());
    if (the_state.slot) the_state.slot->kept_connections.store(0);
}

} // namespace lowphp::reuse
