// evw::Check — runs in every iteration right after the loop woke up, before
// the other callbacks of the same priority (libev's ev_check).
//
// The pair of Prepare: see there and examples/prepare_check.cpp.
// Caveats: check callbacks are queued together with the iteration's events
// and run first among those of their priority; a higher-priority event runs
// before them. To look at the events of watchers started in Prepare, take
// them with clear_pending() (which also keeps their callbacks from running)
// or give the Check a lower priority than those watchers.
//
// revents: Event::Check. Plus whatever feed() passes.
#pragma once

#include "../core/loop.hpp"
#include "../core/watcher.hpp"

namespace evw {

/// Calls back in every iteration after the loop waited for events.
class Check final : public detail::Watcher<Check> {
 public:
  /// @brief A stopped check watcher.
  /// @throws std::invalid_argument if cb is empty.
  Check(Loop& loop, Callback cb);
  ~Check();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Check(Check&& other);
  Check& operator=(Check&& other) { return move_assign(other); }

 private:
  void start_impl() override;
  void stop_impl() noexcept override;
  detail::EvStorage<32> ev_;
};

}  // namespace evw
