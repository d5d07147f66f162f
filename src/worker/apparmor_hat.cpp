// php-fpm's fpm_unix_init_child calls libapparmor's aa_getcon and
// aa_change_profile; both are a read and a write of the task's attr/current,
// which is all this does (no library for two system calls).
#include "apparmor_hat.h"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

#include "lowphp/apparmor.h"
#include "lowphp/log.h"
#include "lowphp/unique_fd.h"

namespace lowphp::worker {
namespace {

// AppArmor's own file when the kernel stacks several security modules, else
// the shared one, as libapparmor looks; the calling thread's (a worker has
// no other thread yet, and the ones it starts later inherit the hat).
UniqueFd open_attr(int flags) {
    UniqueFd fd(open("/proc/thread-self/attr/apparmor/current", flags | O_CLOEXEC));
    if (!fd) fd.reset(open("/proc/thread-self/attr/current", flags | O_CLOEXEC));
    return fd;
}

bool read_confinement(std::string& name) {
    UniqueFd fd = open_attr(O_RDONLY);
    if (!fd) return false;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd.get(), buf, sizeof buf)) < 0 && errno == EINTR) {
    }
    if (n <= 0) {
        if (n == 0) errno = EINVAL;
        return false;
    }
    name = apparmor::confinement_name(std::string(buf, static_cast<size_t>(n)));
    return !name.empty();
}

} // namespace

bool change_apparmor_hat(const config::PoolConfig& pool) {
    if (pool.apparmor_hat.empty()) return true;
    std::string current;
    if (!read_confinement(current)) {
        ZLOG_SYSERROR("[pool %s] failed to query apparmor confinement. Please check if "
                      "\"/proc/*/attr/current\" is read and writeable.",
                      pool.name.c_str());
        return false;
    }
    std::string command = apparmor::change_hat_command(current, pool.apparmor_hat);
    UniqueFd fd = open_attr(O_WRONLY);
    ssize_t n = -1;
    if (fd)
        while ((n = write(fd.get(), command.data(), command.size())) < 0 && errno == EINTR) {
        }
    if (n != static_cast<ssize_t>(command.size())) {
        ZLOG_SYSERROR("[pool %s] failed to change to new confinement (%s). Please check if "
                      "\"/proc/*/attr/current\" is read and writeable and \"change_profile -> "
                      "%s//*\" is allowed.",
                      pool.name.c_str(), (current + "//" + pool.apparmor_hat).c_str(),
                      current.c_str());
        return false;
    }
    return true;
}

} // namespace lowphp::worker
