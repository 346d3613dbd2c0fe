// evw::LoopHandle — a weak, copyable reference to a Loop for other threads:
// post() to it as long as the loop exists, and learn when it no longer does.
//
//   evw::LoopHandle h = loop.handle();        // on the loop's thread, or anywhere before it runs
//   std::thread([h] { if (!h.post([] { /* on the loop's thread */ })) { /* loop gone */ } });
//
// Caveats: post() returning true means the function was queued, not that it
// ran: a loop destroyed before its next iteration destroys its queued
// functions without running them (on the thread that destroys the loop). A
// post() that races with ~Loop either is queued before the loop closes its
// queue (then it is run or destroyed, like any queued function) or returns
// false (then the function is destroyed before post() returns, on the
// posting thread). Nothing is leaked and nothing runs twice. Copies of a
// handle are independent and may be used from any thread at once.
#pragma once

#include <memory>
#include <stdexcept>
#include <utility>

#include "function.hpp"

namespace evw {

class Loop;

class LoopHandle;

namespace detail {
class Wakeup;
bool post_to(Wakeup& wakeup, Function<void()>& fn);

/// Keeps run() of a loop going while it exists, as an active watcher does
/// (for work in flight whose result comes back by post: WorkPool, offload).
/// Create, reset and destroy it on the loop's thread; once the loop is gone
/// it does nothing, so it may outlive the loop.
class LoopHold {
 public:
  LoopHold() noexcept = default;
  explicit LoopHold(const LoopHandle& loop) noexcept;
  LoopHold(LoopHold&& other) noexcept : wakeup_(std::move(other.wakeup_)) {}
  LoopHold& operator=(LoopHold&& other) noexcept {
    if (this != &other) {
      reset();
      wakeup_ = std::move(other.wakeup_);
    }
    return *this;
  }
  ~LoopHold() { reset(); }
  void reset() noexcept;

 private:
  std::shared_ptr<Wakeup> wakeup_;
};
}  // namespace detail

/// A thread-safe reference to a Loop that knows when the loop is gone.
class LoopHandle {
 public:
  /// @brief An empty handle: post() returns false.
  LoopHandle() noexcept = default;

  /// @brief Have fn() called on the loop's thread, in its next iteration, after
  /// what this thread posted before (see Loop::post). Thread-safe.
  /// @return true if queued; false if the loop is gone (or the handle is
  ///         empty): fn is then destroyed, never called.
  /// @throws std::invalid_argument if fn is empty; std::bad_alloc.
  template <class F>
  bool post(F&& fn) const {
    detail::Function<void()> f(std::forward<F>(fn));
    if (!f) throw std::invalid_argument("evw::LoopHandle::post: the function is empty");
    return wakeup_ != nullptr && detail::post_to(*wakeup_, f);
  }
  /// @brief False for an empty handle. (A non-empty one may refer to a loop
  /// already destroyed: only post() can tell, without a race.)
  explicit operator bool() const noexcept { return wakeup_ != nullptr; }

 private:
  friend class Loop;
  friend class detail::LoopHold;
  explicit LoopHandle(std::shared_ptr<detail::Wakeup> wakeup) noexcept : wakeup_(std::move(wakeup)) {}
  std::shared_ptr<detail::Wakeup> wakeup_;
};

}  // namespace evw
