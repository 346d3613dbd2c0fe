// Internal (not installed): a Loop's own wakeup — one ev_async, started with
// the loop and never counted as active, that other threads (Loop::post,
// LoopHandle::post) and evw's signal handler use to wake it — and the queue of
// posted functions its callback runs.
//
// The queue: producers append to `incoming_` under a mutex; the loop's callback
// swaps it with `running_` (both keep their capacity, so a steady stream of
// posts allocates nothing) and runs that batch in order. Only the first post
// after a swap calls ev_async_send. The ev_async has max priority, so a batch
// (and the Signal events the callback feeds) comes before any user callback
// of the iteration, as libev's own signal and async dispatch does.
//
// Shared (std::shared_ptr) by the Loop and its LoopHandles: a handle can still
// ask, after ~Loop, and is refused.
#pragma once

#include <ev.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "function.hpp"
#include "signals.hpp"

namespace evw {
class Loop;
}

namespace evw::detail {

class Wakeup final : public std::enable_shared_from_this<Wakeup> {
 public:
  using Fn = Function<void()>;

  /// Start the loop's ev_async (max priority, not counted by ev_run).
  /// @throws std::system_error if no descriptor is left for libev's wakeup
  ///         (libev would abort).
  explicit Wakeup(Loop& loop);
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  /// Any thread: queue fn and wake the loop. False once the loop is gone;
  /// fn is then left with the caller.
  bool push(Fn& fn);
  /// Async-signal-safe; only while the loop lives: its callback runs in the
  /// loop's next iteration.
  void send() noexcept { ev_async_send(raw_, &async_); }
  /// Loop thread: a posted function waits to run.
  bool has_posts();
  /// Loop thread: one more (one less) reference that keeps run() going;
  /// nothing once the loop is gone (LoopHold).
  void hold() noexcept {
    if (loop_ != nullptr) ev_ref(raw_);
  }
  void release() noexcept {
    if (loop_ != nullptr) ev_unref(raw_);
  }
  /// Loop thread, outside run(): an event was fed (feed(), a set() keeping a
  /// pending event, an exception's deferred events). libev would block in
  /// its next poll before dispatching it; an idle watcher (lowest priority,
  /// not counted by ev_run, stopped by its first call) makes that poll not
  /// wait.
  void kick() noexcept {
    if (ev_is_active(&kick_)) return;
    ev_idle_start(raw_, &kick_);
    ev_unref(raw_);
  }
  /// ~Loop, first: refuse further posts, destroy the queued ones (not run).
  void close() noexcept;
  /// ~Loop, before ev_loop_destroy: stop the ev_async.
  void stop() noexcept;

  /// Loop thread: the signals watched in this loop (see signals.cpp).
  std::vector<LoopSignal> signals;

 private:
  static void on_wake(struct ev_loop* raw, ev_async* w, int revents) noexcept;
  static void on_kick(struct ev_loop* raw, ev_idle* w, int revents) noexcept;
  void run_posts();
  void run_batch();

  Loop* loop_;  // loop thread; null once closed
  struct ev_loop* raw_;
  ev_async async_;
  ev_idle kick_;
  std::mutex mutex_;
  std::vector<Fn> incoming_;  // guarded by mutex_
  bool woken_ = false;        // guarded: a send() for incoming_ is on its way
  bool closed_ = false;       // guarded
  std::atomic<int> sending_{0};  // pushes between deciding to send() and done with it
  std::vector<Fn> running_;   // loop thread: the batch being run
  std::size_t next_ = 0;      // its first function not yet started
};

}  // namespace evw::detail
