// evw::Cleanup — runs when its loop is destroyed (libev's ev_cleanup).
//
// Use it to release what belongs to the loop's life (an fd, a library
// handle) even if nobody stops the loop's users. ~Loop stops every other
// watcher first, then runs each active Cleanup once.
// Caveats: an active Cleanup does not keep run() from returning (libev does
// not count it). In the callback the loop is being destroyed: its other
// watchers are already stopped (user-owned ones detached, loop-owned ones
// gone); do not start watchers on it. An exception thrown there is dropped,
// as there is no run() left to report it to, and the other Cleanup watchers
// still run. Outside destruction (feed(), or a run() after feed) it is
// delivered like any event.
//
// revents: Event::Cleanup. Plus whatever feed() passes.
#pragma once

#include "../core/loop.hpp"
#include "../core/watcher.hpp"

namespace evw {

/// Calls back once when its Loop is destroyed, if still active then.
class Cleanup final : public detail::Watcher<Cleanup> {
 public:
  /// @brief A stopped cleanup watcher.
  /// @throws std::invalid_argument if cb is empty.
  Cleanup(Loop& loop, Callback cb);
  ~Cleanup();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Cleanup(Cleanup&& other);
  Cleanup& operator=(Cleanup&& other) { return move_assign(other); }

 private:
  void start_impl() override;
  void stop_impl() noexcept override;
  // ~Loop leaves it active so that ev_loop_destroy runs it.
  bool runs_at_loop_destroy() const noexcept override { return true; }
  detail::EvStorage<32> ev_;
};

}  // namespace evw
