// evw::Idle — runs when the loop has nothing more urgent to do (libev's ev_idle).
//
// Caveats (libev's): an idle watcher of priority p is called only in
// iterations in which no event of priority p or higher is pending, so a
// busy higher-priority watcher starves it. While any Idle watcher is active
// the loop does not block: it spins, calling the idle callbacks each
// iteration, so stop it once the background work is done.
//
// revents: Event::Idle. Plus whatever feed() passes.
#pragma once

#include "../core/loop.hpp"
#include "../core/watcher.hpp"

namespace evw {

/// Calls back in each loop iteration that has nothing of its priority or
/// higher to deliver.
class Idle final : public detail::Watcher<Idle> {
 public:
  /// @brief A stopped idle watcher.
  /// @throws std::invalid_argument if cb is empty.
  Idle(Loop& loop, Callback cb);
  ~Idle();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Idle(Idle&& other);
  Idle& operator=(Idle&& other) { return move_assign(other); }

 private:
  void start_impl() override;
  void stop_impl() noexcept override;
  detail::EvStorage<32> ev_;
};

}  // namespace evw
