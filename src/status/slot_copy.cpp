// Reading and writing a scoreboard slot's request fields without a lock (the
// seqlock of WorkerSlot::seq), and php-fpm's names for the request stages.
#include <cstring>

#include "lowphp/scoreboard.h"

namespace lowphp {

const char* state_name(int state) {
    static const char* const names[] = {
        "Idle",    "Idle",   "Reading headers", "Getting request information",
        "Running", "Ending", "Finishing"};
    return state >= 0 && state < 7 ? names[state] : "Unknown";
}

void begin_slot_write(WorkerSlot& slot) {
    slot.seq.fetch_add(1, std::memory_order_acq_rel); // odd: being written
}

void end_slot_write(WorkerSlot& slot) {
    slot.seq.fetch_add(1, std::memory_order_release);
}

SlotCopy read_slot(const WorkerSlot& slot) {
    SlotCopy c;
    for (int attempt = 0; attempt < 1000; ++attempt) {
        uint32_t before = slot.seq.load(std::memory_order_acquire);
        if (before & 1u) continue;
        c.pid = slot.pid.load(std::memory_order_relaxed);
        c.state = slot.state.load(std::memory_order_relaxed);
        c.requests = slot.requests.load(std::memory_order_relaxed);
        c.request_started_us = slot.request_started_us.load(std::memory_order_relaxed);
        c.request_accepted_s = slot.request_accepted_s;
        c.process_started_us = slot.process_started_us;
        c.method.assign(slot.method, strnlen(slot.method, sizeof slot.method));
        c.uri.assign(slot.uri, strnlen(slot.uri, sizeof slot.uri));
        c.query.assign(slot.query, strnlen(slot.query, sizeof slot.query));
        c.script.assign(slot.script, strnlen(slot.script, sizeof slot.script));
        c.auth_user.assign(slot.auth_user, strnlen(slot.auth_user, sizeof slot.auth_user));
        c.content_length = slot.content_length;
        c.last_duration_us = slot.last_duration_us;
        c.last_cpu_percent = slot.last_cpu_percent;
        c.last_memory = slot.last_memory;
        std::atomic_thread_fence(std::memory_order_acquire);
        if (slot.seq.load(std::memory_order_relaxed) == before) break;
    }
    return c;
}

} // namespace lowphp
