// connections.reuse under a declared backend's cap: a kept connection whose
// host, port, database and user are those of a pgsql[] or mysql[] backend of
// the pool holds one of that backend's connections.max tokens for as long as
// the worker keeps it (the LowPHP\ API's connections count against the same
// tokens). A connect that would open one more waits up to
// connections.wait_timeout, nudging idle holders to give theirs back; an idle
// worker that is nudged closes a kept connection. Connections to anything
// else are capped by the worker count alone (one per worker and key).
#include <algorithm>
#include <functional>
#include <libpq-fe.h>
#include <unistd.h>
#include <unordered_map>

#include "internal.h"
#include "lowphp/backend_board.h"
#include "lowphp/backends.h"
#include "lowphp/log.h"
#include "lowphp/scoreboard.h"

namespace lowphp::reuse {
namespace {

struct Held {
    int backend;
    int token;
    std::string key;
};

struct Caps {
    const config::PoolConfig* pool = nullptr;
    BackendTable* const* tables = nullptr;
    int nudge_fd = -1;
    pid_t pid = 0;
    std::unordered_map<const void*, Held> held; // kept connection -> its token
    std::vector<Target> declared;               // the pool's backends, as targets
    // A connect key's declared backend (-1: none): its target is parsed once.
    std::unordered_map<std::string, int> backend_of;
} caps;

// Keys are the app's connect arguments; an app that builds a new DSN for
// every request would otherwise grow this for the worker's life.
constexpr size_t kMaxKnownKeys = 256;

std::string word(const std::vector<std::pair<std::string, std::string>>& words,
                 const std::string& key) {
    for (const auto& [k, v] : words)
        if (k == key) return v;
    return "";
}

// Defaults filled in, so that "port unset" and "port 5432" are one target.
Target normalized(Target t) {
    bool pg = t.kind == config::BackendKind::Pgsql;
    if (t.port.empty()) t.port = pg ? "5432" : "3306";
    if (t.host.empty()) t.host = pg ? "" : "localhost";
    if (t.dbname.empty() && pg) t.dbname = t.user;
    return t;
}

Target declared_target(const config::BackendConfig& b) {
    Target t;
    t.kind = b.kind;
    if (b.kind == config::BackendKind::Pgsql) return pgsql_target(b.dsn, "");
    t.host = b.option("host");
    t.port = b.option("port");
    t.dbname = b.option("dbname");
    t.user = b.option("user");
    return normalized(t);
}

bool same(const Target& a, const Target& b) {
    return a.kind == b.kind && a.host == b.host && a.port == b.port && a.dbname == b.dbname &&
           a.user == b.user;
}

// An idle kept connection of this worker to `backend` (none: nullptr).
const void* idle_holder(int backend) {
    for (const auto& [handle, h] : caps.held)
        if (h.backend == backend && !used_this_request(handle)) return handle;
    return nullptr;
}

void give_back(const void* handle, bool for_waiter) {
    auto it = caps.held.find(handle);
    if (it == caps.held.end()) return;
    if (it->second.token >= 0)
        tokens::release(*caps.tables[it->second.backend], it->second.token, for_waiter);
    caps.held.erase(it);
}

} // namespace

Target pgsql_target(const std::string& conninfo, const std::string& user) {
    Target t;
    t.kind = config::BackendKind::Pgsql;
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
    PQfreemem(err);
    for (PQconninfoOption* o = opts; o && o->keyword; ++o) {
        if (!o->val) continue;
        std::string k = o->keyword;
        if (k == "host") t.host = o->val;
        if (k == "port") t.port = o->val;
        if (k == "dbname") t.dbname = o->val;
        if (k == "user") t.user = o->val;
    }
    PQconninfoFree(opts);
    if (!user.empty()) t.user = user;
    return normalized(t);
}

Target pdo_target(const std::string& dsn, const std::string& user) {
    if (dsn.rfind("pgsql:", 0) == 0) {
        std::string conninfo = dsn.substr(6);
        for (char& c : conninfo)
            if (c == ';') c = ' '; // as pdo_pgsql hands it to libpq
        return pgsql_target(conninfo, user);
    }
    Target t;
    t.kind = config::BackendKind::Mysql;
    std::vector<std::pair<std::string, std::string>> words;
    std::string rest = dsn.substr(dsn.find(':') + 1);
    for (size_t at = 0; at <= rest.size();) {
        size_t end = rest.find(';', at);
        if (end == std::string::npos) end = rest.size();
        std::string part = rest.substr(at, end - at);
        size_t eq = part.find('=');
        if (eq != std::string::npos) words.emplace_back(part.substr(0, eq), part.substr(eq + 1));
        at = end + 1;
    }
    t.host = word(words, "host");
    t.port = word(words, "port");
    t.dbname = word(words, "dbname");
    t.user = user;
    return normalized(t);
}

Target mysqli_target(const std::string& host, const std::string& user, const std::string& db,
                     const std::string& port) {
    Target t;
    t.kind = config::BackendKind::Mysql;
    t.host = host.rfind("p:", 0) == 0 ? host.substr(2) : host;
    t.user = user;
    t.dbname = db;
    t.port = port == "0" ? "" : port;
    return normalized(t);
}

void init_caps(const config::PoolConfig& pool, BackendTable* const* tables, int nudge_fd) {
    caps.pool = &pool;
    caps.tables = tables;
    caps.nudge_fd = nudge_fd;
    caps.pid = getpid();
    caps.declared.clear();
    caps.backend_of.clear();
    for (const auto& b : pool.backends)
        caps.declared.push_back(declared_target(b));
}

// The declared backend a connect goes to (-1: none).
int backend_for(const std::string& key, const std::function<Target()>& target) {
    if (auto it = caps.backend_of.find(key); it != caps.backend_of.end()) return it->second;
    if (caps.backend_of.size() >= kMaxKnownKeys) caps.backend_of.clear();
    Target t = target(); // pgsql_target & co. fill in the defaults already
    int backend = -1;
    for (size_t i = 0; i < caps.declared.size(); ++i)
        if (same(t, caps.declared[i])) backend = static_cast<int>(i);
    caps.backend_of.emplace(key, backend);
    return backend;
}

Admission admit(const std::function<Target()>& target, const std::string& key, bool shared) {
    Admission a;
    if (!caps.tables) return a;
    a.backend = backend_for(key, target);
    if (a.backend < 0) return a;
    for (const auto& [handle, h] : caps.held)
        if (h.key == key && (shared || !used_this_request(handle))) return a; // a kept one is taken
    BackendTable& table = *caps.tables[a.backend];
    a.token = tokens::try_acquire(table, caps.pid);
    if (a.token < 0) {
        // This worker's own idle connections to the backend go first: a
        // kept one, else the LowPHP\ API's (no other worker could wait them out).
        if (const void* mine = idle_holder(a.backend)) {
            drop_kept(mine);
            give_back(mine, false);
        } else {
            backends::release_idle(static_cast<size_t>(a.backend));
        }
        a.token = tokens::try_acquire(table, caps.pid);
    }
    if (a.token < 0) {
        int wait_ms = caps.pool->connections_wait_timeout_ms;
        table.waits.fetch_add(1);
        uint64_t start = mono_us();
        a.token = tokens::acquire(table, caps.pid, caps.nudge_fd,
                                  start + static_cast<uint64_t>(wait_ms) * 1000);
        table.wait_us.fetch_add(mono_us() - start);
        if (a.token < 0) {
            table.errors.fetch_add(1);
            a.refused = "no connection to " + caps.pool->backends[a.backend].name + " within " +
                        std::to_string(wait_ms) + " ms, connections.max = " +
                        std::to_string(caps.pool->backends[a.backend].max);
        }
    }
    return a;
}

void admitted(const Admission& a, const void* handle, const std::string& key, bool kept) {
    if (a.backend < 0) return;
    bool known = handle && caps.held.count(handle);
    if (!handle || !kept || known) {
        // Failed, not kept, or a kept one taken again: the token is not needed.
        if (a.token >= 0) tokens::release(*caps.tables[a.backend], a.token);
        return;
    }
    int token = a.token >= 0 ? a.token : tokens::try_acquire(*caps.tables[a.backend], caps.pid);
    caps.held[handle] = {a.backend, token, key};
}

void reconcile_caps(const std::vector<const void*>& alive) {
    if (!caps.tables) return;
    std::vector<const void*> gone;
    for (const auto& [handle, h] : caps.held)
        if (std::find(alive.begin(), alive.end(), handle) == alive.end()) gone.push_back(handle);
    for (const void* handle : gone)
        give_back(handle, false);
    give_idle_to_waiters(); // workers may wait for a backend this one keeps a connection to
}

void give_idle_to_waiters() {
    if (!caps.tables) return;
    for (size_t i = 0; i < caps.pool->backends.size(); ++i) {
        const void* mine = idle_holder(static_cast<int>(i));
        if (!mine || !tokens::claim_give_back(*caps.tables[i])) continue;
        drop_kept(mine);
        give_back(mine, true);
    }
}

} // namespace lowphp::reuse
