// evw coroutine awaitables — wait on a watcher from a coroutine:
//
//   int revents = co_await evw::readable(loop, fd);     // Event::Read (Io)
//   co_await evw::writable(loop, fd);                   // Event::Write (Io)
//   co_await evw::urgent(loop, fd);                     // EPOLLPRI (Priority): Event::Pri, Event::Hup or Event::Error
//   co_await evw::peer_hangup(loop, fd);                // EPOLLRDHUP (Poll): Event::RdHup, or Event::Hup / Event::Error
//   co_await evw::sleep(loop, 250ms);                   // Event::Timer (Timer)
//   co_await evw::signal(loop, SIGTERM);                // Event::Signal (Signal)
//   evw::Watch<evw::Gpio> button(loop, 17, config);     // a watcher awaited many times:
//   co_await button.next();                             //   Event::Pri, then button->value()
//
// Each awaitable owns its watcher: it is created and started when the
// coroutine suspends, stopped by the event that resumes it, and destroyed with
// the awaitable at the end of the co_await expression. Destroying the
// suspended coroutine (its Task, or the Loop for spawned tasks) destroys the
// watcher, so a cancelled wait never resumes anything.
//
// Caveats:
// - Each co_await creates and starts a fresh watcher; the event semantics are
//   the watcher's (Io and Priority are level-triggered: read the data, or the
//   next await returns at once). Watcher errors (bad fd, EPERM from epoll for
//   urgent() on a regular file, a signal owned by another loop) are thrown at
//   the co_await.
// - signal(): in an evw task (Task, spawn, when_*), the task's first
//   co_await evw::signal(loop, s) catches s for as long as the task lives,
//   not only while it waits: `for (;;) { co_await evw::signal(loop, SIGTERM);
//   ... }` does not die of a SIGTERM that comes while it is busy in between.
//   A signal received while none of the task's awaits of it waits is kept and
//   ends the task's next await at once; received several times meanwhile, it
//   counts as one (as libev coalesces a signal received several times before
//   it is dispatched). A signal that reached an await cancelled before it
//   resumed (a when_any loser) is kept the same way. Caught, a signal can no
//   longer kill the process: one that comes after the task's last await is
//   dropped with the task. The old disposition is back once the task ended.
//   While the task lives, its catch counts as one Signal watcher in
//   Loop::watcher_count(), active between awaits (so Loop::run() does not
//   return for lack of active watchers while such a task lives). Each task that awaits s has
//   its own catch and gets every delivery (as each evw::Signal watcher does).
//   Awaited from a coroutine that is not an evw task, signal() catches s only
//   while it waits. A task that waits on a signal again and again in one
//   place can also use evw::Watch<evw::Signal>.
// - An awaitable may be moved until it is awaited, not while awaited.
// - The loop must outlive the wait: if the Loop is destroyed first, the watcher
//   is detached and the coroutine is never resumed (destroying its Task is
//   still safe).
#pragma once

#include <coroutine>
#include <memory>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../core/events.hpp"
#include "../core/loop.hpp"
#include "../core/time.hpp"
#include "../watchers/io.hpp"
#include "../watchers/poll.hpp"
#include "../watchers/priority.hpp"
#include "../watchers/signal.hpp"
#include "../watchers/timer.hpp"
#include "task.hpp"

namespace evw {

namespace detail {

/// Awaits one event of a watcher of type W built from (loop, args..., callback).
template <class W, class... Args>
class WatcherAwaitable {
 public:
  explicit WatcherAwaitable(Loop& loop, Args... args) : loop_(&loop), args_(std::move(args)...) {}
  // Moves the arguments only: an awaitable is moved before it is awaited
  // (the watcher, which libev knows by address, does not exist yet).
  WatcherAwaitable(WatcherAwaitable&& other) noexcept(
      std::is_nothrow_move_constructible_v<std::tuple<Args...>>)
      : loop_(other.loop_), args_(std::move(other.args_)) {}
  WatcherAwaitable& operator=(WatcherAwaitable&&) = delete;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> awaiting) {
    watcher_.reset();  // awaited again: a fresh watcher
    std::apply(
        [&](const Args&... args) {
          watcher_.emplace(*loop_, args..., [this, awaiting](W& w, int revents) {
            revents_ = revents;
            w.stop();
            awaiting.resume();  // may destroy *this: touch nothing after
          });
        },
        args_);
    watcher_->start();  // if it throws, the exception comes out of co_await
  }
  /// The revents of the event that ended the wait.
  int await_resume() const noexcept { return revents_; }

  /// The watcher while awaited (e.g. to set its priority), else nullptr.
  W* watcher() noexcept { return watcher_ ? &*watcher_ : nullptr; }

 private:
  Loop* loop_;
  std::tuple<Args...> args_;
  std::optional<W> watcher_;  // destroyed (stopped) with the awaitable: cancels the wait
  int revents_ = 0;
};

}  // namespace detail

/// @brief Wait until fd is readable (an Io watcher for Event::Read).
/// @return the revents: Event::Read.
/// @throws (at co_await) std::invalid_argument if fd < 0; std::system_error
///         (EBADF) if fd is not open.
[[nodiscard]] inline auto readable(Loop& loop, int fd) {
  return detail::WatcherAwaitable<Io, int, int>(loop, fd, Event::Read);
}

/// @brief Wait until fd is writable (an Io watcher for Event::Write).
/// @return the revents: Event::Write.
/// @throws as readable().
[[nodiscard]] inline auto writable(Loop& loop, int fd) {
  return detail::WatcherAwaitable<Io, int, int>(loop, fd, Event::Write);
}

/// @brief Wait for an exceptional condition (EPOLLPRI) on fd, e.g. TCP urgent
/// data or a sysfs GPIO edge (a Priority watcher). Clear the condition before
/// awaiting again (recv(fd, &c, 1, MSG_OOB) for urgent data).
/// @return the revents: Event::Pri, or Event::Hup / Event::Error.
/// @throws (at co_await) std::invalid_argument if fd < 0; std::system_error
///         for fds epoll refuses (EPERM for regular files, EBADF).
[[nodiscard]] inline auto urgent(Loop& loop, int fd) {
  return detail::WatcherAwaitable<Priority, int>(loop, fd);
}

/// @brief Wait until the peer of a stream socket shuts down its writing side
/// (shutdown(SHUT_WR) or close: EPOLLRDHUP, through a Poll watcher), with or
/// without data still unread here. (Not named `hangup`: <term.h> defines a
/// macro of that name.)
/// @return the revents: Event::RdHup, maybe with Event::Hup / Event::Error
///         (the connection was reset).
/// @throws (at co_await) std::invalid_argument if fd < 0; std::system_error
///         for fds epoll refuses (EPERM for regular files, EBADF).
[[nodiscard]] inline auto peer_hangup(Loop& loop, int fd) {
  return detail::WatcherAwaitable<Poll, int, int>(loop, fd, Event::RdHup);
}

namespace detail {

class SignalAwaitable;

// Keeps one signal caught for one task, from the task's first
// co_await evw::signal(loop, signum) until the task ends (a resource of its
// root frame). Its own Signal watcher, the catcher, is active exactly while
// none of the task's awaits of the signal waits: each wait starts its own
// watcher before the catcher stops, and the catcher starts again before that
// watcher stops, so the signal always has a watcher in between and its
// disposition is never restored. What the catcher catches is remembered, as
// one (libev coalesces a signal received several times before dispatch), for
// the task's next await.
class SignalClaim final : public FrameResource {
 public:
  // The claim of root's task on (loop, signum), created (its catcher stopped)
  // if there is none. @throws std::invalid_argument for a bad signal number.
  static SignalClaim& of(FrameScope& root, Loop& loop, int signum) {
    for (FrameResource* r = root.first_resource(); r != nullptr; r = r->next())
      if (r->kind() == &kind_tag) {
        auto& claim = static_cast<SignalClaim&>(*r);
        if (claim.loop_ == &loop && claim.catcher_.signum() == signum) return claim;
      }
    return static_cast<SignalClaim&>(root.add_resource(std::make_unique<SignalClaim>(loop, signum)));
  }

  SignalClaim(Loop& loop, int signum)
      : FrameResource(&kind_tag), loop_(&loop), catcher_(loop, signum, [this](Signal&, int) { caught_ = true; }) {}
  ~SignalClaim() override;

  // A signal that came while no await waited: take it (the next await returns at once).
  bool take() noexcept {
    // Also one dispatched in this iteration whose callback has not run yet.
    return std::exchange(caught_, false) || catcher_.clear_pending() != 0;
  }
  // A wait has started its own watcher: the catcher stops (it keeps its claim
  // on the signal until the wait's watcher holds one).
  void enter(SignalAwaitable& wait) noexcept;
  // A wait ends, before its watcher stops: the catcher starts again when no
  // wait is left. `kept`: it was cancelled with its signal pending, which the
  // next await gets.
  void leave(SignalAwaitable& wait, bool kept) noexcept;
  // A claim that nothing ever waited on (its first wait failed to start).
  bool unused() const noexcept { return waits_ == nullptr && !catcher_.is_active() && !caught_; }

 private:
  static constexpr char kind_tag = 0;
  Loop* loop_;
  Signal catcher_;
  SignalAwaitable* waits_ = nullptr;  // the task's awaits of the signal now waiting
  bool caught_ = false;
};

/// The awaitable returned by evw::signal().
class [[nodiscard]] SignalAwaitable {
 public:
  SignalAwaitable(Loop& loop, int signum) noexcept : loop_(&loop), signum_(signum) {}
  // Before it is awaited only (when_any and with_timeout move it into a task).
  SignalAwaitable(SignalAwaitable&& other) noexcept : loop_(other.loop_), signum_(other.signum_) {}
  SignalAwaitable& operator=(SignalAwaitable&&) = delete;
  // Cancelled while waiting: the task's catcher takes over, with the signal if
  // it had come for this wait and not yet been delivered.
  ~SignalAwaitable() {
    if (claim_ != nullptr) claim_->leave(*this, watcher_->is_pending());
  }

  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> awaiting) {
    SignalClaim* claim = nullptr;
    if constexpr (std::is_base_of_v<FrameScope, P>) {
      FrameScope& root = awaiting.promise().root();
      claim = &SignalClaim::of(root, *loop_, signum_);  // may throw (bad signum)
      if (claim->take()) {  // it came between two awaits: go on at once
        revents_ = Event::Signal;
        return false;
      }
      try {
        start(awaiting);
      } catch (...) {
        if (claim->unused()) root.remove_resource(*claim);
        throw;
      }
      claim->enter(*this);
      claim_ = claim;
    } else {
      start(awaiting);  // not an evw task: this wait alone catches the signal
    }
    return true;
  }
  /// The revents of the event that ended the wait: Event::Signal.
  int await_resume() const noexcept { return revents_; }

  /// The watcher while awaited (e.g. to set its priority), else nullptr.
  Signal* watcher() noexcept { return watcher_ ? &*watcher_ : nullptr; }

 private:
  friend class SignalClaim;

  void start(std::coroutine_handle<> awaiting) {
    watcher_.reset();
    watcher_.emplace(*loop_, signum_, [this, awaiting](Signal& w, int revents) {
      revents_ = revents;
      if (SignalClaim* claim = std::exchange(claim_, nullptr)) claim->leave(*this, false);
      w.stop();
      awaiting.resume();  // may destroy *this: touch nothing after
    });
    watcher_->start();  // std::logic_error if another loop watches the signal
  }

  Loop* loop_;
  int signum_;
  std::optional<Signal> watcher_;
  SignalClaim* claim_ = nullptr;  // set while waiting in a task
  SignalAwaitable* prev_ = nullptr;  // in claim_'s list of waits
  SignalAwaitable* next_ = nullptr;
  int revents_ = 0;
};

inline void SignalClaim::enter(SignalAwaitable& wait) noexcept {
  wait.prev_ = nullptr;
  wait.next_ = waits_;
  if (waits_ != nullptr) waits_->prev_ = &wait;
  waits_ = &wait;
  catcher_.stop();  // not pending: take() cleared it
}

inline void SignalClaim::leave(SignalAwaitable& wait, bool kept) noexcept {
  if (wait.prev_ != nullptr) wait.prev_->next_ = wait.next_;
  else waits_ = wait.next_;
  if (wait.next_ != nullptr) wait.next_->prev_ = wait.prev_;
  wait.prev_ = wait.next_ = nullptr;
  caught_ = caught_ || kept;
  if (waits_ == nullptr && catcher_.is_attached()) {
    try {
      catcher_.start();
    } catch (...) {
      // No descriptor left for the probe (EMFILE): until the next await the
      // signal has its old disposition, as with a plain one-shot wait.
    }
  }
}

inline SignalClaim::~SignalClaim() {
  // Waits outlive the task's root only if their frames are destroyed after
  // it: they find no claim.
  for (SignalAwaitable* w = waits_; w != nullptr; w = std::exchange(w->next_, nullptr)) {
    w->claim_ = nullptr;
    w->prev_ = nullptr;
  }
}

}  // namespace detail

/// @brief Wait for `duration` (seconds or a std::chrono duration) of loop time
/// (a one-shot Timer). A duration <= 0 resumes in the next loop iteration.
/// @return the revents: Event::Timer.
/// @throws (at co_await) std::invalid_argument if duration is not finite.
[[nodiscard]] inline auto sleep(Loop& loop, Seconds duration) {
  return detail::WatcherAwaitable<Timer, Seconds, Seconds>(loop, duration, Seconds(0.0));
}

/// @brief Wait until signum is received (a Signal watcher). In an evw task,
/// the signal stays caught from the task's first such await until the task
/// ends, and one received between two awaits is delivered to the next one
/// (see the caveats above).
/// @return the revents: Event::Signal.
/// @throws (at co_await) std::invalid_argument for a bad signal number;
///         std::logic_error if another loop watches the signal.
[[nodiscard]] inline detail::SignalAwaitable signal(Loop& loop, int signum) {
  return detail::SignalAwaitable(loop, signum);
}

/// @brief A watcher of type W that coroutines await again and again, one
/// event at a time: `co_await watch.next()`. For watchers with state worth
/// keeping between events, e.g. a Gpio (constructing one exports the line).
///
/// next() starts the watcher, and it stays active while the coroutine keeps
/// coming back to next() (no start/stop per event). An event that arrives
/// while nobody awaits is kept (its revents) and stops the watcher, so a
/// level-triggered watcher does not spin while the coroutine is busy
/// elsewhere; the next next() returns it at once (if you restart the watcher
/// yourself in between, it comes along with the next event instead). One
/// coroutine at a time may await it.
/// Destroying the Watch while a coroutine awaits it leaves that coroutine
/// suspended for good (destroying its Task is still safe).
template <class W>
class Watch {
 public:
  /// @brief Construct the watcher as `W(loop, args..., callback)`, stopped.
  /// @throws what W's constructor throws.
  template <class... Args>
  explicit Watch(Loop& loop, Args&&... args)
      : watcher_(loop, std::forward<Args>(args)..., [this](W& w, int revents) {
          if (Next* next = next_) [[likely]] {
            next_ = nullptr;
            // (kept_ is 0 unless the watcher was restarted by hand while an event
            // was kept: that event comes along with this one.)
            next->revents_ = revents | std::exchange(kept_, 0);
            next->awaiting_.resume();  // may destroy this Watch: touch nothing after
          } else {
            kept_ |= revents;  // nobody waits: keep it for the next next(), and stop spinning
            w.stop();
          }
        }) {}
  ~Watch() {
    if (next_ != nullptr) next_->awaiting_ = nullptr;  // its coroutine is never resumed
  }
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  /// The watcher (e.g. for value(), set(), set_priority()).
  W& watcher() noexcept { return watcher_; }
  const W& watcher() const noexcept { return watcher_; }
  W* operator->() noexcept { return &watcher_; }
  const W* operator->() const noexcept { return &watcher_; }

  /// The awaitable returned by next().
  class Next {
   public:
    explicit Next(Watch& watch) noexcept : watch_(&watch) {}
    Next(Next&& other) noexcept : watch_(std::exchange(other.watch_, nullptr)) {}
    Next& operator=(Next&&) = delete;
    ~Next() {
      // Cancelled while suspended: give the watcher back, stopped. (Resumed
      // normally, awaiting_ was cleared by await_resume, and the compiler
      // drops this test.)
      if (awaiting_) [[unlikely]] {
        watch_->next_ = nullptr;
        watch_->watcher_.stop();
      }
    }
    // The hot path of a coroutine looping on next() is await_suspend with the
    // watcher still active: two tests and two stores.
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> awaiting) {
      Watch* watch = watch_;
      if (watch == nullptr || watch->next_ != nullptr) [[unlikely]] throw_misuse(watch);
      // Still active from the last wait, unless this is the first one, an event
      // came while nobody waited (and was kept), or someone stopped it.
      if (!watch->watcher_.is_active()) [[unlikely]] {
        if (watch->kept_ != 0) {  // go on at once with it
          revents_ = std::exchange(watch->kept_, 0);
          return false;
        }
        watch->watcher_.start();  // if it throws, nothing is registered
      }
      awaiting_ = awaiting;
      watch->next_ = this;
      return true;
    }
    /// The revents of the event.
    int await_resume() noexcept {
      awaiting_ = nullptr;
      return revents_;
    }

   private:
    friend class Watch;
    [[noreturn, gnu::cold, gnu::noinline]] static void throw_misuse(const Watch* watch) {
      if (watch == nullptr) throw std::logic_error("evw::Watch: awaiting a moved-from next()");
      throw std::logic_error("evw::Watch: next() is already awaited by another coroutine");
    }

    Watch* watch_;                      // null when moved from
    std::coroutine_handle<> awaiting_;  // set while suspended (registered as next_)
    int revents_;  // set before await_resume
  };

  /// @brief Await the watcher's next event; returns its revents.
  /// @throws (at co_await) what W::start() throws; std::logic_error if another
  ///         coroutine is awaiting this Watch.
  [[nodiscard]] Next next() noexcept { return Next(*this); }
  /// @brief The same as next(), named for GPIO: `co_await button.edge()` on a
  ///        Watch<Gpio> or Watch<GpioLine> waits for the next edge event.
  [[nodiscard]] Next edge() noexcept { return Next(*this); }

 private:
  W watcher_;
  Next* next_ = nullptr;  // the suspended await, if any
  int kept_ = 0;          // revents of events nobody awaited yet
};

}  // namespace evw
