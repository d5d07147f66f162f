// What a reloading master hands to its next image across execv: the listening
// sockets by address, the parked kept-alive connections and each pool's
// kept-connection channels by pool, and the children still running. One
// record in the environment, a line per item ("socket FD ADDRESS", "parked FD
// POOL", "channels RX,TX,RX,TX POOL", "retiring PID,STARTED,OUT,ERR,ZYGOTE
// POOL"); the descriptors themselves stay open across execv.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "lowphp/generation.h"

namespace lowphp::master {

struct Handover {
    // listen address and fd, in the pools' order (php-fpm logs them so)
    std::vector<std::pair<std::string, int>> sockets;
    std::multimap<std::string, int> parked; // pool name -> fd
    std::map<std::string, pool::Channels> channels;
    std::vector<pool::RetiringChild> retiring;
    int backends_fd = -1;  // the backend board's memfd (connections.max[] tokens)
    bool reloaded = false; // a previous image left the record

    // Leaves the record in the environment for the next image (the caller
    // clears FD_CLOEXEC on the descriptors).
    void put() const;
    // Takes the record the previous image left (empty at a first start) and
    // removes it from the environment, so no child inherits it.
    static Handover take();
};

} // namespace lowphp::master
