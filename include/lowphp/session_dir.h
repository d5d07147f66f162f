// A pool's default session directory. When nothing configures session.save_path
// (no php.ini line, no -d, no php_value / php_admin_value), each pool stores its
// sessions in <base>/<pool name>, owned by the pool's user and group, mode 0700,
// so another pool can neither read nor plant its session files.
#pragma once

#include <string>
#include <sys/types.h>

namespace lowphp::session_dir {

// Under Debian's own session directory, so Debian's phpsessionclean timer (which
// searches save_path recursively) still expires the files.
inline constexpr const char* kDefaultBase = "/var/lib/php/sessions/lowphp";

// Creates `base` (missing components 0711, owned by the caller) and base/name,
// then gives base/name to uid:gid with mode 0700 (also when it already exists).
// `base` must end up a real directory (not a symlink) owned by the caller and not
// writable by group or others, else nothing is created. Returns "" on success,
// otherwise what failed, with the system error text.
std::string prepare(const std::string& base, const std::string& name, uid_t uid, gid_t gid);

} // namespace lowphp::session_dir
