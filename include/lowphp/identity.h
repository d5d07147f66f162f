// Who a pool's workers become: php-fpm's fpm_unix_conf_wp, resolved once in
// the master from the pool's user and group, and applied in each worker
// (fpm_unix_init_child; worker/worker.cpp's apply_identity). One resolution serves the start-up
// checks, the pool's session directory and the worker, so they cannot disagree.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include "lowphp/config.h"

namespace lowphp::pool {

struct Identity {
    uid_t uid = 0;           // setuid to it; 0: the uid stays
    gid_t gid = 0;           // setgid to it; 0: the gid stays
    std::string groups_user; // initgroups(groups_user, gid) before setuid
    // USER and HOME in the workers' environment; empty: left as they are.
    std::string env_user, env_home;
    // php-fpm refuses such a pool without -R: an unset uid or gid is root's.
    bool runs_as_root() const { return uid == 0 || gid == 0; }
};

// As root: the pool's `user` (a name, or digits: a uid, with its passwd
// entry's gid when there is one) and `group` (a name, or digits) looked up.
// Not root: user and group are not used, and USER / HOME are the running
// user's. False with php-fpm's message in `error` for an unknown name.
bool resolve_identity(const config::PoolConfig& pool, bool root, Identity& out, std::string& error);

// Every pool's listen.owner / listen.group, user and group looked up, as
// php-fpm's start-up (fpm_unix_resolve_socket_premissions, fpm_unix_conf_wp)
// and -t (`test`: names looked up even when not root, root pools allowed) do;
// the first failure is logged in php-fpm's words and ends the check. Not root,
// `notices` says that user and group are ignored. `identities` gets one per
// pool. Used at start-up and before a reload.
bool check_identities(const config::Config& cfg, bool root_allowed, bool test, bool notices,
                      std::vector<Identity>& identities);

} // namespace lowphp::pool
