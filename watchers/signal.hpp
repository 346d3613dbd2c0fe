// evw::Signal — a Unix signal delivered as a loop event (libev's ev_signal).
//
// Caveats: a signal belongs to one loop at a time (another loop's start()
// throws std::logic_error); the default loop owns SIGCHLD for Child watchers.
// Signals that arrive before the callback runs are coalesced into one call.
// Non-default loops use signalfd, which blocks the signal in the calling
// thread only: in a threaded program block it in every thread (or use the
// default loop). When the last watcher of a signal stops, the disposition it
// had before evw took it is restored, and a signal received but not yet
// dispatched is dropped with it (never reported later to another watcher).
//
// revents: Event::Signal. Plus whatever feed() passes.
#pragma once

#include "../core/loop.hpp"
#include "../core/watcher.hpp"

namespace evw {

/// Calls back when signum is received.
class Signal final : public detail::Watcher<Signal> {
 public:
  /// @brief A stopped watcher of signum.
  /// @throws std::invalid_argument unless 1 <= signum < NSIG and signum is
  ///         neither SIGKILL nor SIGSTOP nor reserved by the C library
  ///         (glibc: 32 and 33); if cb is empty.
  Signal(Loop& loop, int signum, Callback cb);
  ~Signal();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// (The signal stays claimed by the loop throughout: no disposition changes.)
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Signal(Signal&& other);
  Signal& operator=(Signal&& other) { return move_assign(other); }
  /// @brief Watch another signal; allowed while active or pending (a pending
  /// event is kept). As with stop(), a signal of the old number received but
  /// not yet dispatched is dropped if this was its last watcher.
  /// @throws as the constructor, and as start().
  void set(int signum);
  int signum() const noexcept;

 private:
  // @throws std::logic_error if another loop watches the signal;
  //         std::system_error if no descriptor is left for the wakeup.
  void start_impl() override;
  void stop_impl() noexcept override;
  void discard_impl() noexcept override;
  void rehome_stop_impl() noexcept override;
  void rehome_start_impl(WatcherBase& from, bool active) noexcept override;
  detail::EvStorage<48> ev_;
};

}  // namespace evw
