# Sourced by every script that installs packages: apt_get runs apt-get once no
# other apt or dpkg holds apt's locks, saying what it waits for. apt-get's own
# DPkg::Lock::Timeout covers dpkg's lock for `install` only (apt 2.6 fails
# `update` at once on the lists lock) and waits silently under -qq.
# Needs only bash, coreutils and awk (a fresh Debian has no python3 yet).
APT_LOCKS=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock)
APT_LOCK_WAIT=${APT_LOCK_WAIT:-900}  # seconds; then apt-get runs and reports the lock itself

# "PID (COMMAND) holds FILE" for the first of apt's locks another process holds.
apt_lock_holder() {
    local f ino pid
    for f in "${APT_LOCKS[@]}"; do
        [ -e "$f" ] || continue
        ino=$(stat -c %i "$f")
        # /proc/locks: "N: POSIX ADVISORY WRITE PID MAJ:MIN:INODE START END" (dpkg and apt use fcntl locks)
        pid=$(awk -v ino="$ino" '$2 != "->" { n = split($6, id, ":"); if (id[n] == ino) { print $5; exit } }' /proc/locks)
        if [ -n "$pid" ] && [ "$pid" != "$$" ]; then
            echo "$pid ($(cat "/proc/$pid/comm" 2>/dev/null || echo gone)) holds $f"
            return 0
        fi
    done
    return 1
}

apt_get() {
    local holder said="" waited=0
    while holder=$(apt_lock_holder) && [ "$waited" -lt "$APT_LOCK_WAIT" ]; do
        if [ "$holder" != "$said" ]; then
            echo "apt-get $1: waiting for another package manager: process $holder" >&2
            said=$holder
        fi
        sleep 1
        waited=$((waited + 1))
    done
    [ -z "$said" ] || echo "apt-get $1: the lock is free, going on" >&2
    ${SUDO:-} apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT" "$@"
}
