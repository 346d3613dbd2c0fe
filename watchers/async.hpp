// evw::Async — wake the loop from another thread (libev's ev_async).
//
// send() is the one thread-safe call of evw: any thread (or a signal
// handler's thread) calls it, and the callback runs in the loop's thread.
// Pass the data itself through your own queue (a mutex, an atomic): the
// watcher carries only the wakeup.
// Caveats: sends coalesce: several send() before the callback runs give one
// call, so drain the whole queue in the callback; a send() that happens
// while the callback runs gives another call. A send() to a stopped watcher
// is kept for its next start() (libev would drop it), but one that races
// with start() or set_priority() itself may be lost: start it before the
// producers. The watcher and its Loop must outlive every send(), and it must
// not be moved while another thread may send() to it (a move changes its
// address; a send() not yet noticed by the loop comes along).
//
// revents: Event::Async. Plus whatever feed() passes.
#pragma once

#include "../core/loop.hpp"
#include "../core/watcher.hpp"

namespace evw {

/// Calls back in the loop's thread after send() from any thread.
class Async final : public detail::Watcher<Async> {
 public:
  /// @brief A stopped async watcher (it creates the loop's wakeup descriptor
  /// if the loop has none yet, so that send() is safe at once).
  /// @throws std::invalid_argument if cb is empty; std::system_error if no
  ///         descriptor is left for the wakeup.
  Async(Loop& loop, Callback cb);
  ~Async();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// A send() not yet noticed by the loop comes along. Not while another
  /// thread may send() to `other`.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Async(Async&& other);
  Async& operator=(Async&& other) { return move_assign(other); }
  /// @brief Wake the loop and have the callback called (ev_async_send).
  /// Thread-safe, and async-signal-safe while the loop exists.
  /// @throws std::logic_error if the loop is gone.
  void send();
  /// @brief True between a send() and the loop noticing it (ev_async_pending).
  bool async_pending() const noexcept;

 private:
  // @throws std::system_error if no descriptor is left for the wakeup.
  void start_impl() override;
  void stop_impl() noexcept override;
  void rehome_start_impl(WatcherBase& from, bool active) noexcept override;
  detail::EvStorage<40> ev_;
};

}  // namespace evw
