// evw::Signal — a Unix signal delivered as a loop event (libev's ev_signal).
//
// Any number of loops, on any threads, may watch the same signal: each
// delivery calls every active watcher of it in every loop once. Signals that
// arrive before a loop's callbacks run are coalesced into one call per
// watcher. evw catches the signal with its own handler (sigaction), which
// wakes each loop that watches it; it never changes a thread's signal mask
// (the kernel hands the signal to any thread that does not block it: a
// signal blocked in every thread is never seen), and LoopFlag::SignalFd does
// not apply. The default loop's SIGCHLD handling for Child keeps working
// alongside Signal watchers of SIGCHLD. When the last watcher of a signal in
// the process stops, the disposition it had before evw took it is restored;
// when the last watcher in a loop stops, a signal that loop received but did
// not dispatch yet is dropped (never reported later to another watcher).
// Caveat: libev code of your own (an ev_signal on raw()) must not watch a
// signal evw watches.
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
  // @throws std::bad_alloc.
  void start_impl() override;
  void stop_impl() noexcept override;
  void discard_impl() noexcept override;
  void rehome_stop_impl() noexcept override;
  void rehome_start_impl(WatcherBase& from, bool active) noexcept override;
  detail::EvStorage<48> ev_;
  // derived_flag_ (WatcherBase's spare byte): received for this watcher
  // between stop_impl and start_impl.
  bool& carried() noexcept { return derived_flag_; }
};

}  // namespace evw
