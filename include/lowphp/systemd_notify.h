// systemd's service notification protocol (sd_notify(3)) without libsystemd:
// each message is one datagram of "KEY=value" lines sent to the AF_UNIX socket
// named by $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace).
// Without $NOTIFY_SOCKET every call does nothing.
#pragma once

#include <cstdint>
#include <string>

namespace lowphp::master {
class Master;
}

namespace lowphp::systemd_notify {

// True when $NOTIFY_SOCKET names a socket to notify.
bool enabled();

// Sends `state` (e.g. "READY=1\nSTATUS=..."). Returns false with errno set
// when the datagram could not be sent; true when sent or when not enabled.
bool send(const std::string& state);

// Microseconds between two heartbeats: half of $WATCHDOG_USEC when systemd
// runs a watchdog for this process (WATCHDOG_PID unset or ours), else
// `systemd_interval_s` seconds (0: no heartbeat).
uint64_t heartbeat_interval_us(int systemd_interval_s, bool& watchdog);

// The master's notifications. ready(): READY=1, MAINPID and the start of the
// periodic STATUS= (and WATCHDOG=1) heartbeat on the master's event loop.
// stopping(): RELOADING=1 or STOPPING=1, and the heartbeat ends (call it
// before the event loop's base goes away).
void ready(master::Master& m, int systemd_interval_s);
void stopping(bool reloading);

} // namespace lowphp::systemd_notify
