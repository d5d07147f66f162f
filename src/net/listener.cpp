// Listening sockets, created by the master before any pool process starts.
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <vector>

#include "lowphp/log.h"
#include "lowphp/net.h"
#include "lowphp/word_list.h"

namespace lowphp::net {

bool parse_listen(const std::string& listen, Address& out, std::string& error) {
    out = Address{};
    if (listen.empty()) {
        error = "no listen address";
        return false;
    }
    if (listen[0] == '/' || listen.find(':') == std::string::npos) {
        bool digits = listen.find_first_not_of("0123456789") == std::string::npos;
        if (!digits) {
            out.is_unix = true;
            out.path = listen;
            return true;
        }
        out.port = listen; // port alone: every address
        if (listen.size() > 5 || atoi(listen.c_str()) < 1 || atoi(listen.c_str()) > 65535) {
            error = "invalid port value '" + listen + "'";
            return false;
        }
        return true;
    }
    size_t colon = listen.rfind(':');
    out.host = listen.substr(0, colon);
    out.port = listen.substr(colon + 1);
    if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']')
        out.host = out.host.substr(1, out.host.size() - 2);
    if (out.host == "*") out.host.clear();
    if (out.port.empty() || out.port.find_first_not_of("0123456789") != std::string::npos ||
        out.port.size() > 5 || atoi(out.port.c_str()) < 1 || atoi(out.port.c_str()) > 65535) {
        error = "invalid port value '" + out.port + "'";
        return false;
    }
    return true;
}

namespace {

// Resolve listen.owner / listen.group (php-fpm: fpm_unix_resolve_socket_premissions).
bool socket_owner(const config::PoolConfig& pool, uid_t& uid, gid_t& gid) {
    uid = static_cast<uid_t>(-1);
    gid = static_cast<gid_t>(-1);
    if (config::is_numeric_id(pool.listen_owner)) {
        uid = static_cast<uid_t>(strtoul(pool.listen_owner.c_str(), nullptr, 10));
    } else if (!pool.listen_owner.empty()) {
        errno = 0;
        struct passwd* pw = getpwnam(pool.listen_owner.c_str());
        if (!pw) {
            ZLOG_SYSERROR("[pool %s] cannot get uid for user '%s'", pool.name.c_str(),
                          pool.listen_owner.c_str());
            return false;
        }
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    if (config::is_numeric_id(pool.listen_group)) {
        gid = static_cast<gid_t>(strtoul(pool.listen_group.c_str(), nullptr, 10));
    } else if (!pool.listen_group.empty()) {
        errno = 0;
        struct group* gr = getgrnam(pool.listen_group.c_str());
        if (!gr) {
            ZLOG_SYSERROR("[pool %s] cannot get gid for group '%s'", pool.name.c_str(),
                          pool.listen_group.c_str());
            return false;
        }
        gid = gr->gr_gid;
    }
    return true;
}

// listen.acl_users / listen.acl_groups: a POSIX access ACL giving each named
// user/group read+write, written as the kernel's system.posix_acl_access xattr
// (the layout libacl writes), so no extra library is needed.
bool set_socket_acl(const config::PoolConfig& pool, const std::string& path, mode_t mode) {
    struct Entry {
        uint16_t tag, perm;
        uint32_t id;
    };
    constexpr uint16_t kUserObj = 0x01, kUser = 0x02, kGroupObj = 0x04, kGroup = 0x08, kMask = 0x10,
                       kOther = 0x20;
    constexpr uint32_t kUndefined = 0xffffffffu;
    std::vector<Entry> entries = {{kUserObj, static_cast<uint16_t>((mode >> 6) & 7), kUndefined}};
    for (const auto& name : split_words(pool.listen_acl_users)) {
        errno = 0; // not found leaves it 0: php-fpm's line then ends "Success (0)"
        struct passwd* pw = getpwnam(name.c_str());
        if (!pw) {
            ZLOG_SYSERROR("[pool %s] cannot get uid for user '%s'", pool.name.c_str(),
                          name.c_str());
            return false;
        }
        entries.push_back({kUser, 6, pw->pw_uid});
    }
    entries.push_back({kGroupObj, static_cast<uint16_t>((mode >> 3) & 7), kUndefined});
    for (const auto& name : split_words(pool.listen_acl_groups)) {
        errno = 0;
        struct group* gr = getgrnam(name.c_str());
        if (!gr) {
            ZLOG_SYSERROR("[pool %s] cannot get gid for group '%s'", pool.name.c_str(),
                          name.c_str());
            return false;
        }
        entries.push_back({kGroup, 6, gr->gr_gid});
    }
    entries.push_back({kMask, 6, kUndefined});
    entries.push_back({kOther, static_cast<uint16_t>(mode & 7), kUndefined});
    std::string blob(4, '\0');
    blob[0] = 2; // POSIX_ACL_XATTR_VERSION, little endian
    for (const Entry& e : entries)
        blob.append(reinterpret_cast<const char*>(&e), sizeof e);
    if (setxattr(path.c_str(), "system.posix_acl_access", blob.data(), blob.size(), 0) < 0) {
        ZLOG_SYSERROR("[pool %s] failed to write ACL", pool.name.c_str());
        return false;
    }
    return true;
}

UniqueFd bind_unix(const config::PoolConfig& pool, const Address& a) {
    struct sockaddr_un sun {};
    sun.sun_family = AF_UNIX;
    if (a.path.size() >= sizeof sun.sun_path) {
        ZLOG_ERROR("[pool %s] cannot bind to UNIX socket '%s' as path is too long (found length: "
                   "%zu, maximal length: %zu)",
                   pool.name.c_str(), a.path.c_str(), a.path.size(), sizeof sun.sun_path - 1);
        return {};
    }
    memcpy(sun.sun_path, a.path.c_str(), a.path.size() + 1);
    uid_t uid;
    gid_t gid;
    if (!socket_owner(pool, uid, gid)) return {};
    mode_t mode = pool.listen_mode.empty() ? 0660 : strtoul(pool.listen_mode.c_str(), nullptr, 8);
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        ZLOG_SYSERROR("failed to create new listening socket: socket()");
        return {};
    }
    // A socket file someone still listens on belongs to a running server: refuse,
    // as php-fpm does; a stale one (nobody answers) is replaced.
    {
        UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (probe && connect(probe.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0) {
            ZLOG_ERROR("Another FPM instance seems to already listen on %s", a.path.c_str());
            return {};
        }
    }
    unlink(a.path.c_str());
    // The mode is right from the first instant: no window where others can connect.
    mode_t saved = umask(0777 ^ mode);
    int rc = bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun);
    umask(saved);
    if (rc < 0) {
        ZLOG_SYSERROR("unable to bind listening socket for address '%s'", a.path.c_str());
        return {};
    }
    if (!pool.listen_acl_users.empty() || !pool.listen_acl_groups.empty()) {
        // php-fpm: with ACLs, listen.owner / listen.group are not applied.
        if (!pool.listen_owner.empty())
            ZLOG_WARNING("[pool %s] ACL set, listen.owner = '%s' is ignored", pool.name.c_str(),
                         pool.listen_owner.c_str());
        if (!pool.listen_group.empty())
            ZLOG_WARNING("[pool %s] ACL set, listen.group = '%s' is ignored", pool.name.c_str(),
                         pool.listen_group.c_str());
        if (!set_socket_acl(pool, a.path, mode)) return {};
        return fd;
    }
    if ((uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1)) &&
        chown(a.path.c_str(), uid, gid) < 0) {
        ZLOG_SYSERROR("failed to chown() the socket '%s'", a.path.c_str());
        return {};
    }
    return fd;
}

UniqueFd bind_inet(const sockaddr* sa, socklen_t len, const std::string& shown, bool v6_any,
                   bool quiet = false) {
    UniqueFd fd(socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return {};
    int one = 1, zero = 0;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (v6_any) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd.get(), sa, len) < 0) {
        if (!quiet)
            ZLOG_SYSERROR("unable to bind listening socket for address '%s'", shown.c_str());
        return {};
    }
    return fd;
}

UniqueFd bind_tcp(const config::PoolConfig& pool, const Address& a) {
    if (a.host.empty()) {
        // Port alone: all IPv6 and IPv4-mapped addresses, IPv4 when IPv6 is absent.
        struct sockaddr_in6 s6 {};
        s6.sin6_family = AF_INET6;
        s6.sin6_addr = in6addr_any;
        s6.sin6_port = htons(static_cast<uint16_t>(atoi(a.port.c_str())));
        // php-fpm tries [::] silently, then says so and takes 0.0.0.0.
        UniqueFd fd =
            bind_inet(reinterpret_cast<sockaddr*>(&s6), sizeof s6, pool.listen, true, true);
        if (fd) return fd;
        ZLOG_NOTICE("Failed implicitly binding to ::, retrying with 0.0.0.0");
        struct sockaddr_in s4 {};
        s4.sin_family = AF_INET;
        s4.sin_addr.s_addr = htonl(INADDR_ANY);
        s4.sin_port = s6.sin6_port;
        return bind_inet(reinterpret_cast<sockaddr*>(&s4), sizeof s4, pool.listen, false);
    }
    struct addrinfo hints {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo* res = nullptr;
    int rc = getaddrinfo(a.host.c_str(), a.port.c_str(), &hints, &res);
    if (rc != 0) {
        ZLOG_ERROR("getaddrinfo: %s", gai_strerror(rc));
        return {};
    }
    UniqueFd fd;
    for (struct addrinfo* p = res; p && !fd; p = p->ai_next)
        fd = bind_inet(p->ai_addr, p->ai_addrlen, pool.listen, false);
    freeaddrinfo(res);
    return fd;
}

} // namespace

Listener open_listener(const config::PoolConfig& pool) {
    Listener l;
    l.pool = pool.name;
    std::string error;
    if (!parse_listen(pool.listen, l.address, error)) {
        if (error.rfind("invalid port value", 0) == 0)
            ZLOG_ERROR("%s", error.c_str()); // php-fpm's wording
        else
            ZLOG_ERROR("[pool %s] %s", pool.name.c_str(), error.c_str());
        return l;
    }
    UniqueFd fd = l.address.is_unix ? bind_unix(pool, l.address) : bind_tcp(pool, l.address);
    if (!fd) return l;
    if (listen(fd.get(), pool.listen_backlog) < 0) {
        ZLOG_SYSERROR("failed to listen to address '%s'", pool.listen.c_str());
        return l;
    }
    l.fd = std::move(fd);
    return l;
}

void remove_socket_file(const Listener& l) {
    // Only a socket we bound: a failed start must not delete a running server's.
    if (l.fd && l.address.is_unix && !l.address.path.empty()) unlink(l.address.path.c_str());
}

AllowedClients::AllowedClients(const std::string& list) {
    size_t pos = 0;
    while (pos <= list.size()) {
        size_t end = list.find(',', pos);
        if (end == std::string::npos) end = list.size();
        std::string item = list.substr(pos, end - pos);
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        unsigned char buf[16];
        if (!item.empty() && inet_pton(AF_INET, item.c_str(), buf) == 1)
            v4_.emplace_back(reinterpret_cast<char*>(buf), 4);
        else if (!item.empty() && inet_pton(AF_INET6, item.c_str(), buf) == 1)
            v6_.emplace_back(reinterpret_cast<char*>(buf), 16);
        else if (!item.empty())
            ZLOG_ERROR("Wrong IP address '%s' in listen.allowed_clients", item.c_str());
        pos = end + 1;
    }
    // A list with no valid address refuses everyone: treating it as empty
    // would open the pool to all (php's fcgi_set_allowed_clients).
    if (list.find_first_not_of(" \t,") != std::string::npos && v4_.empty() && v6_.empty()) {
        ZLOG_ERROR("There are no allowed addresses");
        deny_all_ = true;
    }
}

bool AllowedClients::allows(const sockaddr* sa) const {
    if (deny_all_) return sa->sa_family == AF_UNIX;
    if (empty()) return true;
    if (sa->sa_family == AF_UNIX) return true;
    if (sa->sa_family == AF_INET) {
        auto* s4 = reinterpret_cast<const sockaddr_in*>(sa);
        std::string a(reinterpret_cast<const char*>(&s4->sin_addr), 4);
        for (const auto& v : v4_)
            if (v == a) return true;
        return false;
    }
    auto* s6 = reinterpret_cast<const sockaddr_in6*>(sa);
    std::string a(reinterpret_cast<const char*>(&s6->sin6_addr), 16);
    for (const auto& v : v6_)
        if (v == a) return true;
    // An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
        std::string tail = a.substr(12);
        for (const auto& v : v4_)
            if (v == tail) return true;
    }
    return false;
}

std::string AllowedClients::to_string(const sockaddr* sa) {
    char buf[INET6_ADDRSTRLEN] = "";
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
        return buf;
    }
    if (sa->sa_family != AF_INET6) return buf;
    // php-fpm names an IPv4 client of a dual-stack socket by its IPv4 form.
    const in6_addr& a6 = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a6))
        inet_ntop(AF_INET, &a6.s6_addr[12], buf, sizeof buf);
    else
        inet_ntop(AF_INET6, &a6, buf, sizeof buf);
    return buf;
}

} // namespace lowphp::net
