// evw coroutines — `co_await gpio.edge()` on a plain evw::Gpio or evw::GpioLine:
//
//   evw::Gpio button(loop, 17, config, on_edge);   // any callback, started or not
//   int revents = co_await button.edge();          // Event::Pri; button.value() is the new level
//   evw::GpioLine line(loop, "/dev/gpiochip0", 4, on_batch);
//   co_await line.edge();                          // Event::Read; line.last_events() is the batch
//
// edge() waits for the watcher's next event. The watcher's own callback still
// runs first, for that event as for every other; then the coroutine resumes.
// A watcher that was stopped is started for the wait and stopped again when
// it ends (event or cancellation); an active one stays active. For a watcher
// awaited in a loop and nothing else, evw::Watch<Gpio> is cheaper (it stays
// started between events).
//
// How: the first edge() on a watcher puts a relay in place of its callback;
// the relay calls the original callback, then resumes the coroutine waiting,
// if any. The relay stays after a wait that ended by an event (that wait ends
// inside the relay's own call, where a callback must not be swapped back);
// a wait cancelled from outside it puts the original callback back at once.
// Either way every event reaches the original callback exactly as before.
//
// Caveats:
// - One coroutine at a time may await a watcher's edge(); a second one throws
//   std::logic_error at its co_await.
// - If the callback throws, the loop reports the exception and the coroutine
//   keeps waiting (it is resumed by a later event).
// - set_callback() replaces the relay too. Called from the watcher's callback
//   during a wait, that event still resumes the coroutine (the watcher's
//   active state is then left as it is); called while the coroutine waits,
//   from anywhere else, the coroutine is never resumed by that watcher
//   (destroying its Task stays safe). The next edge() installs a new relay.
// - Do not await the first edge() of a watcher from inside that watcher's
//   own callback (its callback cannot be swapped while it runs).
// - The watcher and the loop must outlive the wait: if either is destroyed
//   first, the coroutine is never resumed (destroying its Task stays safe).
//   A watcher moved during the wait takes the wait along.
#pragma once

#include <coroutine>
#include <memory>
#include <stdexcept>
#include <utility>

#include "../core/watcher.hpp"

namespace evw::detail {

template <class W>
class EdgeAwaitable;

// What the relay of one watcher shares with the awaitables: the original
// callback and the coroutine waiting. Kept alive by the relay installed in
// the watcher, by each relay call in progress and by a suspended awaitable.
template <class W>
struct EdgeHook : std::enable_shared_from_this<EdgeHook<W>> {
  W* watcher = nullptr;  // null once the relay is no longer the watcher's callback
  typename W::Callback original;
  EdgeAwaitable<W>* waiter = nullptr;
  int calls = 0;              // relay calls in progress: the relay must not be swapped out
  EdgeHook* next = nullptr;   // this thread's installed hooks for W

  static EdgeHook*& installed() noexcept {
    static constinit thread_local EdgeHook* head = nullptr;
    return head;
  }
  // The hook whose relay is w's callback, if any (a thread has few).
  static EdgeHook* find(const W& w) noexcept {
    for (EdgeHook* h = installed(); h != nullptr; h = h->next)
      if (h->watcher == &w) return h;
    return nullptr;
  }
  // The watcher moved (its callback, the relay, went along): follow it.
  // Called by Gpio's and GpioLine's move constructors.
  static void moved(const W& from, W& to) noexcept {
    if (EdgeHook* hook = find(from)) {
      hook->watcher = &to;
      if (hook->waiter != nullptr) hook->waiter->watcher_ = &to;
    }
  }
  void uninstall() noexcept {
    watcher = nullptr;
    for (EdgeHook** p = &installed(); *p != nullptr; p = &(*p)->next) {
      if (*p == this) {
        *p = next;
        break;
      }
    }
    next = nullptr;
  }
};

// The callback installed in the watcher: the original callback, then the
// waiting coroutine.
template <class W>
class EdgeRelay {
 public:
  explicit EdgeRelay(std::shared_ptr<EdgeHook<W>> hook) noexcept : hook_(std::move(hook)) {}
  EdgeRelay(EdgeRelay&&) noexcept = default;
  EdgeRelay& operator=(EdgeRelay&&) = delete;
  // The watcher let go of it: destroyed, or set_callback().
  ~EdgeRelay() {
    if (hook_) hook_->uninstall();
  }

  void operator()(W& w, int revents) {
    // Our own reference: the callback may replace this relay or destroy w.
    std::shared_ptr<EdgeHook<W>> hook = hook_;
    struct InCall {
      EdgeHook<W>& hook;
      explicit InCall(EdgeHook<W>& h) noexcept : hook(h) { ++hook.calls; }
      ~InCall() { --hook.calls; }
      InCall(const InCall&) = delete;
      InCall& operator=(const InCall&) = delete;
    } in_call(*hook);
    hook->original(w, revents);  // if it throws, the waiter waits for the next event
    if (EdgeAwaitable<W>* waiter = std::exchange(hook->waiter, nullptr)) waiter->fire(revents);
  }

 private:
  std::shared_ptr<EdgeHook<W>> hook_;
};

/// The awaitable returned by Gpio::edge() and GpioLine::edge(): the next
/// event of the watcher, after its own callback. co_await gives the revents.
template <class W>
class [[nodiscard]] EdgeAwaitable {
 public:
  explicit EdgeAwaitable(W& watcher) noexcept : watcher_(&watcher) {}
  // Before it is awaited only (with_timeout and when_any move it into a task).
  EdgeAwaitable(EdgeAwaitable&& other) noexcept : watcher_(std::exchange(other.watcher_, nullptr)) {}
  EdgeAwaitable& operator=(EdgeAwaitable&&) = delete;
  // Cancelled while suspended: no resume, the watcher as it was.
  ~EdgeAwaitable() {
    if (hook_) cancel();
  }

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> awaiting) {
    if (watcher_ == nullptr) throw std::logic_error("evw: awaiting a moved-from edge()");
    std::shared_ptr<EdgeHook<W>> hook = hook_of(*watcher_);
    if (hook->waiter != nullptr)
      throw std::logic_error("evw: edge() is already awaited by another coroutine");
    started_ = !watcher_->is_active();
    if (started_) watcher_->start();  // if it throws, nothing waits (the relay is harmless)
    hook->waiter = this;
    awaiting_ = awaiting;
    hook_ = std::move(hook);
  }
  /// The revents of the event.
  int await_resume() const noexcept { return revents_; }

 private:
  friend class EdgeRelay<W>;
  friend struct EdgeHook<W>;

  static std::shared_ptr<EdgeHook<W>> hook_of(W& w) {
    if (EdgeHook<W>* hook = EdgeHook<W>::find(w)) return hook->shared_from_this();
    auto hook = std::make_shared<EdgeHook<W>>();
    hook->watcher = &w;
    // The first wait on w: its callback is not running (see the caveats).
    hook->original = w.exchange_callback(EdgeRelay<W>(hook));
    hook->next = std::exchange(EdgeHook<W>::installed(), hook.get());
    return hook;
  }

  // From the relay, after the watcher's callback: restore, then resume.
  void fire(int revents) {
    revents_ = revents;
    std::shared_ptr<EdgeHook<W>> hook = std::move(hook_);
    if (started_ && hook->watcher != nullptr) watcher_->stop();  // inside its callback: allowed
    started_ = false;
    hook.reset();
    awaiting_.resume();  // may destroy *this: touch nothing after
  }

  void cancel() noexcept {
    std::shared_ptr<EdgeHook<W>> hook = std::move(hook_);
    hook->waiter = nullptr;
    if (hook->watcher == nullptr) return;  // the watcher is gone, or its callback was replaced
    if (started_) watcher_->stop();
    // Put the original callback back, unless the relay is running (a callback
    // of this watcher is cancelling us): then it stays, harmless.
    if (hook->calls == 0) {
      typename W::Callback relay = watcher_->exchange_callback(std::move(hook->original));
      (void)relay;  // destroyed here: uninstalls the hook
    }
  }

  W* watcher_;
  std::shared_ptr<EdgeHook<W>> hook_;  // set while suspended
  std::coroutine_handle<> awaiting_;
  int revents_ = 0;
  bool started_ = false;  // the wait started the watcher: stop it at the end
};

}  // namespace evw::detail
