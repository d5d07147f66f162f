// Backend declarations (lowphp addition): pgsql[NAME], mysql[NAME], redis[NAME],
// connections.max[NAME] and their checks. Pure: no connection is made here;
// libpq parses its own conninfo so -t rejects what the worker could not use.
#include <algorithm>
#include <cctype>
#include <libpq-fe.h>
#include <memory>
#include <set>

#include "internal.h"

namespace lowphp::config {

const char* backend_kind_name(BackendKind kind) {
    switch (kind) {
    case BackendKind::Pgsql:
        return "pgsql";
    case BackendKind::Mysql:
        return "mysql";
    case BackendKind::Redis:
        return "redis";
    }
    return "?";
}

std::string BackendConfig::option(const std::string& key, const std::string& fallback) const {
    for (const auto& [k, v] : options)
        if (k == key) return v;
    return fallback;
}

namespace {

bool is_space(char c) {
    return std::isspace(static_cast<unsigned char>(c)) != 0;
}

// One value after '=': bare up to whitespace, or single-quoted with \' and \\.
std::string read_value(const std::string& text, size_t& i, std::string& value) {
    if (i < text.size() && text[i] == '\'') {
        for (++i; i < text.size() && text[i] != '\''; ++i) {
            if (text[i] == '\\' && i + 1 < text.size()) ++i;
            value += text[i];
        }
        if (i >= text.size()) return "unterminated quoted string";
        ++i;
        return "";
    }
    for (; i < text.size() && !is_space(text[i]); ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) ++i;
        value += text[i];
    }
    return "";
}

} // namespace

std::string parse_dsn_words(const std::string& text,
                            std::vector<std::pair<std::string, std::string>>& out) {
    size_t i = 0;
    while (true) {
        while (i < text.size() && is_space(text[i]))
            ++i;
        if (i >= text.size()) return "";
        size_t start = i;
        while (i < text.size() && text[i] != '=' && !is_space(text[i]))
            ++i;
        std::string key = text.substr(start, i - start);
        while (i < text.size() && is_space(text[i]))
            ++i;
        if (i >= text.size() || text[i] != '=') return "missing \"=\" after \"" + key + "\"";
        ++i;
        while (i < text.size() && is_space(text[i]))
            ++i;
        std::string value;
        if (std::string err = read_value(text, i, value); !err.empty()) return err;
        out.emplace_back(key, value);
    }
}

std::string masked_dsn(const BackendConfig& backend) {
    const std::string& dsn = backend.dsn;
    if (size_t scheme = dsn.find("://"); scheme != std::string::npos) { // a libpq URI
        size_t at = dsn.find('@', scheme), colon = dsn.find(':', scheme + 3);
        if (at == std::string::npos || colon == std::string::npos || colon > at) return dsn;
        return dsn.substr(0, colon + 1) + "***" + dsn.substr(at);
    }
    std::vector<std::pair<std::string, std::string>> words;
    if (!parse_dsn_words(dsn, words).empty()) return dsn;
    std::string out;
    for (const auto& [k, v] : words) {
        if (!out.empty()) out += ' ';
        out += k + "=" + (k == "password" ? std::string("***") : v);
    }
    return out;
}

namespace {

const std::set<std::string>& allowed_keys(BackendKind kind) {
    static const std::set<std::string> mysql = {
        "host",         "port",   "socket",   "user",         "password",
        "password_env", "dbname", "charset",  "init_command", "connect_timeout",
        "ssl_mode",     "ssl_ca", "ssl_cert", "ssl_key"};
    static const std::set<std::string> redis = {"host",         "port",        "socket",
                                                "db",           "user",        "password",
                                                "password_env", "client_name", "connect_timeout"};
    return kind == BackendKind::Mysql ? mysql : redis;
}

// libpq's own parser: what it refuses, the worker could not connect with.
std::string check_conninfo(const std::string& dsn) {
    char* raw_err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &raw_err);
    std::unique_ptr<char, decltype(&PQfreemem)> err(raw_err, PQfreemem);
    if (!opts) {
        std::string why = err ? err.get() : "out of memory";
        while (!why.empty() && (why.back() == '\n' || why.back() == ' '))
            why.pop_back();
        return why;
    }
    std::string bad;
    for (PQconninfoOption* o = opts; o->keyword; ++o)
        if (o->val && std::string(o->keyword) == "replication")
            bad = "'replication' is not allowed";
    PQconninfoFree(opts);
    return bad;
}

bool valid_name(const std::string& name) {
    return !name.empty() && name.size() <= 32 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
}

} // namespace

std::string set_backend(PoolConfig& p, BackendKind kind, const std::string& name,
                        const std::string& value) {
    const char* kind_name = backend_kind_name(kind);
    std::string entry = std::string(kind_name) + "[" + name + "]";
    if (!valid_name(name))
        return "'" + entry + "': a backend name is 1 to 32 letters, digits or '_'";
    for (const auto& b : p.backends)
        if (b.name == name) return "'" + entry + "': the backend name '" + name + "' is taken";
    BackendConfig b;
    b.name = name;
    b.kind = kind;
    b.dsn = value;
    std::string err;
    if (kind == BackendKind::Pgsql) {
        err = check_conninfo(value);
    } else {
        err = parse_dsn_words(value, b.options);
        for (const auto& [k, v] : b.options)
            if (err.empty() && !allowed_keys(kind).count(k)) err = "unknown key '" + k + "'";
    }
    if (!err.empty()) return "unable to parse value for entry '" + entry + "': " + err;
    p.backends.push_back(std::move(b));
    return "";
}

std::string set_connections_max(PoolConfig& p, const std::string& name, const std::string& value) {
    char* end = nullptr;
    long n = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end || n < 1 || n > kMaxBackendConnections)
        return "unable to parse value for entry 'connections.max[" + name +
               "]': must be between 1 and " + std::to_string(kMaxBackendConnections);
    p.connections_max.emplace_back(name, static_cast<int>(n));
    return "";
}

std::string apply_connections_max(PoolConfig& p) {
    if (p.backends.size() > kMaxBackendsPerPool)
        return "at most " + std::to_string(kMaxBackendsPerPool) + " backends per pool";
    for (const auto& [name, n] : p.connections_max) {
        const std::string& wanted = name; // clang 14 cannot capture a structured binding
        auto it = std::find_if(p.backends.begin(), p.backends.end(),
                               [&](const BackendConfig& b) { return b.name == wanted; });
        if (it == p.backends.end())
            return "'connections.max[" + name + "]' names no pgsql[], mysql[] or redis[] backend";
        it->max = n;
    }
    for (auto& b : p.backends)
        if (b.max == 0) b.max = std::min(std::max(p.pm_max_children, 1), kMaxBackendConnections);
    return "";
}

} // namespace lowphp::config
