// evw::Child — a child process changed state (libev's ev_child), or, in any
// other loop than the default one, exited (a pidfd).
//
// Two forms, chosen by the loop:
// - On Loop::default_loop(), which owns SIGCHLD: libev's ev_child. When the
//   default loop runs, libev reaps every child of the process (waitpid(-1,
//   ...)) and hands the status to the Child watchers of that pid (or of pid
//   0, any child); a status nobody watches is lost, so do not mix with your
//   own waitpid() while the default loop runs. With trace, stops and continues
//   (WIFSTOPPED, WIFCONTINUED) are reported too, not only exits.
// - On any other loop: a pidfd (pidfd_open, Linux 5.3; waitid(P_PIDFD), 5.4)
//   watched for POLLIN. It reaps only its own child, at its exit, so several
//   loops (threads) can each wait for their own children, and your own
//   waitpid(pid, ...) for other children is undisturbed. It needs pid > 0 and
//   no trace (a pidfd reports only the exit): pid 0 or trace there throws
//   std::logic_error. start() opens the pidfd, so the child must exist then
//   (a zombie is fine: its exit is reported at once). After the exit the
//   watcher has stopped itself (the pid is gone). Caveat: while the default
//   loop runs in this process (any thread), libev's waitpid(-1, ...) may reap
//   the child first; the watcher then calls back with Event::Error, error()
//   ECHILD and no status. Do not use Child on the default loop together with
//   pidfd Child watchers on other loops.
// Start the watcher before the loop next runs after fork(); a child that
// exited earlier is still reported then. libev delivers child events at
// max_priority and forces that priority on the watcher, so a Child watcher
// always has priority max_priority (set_priority to anything else throws);
// the pidfd form keeps the same rule.
//
// revents: Event::Child (rpid(), rstatus() say which and how); the pidfd form
// also Event::Error once when the status could not be had (error() says why,
// the watcher has stopped itself). Plus whatever feed() passes.
#pragma once

#include <system_error>

#include "../core/loop.hpp"
#include "../core/watcher.hpp"

namespace evw {

namespace detail {
struct ChildPidfd;
}

/// Calls back when a child process (a given pid, or any) exits, or with
/// trace also when it stops or continues.
class Child final : public detail::Watcher<Child> {
 public:
  /// @brief A stopped watcher of pid's exit (0: any child).
  /// @throws std::logic_error outside the default loop for pid 0 or trace
  ///         (a pidfd watches one child's exit only);
  ///         std::invalid_argument if pid < 0 or cb is empty.
  ///         start() outside the default loop: std::system_error from
  ///         pidfd_open (ESRCH: no such process; ENOSYS: before Linux 5.3)
  ///         or waitid (ECHILD: not a child of this process).
  Child(Loop& loop, int pid, Callback cb);
  /// @brief As above; with trace also stops and continues.
  Child(Loop& loop, int pid, bool trace, Callback cb);
  ~Child();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Child(Child&& other);
  Child& operator=(Child&& other) { return move_assign(other); }
  /// @brief Watch another pid; allowed while active or pending (keeps a
  /// pending event). @throws std::invalid_argument if pid < 0;
  /// std::logic_error as the constructor; as start().
  void set(int pid, bool trace = false);
  int pid() const noexcept;         ///< the pid watched (0: any)
  bool trace() const noexcept;      ///< true if stops and continues are reported
  int rpid() const noexcept;        ///< the pid of the last status received (0 before)
  int rstatus() const noexcept;     ///< its status, for WIFEXITED/WEXITSTATUS etc. (0 before)
  /// True on a loop other than the default one: the pidfd form.
  bool uses_pidfd() const noexcept { return pidfd_form_; }
  /// The pidfd form: why it stopped itself with Event::Error, else empty; cleared by start().
  std::error_code error() const noexcept { return error_; }

 private:
  friend struct detail::ChildPidfd;
  // Only max_priority: libev's rule for child watchers.
  void check_priority(int pri) const override;
  void start_impl() override;
  void stop_impl() noexcept override;
  // A move of the pidfd form hands the pidfd over (no close and reopen).
  void rehome_stop_impl() noexcept override;
  void rehome_start_impl(WatcherBase& from, bool active) noexcept override;
  detail::EvStorage<56> ev_;
  // The pidfd form (loops other than the default one): its own ev_io on the
  // pidfd; the status is delivered by feeding ev_, which is never started.
  bool active_impl() const noexcept override;
  bool pending_impl() const noexcept override;
  int take_pending() noexcept override;
  bool pidfd_form_ = false;
  int pidfd_ = -1;
  detail::EvStorage<48> pidfd_io_;
  std::error_code error_;
};

}  // namespace evw
