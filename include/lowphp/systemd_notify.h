// systemd's service notification protocol (sd_notify(3)) without libsystemd:
// each message is one datagram of "KEY=value" lines sent to the AF_UNIX socket
// named by $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace).
// Without $NOTIFY_SOCKET every call does nothing.
#pragma once

#include <cstdint>
#include <string>

namespace lowphp {
class Scoreboard;
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

// The STATUS= heartbeat's state (php-fpm's systemd_interval, or half of
// systemd's WATCHDOG_USEC with WATCHDOG=1), kept by the master, whose event
// loop runs the heartbeat.
struct Heartbeat {
    bool watchdog = false;
    uint64_t interval_us = 0;
    uint64_t last_requests = 0;
};

// The master's notifications. ready(): READY=1 and MAINPID; true when a
// heartbeat is due every `hb.interval_us`. report_status(): one heartbeat,
// php-fpm's STATUS= line (`active` and `idle` workers of every pool, the
// requests counted by `board`). stopping(): RELOADING=1 or STOPPING=1 (the master
// has ended its heartbeat).
bool ready(Scoreboard& board, int systemd_interval_s, Heartbeat& hb);
void report_status(Scoreboard& board, int active, int idle, Heartbeat& hb);
void stopping(bool reloading);

} // namespace lowphp::systemd_notify
