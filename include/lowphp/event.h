// A libevent event that owns its callback: a closure carrying its owner (as
// Envoy's dispatcher hands out owned handles), so no file-level pointer to the
// owner is needed for libevent's void* to reach it.
#pragma once

#include <event2/event.h>
#include <functional>
#include <memory>

namespace lowphp {

class Event {
  public:
    using Callback = std::function<void(evutil_socket_t fd, short what)>;
    // As event_new: `fd` -1 for a timer, a signal number with EV_SIGNAL.
    Event(event_base* base, evutil_socket_t fd, short what, Callback cb)
        : cb_(std::move(cb)), ev_(event_new(base, fd, what, &Event::dispatch, this)) {}
    ~Event() {
        if (ev_) event_free(ev_);
    }
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    void add(const timeval* timeout = nullptr) { event_add(ev_, timeout); }
    bool pending(short what) const { return event_pending(ev_, what, nullptr) != 0; }

  private:
    // The callback may destroy this event (a one-shot event erased from its
    // map): it runs from a copy.
    static void dispatch(evutil_socket_t fd, short what, void* self) {
        Callback cb = static_cast<Event*>(self)->cb_;
        cb(fd, what);
    }

    Callback cb_;
    event* ev_;
};

using EventPtr = std::unique_ptr<Event>;

inline EventPtr make_event(event_base* base, evutil_socket_t fd, short what, Event::Callback cb) {
    return std::make_unique<Event>(base, fd, what, std::move(cb));
}

} // namespace lowphp
