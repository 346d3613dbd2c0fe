// evw::CgroupEvents — a cgroup v2 group became populated or empty, frozen or
// thawed: its `cgroup.events` file, read as populated() and frozen().
//
// What service managers wait for: `populated 0` says that no process is left
// in the group or any group below it (the service has really ended, its
// stray children included). It is an evw::Attr on <dir>/cgroup.events with
// the two fields parsed after each read.
//
// Caveats:
// - cgroup v2 only (the unified hierarchy, e.g. /sys/fs/cgroup or, on a
//   hybrid system, /sys/fs/cgroup/unified). A v1 directory has no
//   cgroup.events: the constructor throws ENOENT.
// - Changes coalesce: a group that is populated and emptied again between two
//   reads calls back with populated() as before (still one callback). Look at
//   the fields, not at the number of callbacks.
// - A change while stopped stays latched and comes (once) after start().
// - frozen() needs Linux 5.2 (cgroup.freeze); before, it stays false.
// - Removing the group (rmdir, possible only once it is empty: populated 0
//   came before) raises no event: kernfs wakes nobody. The next read (an
//   event fed with feed(), or set()) fails: the watcher stops itself and
//   calls back once with Event::Error, error() being ENODEV.
//
// revents: Event::Pri when cgroup.events changed (populated() and frozen()
// are the new values); Event::Error once when it can no longer be read (the
// watcher has stopped itself; error() says why). Plus whatever feed() passes.
#pragma once

#include <string>
#include <system_error>

#include "../core/exceptional.hpp"
#include "../core/loop.hpp"
#include "../core/watcher.hpp"
#include "attr.hpp"

namespace evw {

namespace detail {
struct CgroupEventsTrampoline;
}

/// Calls back when a cgroup v2 group's `cgroup.events` changes (populated,
/// frozen): revents Event::Pri with populated() and frozen() up to date;
/// Event::Error once if it can no longer be read (e.g. the group was removed).
class CgroupEvents final : public detail::ExceptWatcher<CgroupEvents> {
 public:
  /// @brief Opens <cgroup>/cgroup.events and reads it (the priming read).
  ///        The watcher is stopped.
  /// @param cgroup a cgroup v2 directory, e.g. "/sys/fs/cgroup/system.slice/x.service".
  /// @throws std::invalid_argument if cgroup or cb is empty;
  ///         std::system_error naming the call and the file (ENOENT: not a
  ///         cgroup v2 directory).
  CgroupEvents(Loop& loop, std::string cgroup, Callback cb);
  ~CgroupEvents();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, group and its last fields, active state; a pending event is delivered once,
  /// from here); `other` is left stopped and empty. The open file goes
  /// along (nothing is closed or reopened: a latched change stays latched).
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  CgroupEvents(CgroupEvents&& other);
  CgroupEvents& operator=(CgroupEvents&& other) { return move_assign(other); }

  /// @brief Watch another group; allowed while active or pending (restarts,
  ///        keeps a pending event). @throws as the constructor; then the
  ///        watcher keeps its old group.
  void set(std::string cgroup);

  /// @brief In a coroutine: `co_await events.next()` waits for the next
  ///        change, after this watcher's callback. Needs <evw/coro/coro.hpp>.
  template <class Self = CgroupEvents>
  [[nodiscard]] detail::EdgeAwaitable<Self> next() noexcept {
    return detail::EdgeAwaitable<Self>(static_cast<Self&>(*this));
  }
  template <class>
  friend class detail::EdgeAwaitable;

  /// True while a process is in the group or below it (at the last read).
  bool populated() const noexcept { return populated_; }
  /// True while the group is frozen (cgroup.freeze; at the last read).
  bool frozen() const noexcept { return frozen_; }
  /// The cgroup directory.
  const std::string& cgroup() const noexcept { return cgroup_; }
  /// The text of cgroup.events at the last read, without its trailing newline.
  const std::string& text() const noexcept { return text_; }
  /// Why the watcher stopped itself with Event::Error, else empty; cleared by start().
  std::error_code error() const noexcept { return error_; }
  /// The open cgroup.events file (owned by the watcher).
  int fd() const noexcept { return file_.fd(); }

 private:
  friend struct detail::CgroupEventsTrampoline;
  void start_impl() override;
  void on_condition(int revents) noexcept;
  void parse() noexcept;

  detail::EvStorage<32> ev_;  // never started in libev: the loop's EPOLLPRI table drives it
  detail::AttrFile file_;
  std::string cgroup_;
  std::string text_;
  std::string scratch_;
  bool populated_ = false;
  bool frozen_ = false;
  std::error_code error_;
};

}  // namespace evw
