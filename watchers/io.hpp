// evw::Io — readiness of a file descriptor for reading and/or writing.
//
// Caveats (libev's, kept): level-triggered, so a callback that does not
// consume the data is called again next iteration; register the fd, not the
// file: after close() stop the watcher before the number is reused. Regular
// files are always "ready". For EPOLLPRI (urgent data, GPIO) use evw::Priority:
// libev's ev_io has no bit for it. Several Io watchers may watch one fd.
//
// revents: Event::Read and/or Event::Write as asked; Event::Error | Event::Read |
// Event::Write (libev's way) when the fd was closed under the watcher or the
// backend refused it: the watcher is already stopped then. Plus whatever feed() passes.
#pragma once

#include <cstddef>
#include <cstring>

#include "../core/loop.hpp"
#include "../core/watcher.hpp"

namespace evw {

/// Watches an fd for Event::Read and/or Event::Write (libev's ev_io).
class Io final : public detail::Watcher<Io> {
 public:
  /// @brief A stopped watcher of fd for events (Event::Read, Event::Write or both).
  /// @throws std::invalid_argument if fd < 0 or events is empty or has bits
  ///         other than Event::Read|Event::Write; if cb is empty.
  Io(Loop& loop, int fd, int events, Callback cb);
  ~Io();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Io(Io&& other);
  Io& operator=(Io&& other) { return move_assign(other); }
  /// @brief Watch another fd and/or events; allowed while active or pending
  /// (restarts, keeps a pending event). @throws as the constructor, and as start().
  void set(int fd, int events);
  /// @brief Same fd, other events.
  void set_events(int events) { set(fd(), events); }
  /// @brief The fd watched. (Inline: read from libev's struct at the offset io.cpp checks.)
  int fd() const noexcept { return field(fd_offset); }
  /// @brief Event::Read and/or Event::Write.
  int events() const noexcept { return field(fd_offset + sizeof(int)) & (Event::Read | Event::Write); }

 private:
  // @throws std::system_error(EBADF) if the fd is not open.
  void start_impl() override;
  void stop_impl() noexcept override;
  void rehome_start_impl(WatcherBase& from, bool active) noexcept override;
  // ev_io's fd and events follow three ints and three pointers (checked
  // against <ev.h> in io.cpp, which keeps libev out of this header).
  static constexpr std::size_t fd_offset =
      (3 * sizeof(int) + alignof(void*) - 1) / alignof(void*) * alignof(void*) + 3 * sizeof(void*);
  int field(std::size_t offset) const noexcept {
    int v;
    std::memcpy(&v, ev_.bytes + offset, sizeof v);
    return v;
  }
  detail::EvStorage<48> ev_;
};

}  // namespace evw
