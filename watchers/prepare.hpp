// evw::Prepare — runs in every iteration just before the loop blocks for
// events (libev's ev_prepare).
//
// With Check (run right after the loop wakes up) it integrates a foreign
// event library: in Prepare ask it for its fds and timeout and start Io
// watchers and a Timer for them; in Check take their revents with
// clear_pending(), stop them and let the library process (see
// examples/prepare_check.cpp).
// Caveats: an active Prepare does not keep the loop from blocking, but it does
// keep run() from returning. Starting watchers in the callback is allowed and
// is what it is for; the loop then takes them into account for this very
// iteration's wait.
//
// revents: Event::Prepare. Plus whatever feed() passes.
#pragma once

#include "../core/loop.hpp"
#include "../core/watcher.hpp"

namespace evw {

/// Calls back in every iteration before the loop waits for events.
class Prepare final : public detail::Watcher<Prepare> {
 public:
  /// @brief A stopped prepare watcher.
  /// @throws std::invalid_argument if cb is empty.
  Prepare(Loop& loop, Callback cb);
  ~Prepare();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Prepare(Prepare&& other);
  Prepare& operator=(Prepare&& other) { return move_assign(other); }

 private:
  void start_impl() override;
  void stop_impl() noexcept override;
  detail::EvStorage<32> ev_;
};

}  // namespace evw
