// The per-pool default session directory (see include/lowphp/session_dir.h).
// Runs as root in the zygote, before any worker drops privileges: every step
// works on directory descriptors opened with O_NOFOLLOW so a symlink planted by
// a local user cannot redirect the chown.
#include "lowphp/session_dir.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lowphp/unique_fd.h"

namespace lowphp::session_dir {
namespace {

std::string sys_error(const std::string& what) {
    int e = errno;
    return what + ": " + strerror(e) + " (" + std::to_string(e) + ")";
}

// mkdir -p with 0711 for the components that do not exist yet.
std::string make_parents(const std::string& path) {
    for (size_t pos = 1; pos <= path.size(); ++pos) {
        if (pos != path.size() && path[pos] != '/') continue;
        std::string part = path.substr(0, pos);
        if (mkdir(part.c_str(), 0711) < 0 && errno != EEXIST)
            return sys_error("mkdir(" + part + ") failed");
    }
    return {};
}

} // namespace

std::string prepare(const std::string& base, const std::string& name, uid_t uid, gid_t gid) {
    if (base.empty() || base[0] != '/')
        return "session base directory '" + base + "' is not absolute";
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
        return "pool name '" + name + "' cannot be a directory name";
    if (std::string err = make_parents(base); !err.empty()) return err;
    UniqueFd base_fd(open(base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!base_fd) return sys_error("open(" + base + ") failed");
    struct stat st;
    if (fstat(base_fd.get(), &st) < 0) return sys_error("fstat(" + base + ") failed");
    if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
        return base + " must be owned by uid " + std::to_string(geteuid()) +
               " and not writable by group or others (refusing to use it)";
    std::string dir = base + "/" + name;
    if (mkdirat(base_fd.get(), name.c_str(), 0700) < 0 && errno != EEXIST)
        return sys_error("mkdir(" + dir + ") failed");
    UniqueFd fd(
        openat(base_fd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return sys_error("open(" + dir + ") failed");
    if (fstat(fd.get(), &st) < 0) return sys_error("fstat(" + dir + ") failed");
    if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd.get(), uid, gid) < 0)
        return sys_error("chown(" + dir + ", " + std::to_string(uid) + ", " + std::to_string(gid) +
                         ") failed");
    if ((st.st_mode & 07777) != 0700 && fchmod(fd.get(), 0700) < 0)
        return sys_error("chmod(" + dir + ", 0700) failed");
    return {};
}

} // namespace lowphp::session_dir
