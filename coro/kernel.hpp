// evw coroutines — the kernel's notifications as awaitables:
//
//   int status = co_await evw::child_exit(loop, pid);   // WIFEXITED(status), WEXITSTATUS(status)
//   co_await pressure.next();                            // a Pressure, Mounts, Attr or CgroupEvents:
//   co_await mounts.next();                              //   its next event, after its callback
//
// child_exit() waits for one child's exit with a Child watcher of its own: on
// the default loop libev's SIGCHLD form, on any other loop a pidfd (which
// reaps only that child). next() of the watchers is coro/edge.hpp's relay.
//
// Caveats:
// - child_exit(): the child must exist when the coroutine suspends on another
//   loop than the default one (a pidfd is opened then; a zombie is fine);
//   std::system_error otherwise (ESRCH, ECHILD). On the default loop a child
//   that already exited and was reaped is never reported (as for Child).
// - A status lost to someone else's waitpid (the pidfd form's Event::Error)
//   is thrown as std::system_error (ECHILD) at the co_await.
// - Destroying the suspended coroutine stops the watcher; the child is not
//   killed or reaped.
#pragma once

#include <sys/wait.h>

#include <coroutine>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "../core/events.hpp"
#include "../core/loop.hpp"
#include "../watchers/child.hpp"
#include "edge.hpp"

namespace evw {

namespace detail {

/// Awaits the exit of one child; co_await gives its wait status.
class ChildExitAwaitable {
 public:
  ChildExitAwaitable(Loop& loop, int pid) noexcept : loop_(&loop), pid_(pid) {}
  // Before it is awaited only (the watcher does not exist yet).
  ChildExitAwaitable(ChildExitAwaitable&& other) noexcept : loop_(other.loop_), pid_(other.pid_) {}
  ChildExitAwaitable& operator=(ChildExitAwaitable&&) = delete;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> awaiting) {
    child_.reset();
    child_.emplace(*loop_, pid_, [this, awaiting](Child& w, int revents) {
      if ((revents & Event::Error) != 0) {
        error_ = w.error() ? w.error() : std::make_error_code(std::errc::no_child_process);
      } else {
        const int status = w.rstatus();
        // Stops and continues never come without trace; an exit or a signal death ends it.
        if (!WIFEXITED(status) && !WIFSIGNALED(status)) return;
        status_ = status;
      }
      w.stop();
      awaiting.resume();  // may destroy *this: touch nothing after
    });
    child_->start();  // if it throws, the exception comes out of co_await
  }
  /// The wait status (for WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG).
  /// @throws std::system_error if the status was taken by another waiter.
  int await_resume() const {
    if (error_) throw std::system_error(error_, "evw::child_exit: pid " + std::to_string(pid_));
    return status_;
  }

 private:
  Loop* loop_;
  int pid_;
  std::optional<Child> child_;  // destroyed (stopped) with the awaitable: cancels the wait
  int status_ = 0;
  std::error_code error_;
};

}  // namespace detail

/// @brief Wait for the child `pid` to exit (a Child watcher: libev's on the
///        default loop, a pidfd on any other).
/// @return (at co_await) its wait status: WIFEXITED(s) and WEXITSTATUS(s), or WIFSIGNALED(s).
/// @throws std::invalid_argument (at the call) if pid <= 0 (use a Child
///         watcher for "any child"); (at co_await) std::system_error from
///         pidfd_open/waitid on other loops (ESRCH, ECHILD), or ECHILD if
///         another waiter reaped the child first.
[[nodiscard]] inline detail::ChildExitAwaitable child_exit(Loop& loop, int pid) {
  if (pid <= 0)
    throw std::invalid_argument("evw::child_exit: pid " + std::to_string(pid) + " must be positive");
  return detail::ChildExitAwaitable(loop, pid);
}

}  // namespace evw
