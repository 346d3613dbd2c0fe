// evw coroutine awaitables — wait on a watcher from a coroutine:
//
//   int revents = co_await evw::readable(loop, fd);     // Event::Read (Io)
//   co_await evw::writable(loop, fd);                   // Event::Write (Io)
//   co_await evw::urgent(loop, fd);                     // EPOLLPRI (Priority): Event::Pri, Event::Hup or Event::Error
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
// - signal(): the signal is caught only while a coroutine awaits it. In
//   between, its old disposition is back (for SIGTERM/SIGINT: terminate), and
//   a signal sent meanwhile is not remembered. Keep one awaiter waiting (as
//   the examples do) or use an evw::Signal watcher for a steady handler.
// - An awaitable may be moved until it is awaited, not while awaited.
// - The loop must outlive the wait: if the Loop is destroyed first, the watcher
//   is detached and the coroutine is never resumed (destroying its Task is
//   still safe).
#pragma once

#include <coroutine>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../core/events.hpp"
#include "../core/loop.hpp"
#include "../core/time.hpp"
#include "../watchers/io.hpp"
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

/// @brief Wait for `duration` (seconds or a std::chrono duration) of loop time
/// (a one-shot Timer). A duration <= 0 resumes in the next loop iteration.
/// @return the revents: Event::Timer.
/// @throws (at co_await) std::invalid_argument if duration is not finite.
[[nodiscard]] inline auto sleep(Loop& loop, Seconds duration) {
  return detail::WatcherAwaitable<Timer, Seconds, Seconds>(loop, duration, Seconds(0.0));
}

/// @brief Wait until signum is received (a Signal watcher). The signal is
/// caught only while awaited (see the caveats above).
/// @return the revents: Event::Signal.
/// @throws (at co_await) std::invalid_argument for a bad signal number;
///         std::logic_error if another loop watches the signal.
[[nodiscard]] inline auto signal(Loop& loop, int signum) {
  return detail::WatcherAwaitable<Signal, int>(loop, signum);
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
