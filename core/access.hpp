// Internal (not installed): what the library's sources may touch inside Loop
// and watchers, and the dispatch path every libev callback goes through.
#pragma once

#include <ev.h>

#include <exception>
#include <string>

#include "loop.hpp"
#include "watcher.hpp"

namespace evw::detail {

struct Access {
  static Loop* loop(const WatcherBase& w) noexcept { return w.loop_; }
  static void* ev(const WatcherBase& w) noexcept { return w.ev(); }
  template <class W>
  static typename Watcher<W>::Callback& callback(W& w) noexcept {
    return static_cast<Watcher<W>&>(w).cb_;
  }
  static bool failed(const Loop& loop) noexcept { return loop.failed_; }
  static WatcherBase*& running(Loop& loop) noexcept { return loop.running_; }
  static void defer(Loop& loop, WatcherBase& w, int revents) { loop.defer(w, revents); }
  // loop may be a Loop its callback destroyed: then the exception goes to
  // the run() that is unwinding it (see loop.cpp); loop is not touched.
  static void capture(Loop& loop, std::exception_ptr e) noexcept;
  // dispatch()'s cold paths, out of line (loop.cpp) so that its inline path
  // keeps nothing but the loop across the callback: capture(loop, the
  // exception being handled), from inside a catch block; defer, capturing
  // what it throws.
  [[gnu::cold]] static void capture_current(Loop& loop) noexcept;
  [[gnu::cold]] static void defer_or_capture(Loop& loop, WatcherBase& w, int revents) noexcept;
  static PriorityTable* priority_table(Loop& loop) noexcept { return loop.priority_.get(); }
  static PriorityTable& make_priority_table(Loop& loop);
  static FdCheck* fd_check(Loop& loop) noexcept { return loop.fd_check_.get(); }
  static FdCheck& make_fd_check(Loop& loop, void (*on_prepare)(struct ev_loop*, ev_prepare*, int));
  static WatcherBase* first(const Loop& loop) noexcept { return loop.head_; }
  static Wakeup& wakeup(const Loop& loop) noexcept { return *loop.wakeup_.get(); }
  /// Have fn(loop) called when loop is destroyed (once per fn). @throws bad_alloc.
  static void on_destroy(Loop& loop, void (*fn)(const Loop&)) {
    for (auto* f : loop.on_destroy_)
      if (f == fn) return;
    loop.on_destroy_.push_back(fn);
  }
  static WatcherBase* next(const WatcherBase& w) noexcept { return w.next_; }
  // Call before evw puts an event into libev's pending queue from outside
  // libev's dispatch (feed, thaw, a re-feed after an exception).
  static void note_feed(Loop& loop) noexcept;
};

// Calls w's callback, noting w as the loop's running watcher (a move of w
// throws while its callback runs): a store before the call, nothing after
// (the callback may destroy w and the loop), so the call stays a tail call.
// Loop::run() restores the note of an enclosing callback when a nested run
// returns. Exceptions pass.
template <class W>
inline void invoke_callback(Loop& loop, W& w, int revents) {
  Access::running(loop) = &w;
  Access::callback(w)(w, revents);  // may destroy w and loop: touch nothing after
}

// Every libev callback of a watcher ends here. Exceptions never cross libev's
// C frames: the first is captured and breaks the loop; once one was thrown,
// the rest of the iteration is recorded instead of run (Loop::run re-feeds it).
template <class W>
inline void dispatch(W& w, int revents) noexcept {
  Loop& loop = *Access::loop(w);
  if (Access::failed(loop)) [[unlikely]] return Access::defer_or_capture(loop, w, revents);
  try {
    invoke_callback(loop, w, revents);
  } catch (...) {
    Access::capture_current(loop);
  }
}

// The two ways an event of an ExceptWatcher W (Priority, Poll) reaches its
// callback: through libev's queue, and called directly by the loop's EPOLLPRI
// table (which catches, and never calls directly once the loop has failed:
// see PriorityTable::hand_over).
template <class W>
void except_callback(struct ev_loop*, ev_watcher* w, int revents) noexcept {
  dispatch(*static_cast<W*>(w->data), revents);
}
template <class W>
void except_direct(int revents, void* self) {
  auto& w = *static_cast<W*>(self);
  invoke_callback(*Access::loop(w), w, revents);  // may destroy w: touch nothing after
}

template <class EvWatcher>
inline EvWatcher* ev_of(const WatcherBase& w) noexcept {
  return static_cast<EvWatcher*>(Access::ev(w));
}

// Messages name the watcher, the argument and the value.
[[noreturn]] void throw_invalid(const char* kind, const char* what, const std::string& detail);
[[noreturn]] void throw_system(int err, const std::string& what);

}  // namespace evw::detail
