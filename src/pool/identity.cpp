// A pool's user and group, looked up once (see identity.h). Checked against
// php8.2-fpm by tests/compat/test_compat_identity.py.
#include <cerrno>
#include <cstdlib>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "lowphp/identity.h"
#include "lowphp/log.h"

namespace lowphp::pool {
namespace {

void running_user(Identity& out) {
    if (const struct passwd* pw = getpwuid(getuid())) {
        out.env_user = pw->pw_name;
        out.env_home = pw->pw_dir;
    }
}

bool resolve_user(const std::string& user, Identity& out) {
    if (config::is_numeric_id(user)) {
        // A uid: its entry gives the gid and the name for initgroups, but not
        // USER and HOME (php-fpm sets those for a name only).
        out.uid = static_cast<uid_t>(strtoul(user.c_str(), nullptr, 10));
        const struct passwd* pw = getpwuid(out.uid);
        out.gid = pw ? pw->pw_gid : 0;
        out.groups_user = pw ? pw->pw_name : user;
        return true;
    }
    const struct passwd* pw = getpwnam(user.c_str());
    if (!pw) return false;
    out.uid = pw->pw_uid;
    out.gid = pw->pw_gid;
    out.groups_user = out.env_user = pw->pw_name;
    out.env_home = pw->pw_dir;
    return true;
}

} // namespace

bool resolve_identity(const config::PoolConfig& pool, bool root, Identity& out,
                      std::string& error) {
    out = Identity{};
    if (!root) {
        running_user(out);
        return true;
    }
    if (!pool.user.empty() && !resolve_user(pool.user, out)) {
        error = "cannot get uid for user '" + pool.user + "'";
        return false;
    }
    if (config::is_numeric_id(pool.group)) {
        out.gid = static_cast<gid_t>(strtoul(pool.group.c_str(), nullptr, 10));
    } else if (!pool.group.empty()) {
        const struct group* gr = getgrnam(pool.group.c_str());
        if (!gr) {
            error = "cannot get gid for group '" + pool.group + "'";
            return false;
        }
        out.gid = gr->gr_gid;
    }
    return true;
}

// fpm_unix_resolve_socket_premissions and fpm_unix_conf_wp: names are looked
// up at start-up and by -t (so a typo fails the test), digits are ids. Not
// root, php-fpm 8.2 ignores user and group at start-up (with a notice each),
// but -t still looks them up, silently: the test fails on a typo either way.
bool check_identities(const config::Config& cfg, bool root_allowed, bool test, bool notices,
                      std::vector<Identity>& identities) {
    bool root = getuid() == 0;
    using config::is_numeric_id;
    for (const auto& pool : cfg.pools) {
        const char* name = pool.name.c_str();
        errno = 0;
        if (!pool.listen_owner.empty() && !is_numeric_id(pool.listen_owner) &&
            !getpwnam(pool.listen_owner.c_str())) {
            ZLOG_SYSERROR("[pool %s] cannot get uid for user '%s'", name,
                          pool.listen_owner.c_str());
            return false;
        }
        errno = 0;
        if (!pool.listen_group.empty() && !is_numeric_id(pool.listen_group) &&
            !getgrnam(pool.listen_group.c_str())) {
            ZLOG_SYSERROR("[pool %s] cannot get gid for group '%s'", name,
                          pool.listen_group.c_str());
            return false;
        }
        if (!root && !test && notices) {
            if (!pool.user.empty())
                ZLOG_NOTICE("[pool %s] 'user' directive is ignored when FPM is not running as root",
                            name);
            if (!pool.group.empty())
                ZLOG_NOTICE(
                    "[pool %s] 'group' directive is ignored when FPM is not running as root", name);
        }
        Identity id;
        std::string error;
        // -t looks the names up even when not root: a typo fails the test.
        if (!resolve_identity(pool, root || test, id, error)) {
            ZLOG_ERROR("[pool %s] %s", name, error.c_str());
            return false;
        }
        // At start-up only (fpm_unix_conf_wp): -t passes such a pool.
        if (root && !root_allowed && id.runs_as_root()) {
            ZLOG_ERROR("[pool %s] please specify user and group other than root", name);
            return false;
        }
        identities.push_back(std::move(id));
    }
    return true;
}

} // namespace lowphp::pool
