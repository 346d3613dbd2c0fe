// evw::Child — a child process changed state (libev's ev_child).
//
// Caveats: only on Loop::default_loop(), which owns SIGCHLD (another loop:
// std::logic_error). When the default loop runs, libev reaps every child of
// the process (waitpid(-1, ...)) and hands the status to the Child watchers
// of that pid (or of pid 0, any child); a status nobody watches is lost, so
// do not mix with your own waitpid() while the default loop runs. Start the
// watcher before the default loop next runs after fork(); a child that exited
// earlier is still reported then. libev delivers child events at max_priority and
// forces that priority on the watcher, so a Child watcher always has
// priority max_priority (set_priority to anything else throws). With trace, stops
// and continues (WIFSTOPPED, WIFCONTINUED) are reported too, not only exits.
//
// revents: Event::Child. Plus whatever feed() passes.
#pragma once

#include "../core/loop.hpp"
#include "../core/watcher.hpp"

namespace evw {

/// Calls back when a child process (a given pid, or any) exits, or with
/// trace also when it stops or continues.
class Child final : public detail::Watcher<Child> {
 public:
  /// @brief A stopped watcher of pid's exit (0: any child).
  /// @throws std::logic_error unless loop is the default loop;
  ///         std::invalid_argument if pid < 0 or cb is empty.
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
  /// pending event). @throws std::invalid_argument if pid < 0.
  void set(int pid, bool trace = false);
  int pid() const noexcept;         ///< the pid watched (0: any)
  bool trace() const noexcept;      ///< true if stops and continues are reported
  int rpid() const noexcept;        ///< the pid of the last status received (0 before)
  int rstatus() const noexcept;     ///< its status, for WIFEXITED/WEXITSTATUS etc. (0 before)

 private:
  // Only max_priority: libev's rule for child watchers.
  void check_priority(int pri) const override;
  void start_impl() override;
  void stop_impl() noexcept override;
  detail::EvStorage<56> ev_;
};

}  // namespace evw
