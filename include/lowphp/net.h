// Listening sockets as php-fpm creates them (fpm_sockets.c / fpm_unix.c): unix
// sockets with owner/group/mode/ACLs, TCP on addr:port, port alone, [::]:port,
// and the listen.allowed_clients filter applied to accepted connections.
#pragma once

#include <string>
#include <sys/socket.h>
#include <vector>

#include "lowphp/config.h"
#include "lowphp/unique_fd.h"

namespace lowphp::net {

struct Address {
    bool is_unix = false;
    std::string path; // unix socket path
    std::string host; // "" = every address (port alone)
    std::string port;
};

// Parse a `listen` value. Returns false with `error` worded as php-fpm does.
bool parse_listen(const std::string& listen, Address& out, std::string& error);

// A bound, listening socket owned by the master and inherited by workers.
struct Listener {
    UniqueFd fd;
    Address address;
    std::string pool;
};

// Create the socket for a pool: bind, listen(backlog), permissions. Errors are
// logged with php-fpm's wording; returns an empty fd on failure.
Listener open_listener(const config::PoolConfig& pool);

// Remove the socket file of a unix listener (at stop).
void remove_socket_file(const Listener& l);

// listen.allowed_clients: a comma-separated list of IPv4/IPv6 addresses.
class AllowedClients {
  public:
    explicit AllowedClients(const std::string& list);
    bool empty() const { return v4_.empty() && v6_.empty() && !deny_all_; }
    bool allows(const sockaddr* sa) const;
    static std::string to_string(const sockaddr* sa);

  private:
    std::vector<std::string> v4_; // 4-byte binary strings
    std::vector<std::string> v6_; // 16-byte binary strings
    bool deny_all_ = false;       // listed, but nothing valid
};

} // namespace lowphp::net
