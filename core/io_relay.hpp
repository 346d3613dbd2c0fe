// Internal (not installed): a watcher whose source is one descriptor watched
// by an internal ev_io (EV_READ), delivered through the watcher's own libev
// watcher, which is never started but fed: its pending state, stop(), set()
// and priority then behave as for every watcher. Used by Pressure and Mounts
// (see OwnEpoll in watchers/attr.hpp for why they do not use the EPOLLPRI set).
#pragma once

#include <ev.h>

#include "access.hpp"

namespace evw::detail::io_relay {

inline ev_io* io(void* storage) noexcept { return static_cast<ev_io*>(storage); }
inline const ev_io* io(const void* storage) noexcept { return static_cast<const ev_io*>(storage); }

/// Sets up the ev_io in storage to call cb with self in its data.
inline void init(void* storage, void (*cb)(struct ev_loop*, ev_io*, int), void* self) noexcept {
  ev_init(io(storage), cb);
  io(storage)->data = self;
}

/// Starts watching fd for EV_READ at the watcher's priority.
inline void start(struct ev_loop* loop, void* storage, int fd, int priority) noexcept {
  ev_io_set(io(storage), fd, EV_READ);
  ev_set_priority(io(storage), priority);
  ev_io_start(loop, io(storage));
}

inline void stop(struct ev_loop* loop, void* storage) noexcept { ev_io_stop(loop, io(storage)); }
inline bool active(const void* storage) noexcept { return ev_is_active(io(storage)); }

/// The ev_io fired: queue `revents` for the watcher's own libev watcher `ev`.
inline void relay(Loop& owner, struct ev_loop* loop, void* ev, int revents) noexcept {
  Access::note_feed(owner);
  ev_feed_event(loop, ev, revents);
}

/// The watcher's pending event, taken: its own, plus `as` if the ev_io was
/// pending (set() feeds that back; the watcher's handler then does the read).
inline int take_pending(struct ev_loop* loop, void* storage, void* ev, int as) noexcept {
  int revents = ev_clear_pending(loop, static_cast<ev_watcher*>(ev));
  if (ev_clear_pending(loop, io(storage)) != 0) revents |= as;
  return revents;
}

inline bool pending(const void* storage, const void* ev) noexcept {
  return ev_is_pending(static_cast<const ev_watcher*>(ev)) || ev_is_pending(io(storage));
}

}  // namespace evw::detail::io_relay
