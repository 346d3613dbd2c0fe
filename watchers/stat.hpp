// evw::Stat — a file's attributes changed (libev's ev_stat).
//
// The watcher lstat()s the path and calls back whenever the result differs
// from the previous one (size, times, links, owner, mode, inode, device);
// attr() is the new state, prev() the one before. A path that does not exist
// (or vanished) has attr().st_nlink == 0. On Linux libev uses inotify when it
// can and polls every `interval` seconds otherwise (interval 0: libev's
// default, about 5 s; libev raises smaller non-zero values to about 0.1 s).
//
// Caveats (libev's): timestamps compare in whole seconds, so two changes that
// keep the size within one second may be seen as one or none; use an
// absolute path (a relative one is resolved against the current directory
// at every check); attr() holds the result of the last check, refresh() takes
// a new one without calling back. The watcher owns a copy of the path.
//
// revents: Event::Stat. Plus whatever feed() passes.
#pragma once

#include <sys/stat.h>

#include <string>

#include "../core/loop.hpp"
#include "../core/time.hpp"
#include "../core/watcher.hpp"

namespace evw {

/// Calls back when lstat(path) changes.
class Stat final : public detail::Watcher<Stat> {
 public:
  /// @brief A stopped watcher of path, polled every `interval` seconds where
  /// inotify does not help (0: libev's default).
  /// @throws std::invalid_argument if path is empty or contains a NUL byte,
  ///         if interval is negative, infinite or NaN; if cb is empty.
  Stat(Loop& loop, std::string path, Seconds interval, Callback cb);
  ~Stat();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// A change the old watcher had not noticed yet is reported by the new one.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Stat(Stat&& other);
  Stat& operator=(Stat&& other) { return move_assign(other); }
  /// @brief Watch another path and/or interval; allowed while active or
  /// pending (restarts, keeps a pending event). @throws as the constructor.
  void set(std::string path, Seconds interval);
  const std::string& path() const noexcept { return path_; }
  /// @brief The polling interval (as libev uses it once started).
  double interval() const noexcept;
  /// @brief The attributes found by the last check (zeroed before the first start).
  const struct stat& attr() const noexcept;
  /// @brief The attributes before the last change (zeroed before the first change).
  const struct stat& prev() const noexcept;
  /// @brief lstat() the path now into attr(), without calling back (ev_stat_stat).
  /// @throws std::logic_error if the loop is gone.
  void refresh();

 private:
  void start_impl() override;
  void stop_impl() noexcept override;
  void rehome_start_impl(WatcherBase& from, bool active) noexcept override;
  std::string path_;  // libev keeps only the pointer
  detail::EvStorage<400> ev_;
};

}  // namespace evw
