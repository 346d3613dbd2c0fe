#include "wakeup.hpp"

#include <exception>
#include <thread>
#include <utility>

#include "access.hpp"
#include "loop.hpp"
#include "loop_handle.hpp"

namespace evw::detail {

Wakeup::Wakeup(Loop& loop) : loop_(&loop), raw_(loop.raw()) {
  probe_wakeup_fd("Loop");  // ev_async_start creates libev's eventfd, and aborts if it cannot
  ev_async_init(&async_, on_wake);
  ev_set_priority(&async_, EV_MAXPRI);
  async_.data = this;
  ev_async_start(raw_, &async_);
  ev_unref(raw_);  // the wakeup alone does not keep run() going
  ev_idle_init(&kick_, on_kick);
  ev_set_priority(&kick_, EV_MINPRI);  // never ahead of a user's idle watcher
}

void Wakeup::on_kick(struct ev_loop* raw, ev_idle* w, int) noexcept {
  ev_ref(raw);
  ev_idle_stop(raw, w);
}

bool Wakeup::push(Fn& fn) {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    incoming_.push_back(std::move(fn));  // if this throws, fn is still the caller's
    if (woken_) return true;  // the loop has not taken the queue since the last send()
    woken_ = true;
    sending_.fetch_add(1, std::memory_order_relaxed);
  }
  // Outside the lock: ev_async_send may write the eventfd, and other posters
  // should not wait for that system call. close() waits for it instead.
  send();
  sending_.fetch_sub(1, std::memory_order_release);
  return true;
}

bool Wakeup::has_posts() {
  if (next_ < running_.size()) return true;
  std::lock_guard lock(mutex_);
  return !incoming_.empty();
}

void Wakeup::close() noexcept {
  std::vector<Fn> queued;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    queued.swap(incoming_);
    loop_ = nullptr;  // under the lock: a thread refused by push() then sees it (LoopHold)
  }
  // A push() that decided to send() before the queue closed is still in
  // ev_async_send: the ev_async and the libev loop must outlive it.
  while (sending_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  // The rest of a batch an exception interrupted, or of the one running now
  // if a posted function is destroying the loop (run_batch then stops).
  std::vector<Fn> rest = std::move(running_);
  running_.clear();
  next_ = 0;
  // Destroyed here, unrun, outside the lock: a destructor that posts is refused.
}

void Wakeup::stop() noexcept {
  if (ev_is_active(&kick_)) {
    ev_ref(raw_);
    ev_idle_stop(raw_, &kick_);
  }
  ev_ref(raw_);
  ev_async_stop(raw_, &async_);
}

void Wakeup::run_batch() {
  // Each function leaves the vector before it runs: a nested run() inside it
  // may run the rest of this batch and swap in the next one.
  while (next_ < running_.size() && loop_ != nullptr) {
    Fn fn = std::move(running_[next_++]);
    fn();  // may throw, may destroy the loop
  }
}

void Wakeup::run_posts() {
  run_batch();  // what an exception left of the last batch comes first
  if (loop_ == nullptr) return;
  running_.clear();
  next_ = 0;
  {
    std::lock_guard lock(mutex_);
    running_.swap(incoming_);
    woken_ = false;  // what is posted from now on sends again
  }
  run_batch();
}

void Wakeup::on_wake(struct ev_loop* raw, ev_async* w, int) noexcept {
  Wakeup& self = *static_cast<Wakeup*>(w->data);
  if (self.loop_ == nullptr) [[unlikely]] return;  // ~Loop is under way
  Loop& loop = *self.loop_;
  if (!self.signals.empty()) feed_signals(loop, raw, self.signals);
  if (Access::failed(loop)) [[unlikely]] {
    // A callback of this iteration threw: nothing else runs now; posts that
    // wait (queued, or left of a batch) run in the next run(), which this
    // send() wakes. With none, a later post must send again instead.
    bool waiting;
    {
      std::lock_guard lock(self.mutex_);
      waiting = !self.incoming_.empty() || self.next_ < self.running_.size();
      if (!waiting) self.woken_ = false;
    }
    if (waiting) self.send();
    return;
  }
  // A posted function may destroy the loop, and with it the loop's reference.
  std::shared_ptr<Wakeup> keep = self.shared_from_this();
  try {
    self.run_posts();
  } catch (...) {
    Access::capture(loop, std::current_exception());  // loop may be gone: capture knows
    if (self.loop_ != nullptr) self.send();  // the posts after it run in the next run()
  }
}

bool post_to(Wakeup& wakeup, Function<void()>& fn) { return wakeup.push(fn); }

LoopHold::LoopHold(const LoopHandle& loop) noexcept : wakeup_(loop.wakeup_) {
  if (wakeup_) wakeup_->hold();
}

void LoopHold::reset() noexcept {
  if (wakeup_) std::exchange(wakeup_, nullptr)->release();
}

}  // namespace evw::detail
