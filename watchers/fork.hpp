// evw::Fork — runs in a forked child once the loop has been told about the
// fork (libev's ev_fork).
//
// Caveats: nothing is automatic: after fork() the child calls loop.fork()
// (or the loop was created with LoopFlag::ForkCheck), and the Fork callbacks run
// at the start of the child's next iteration, before Prepare. Use it to
// re-create state the child must not share with the parent. An active Fork
// watcher keeps run() from returning, like any active watcher.
//
// revents: Event::Fork. Plus whatever feed() passes.
#pragma once

#include "../core/loop.hpp"
#include "../core/watcher.hpp"

namespace evw {

/// Calls back in the next iteration after Loop::fork().
class Fork final : public detail::Watcher<Fork> {
 public:
  /// @brief A stopped fork watcher.
  /// @throws std::invalid_argument if cb is empty.
  Fork(Loop& loop, Callback cb);
  ~Fork();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Fork(Fork&& other);
  Fork& operator=(Fork&& other) { return move_assign(other); }

 private:
  void start_impl() override;
  void stop_impl() noexcept override;
  detail::EvStorage<32> ev_;
};

}  // namespace evw
