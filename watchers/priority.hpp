// evw::Priority — exceptional conditions (EPOLLPRI) on any pollable fd.
//
// What libev's ev_io cannot watch: TCP urgent data (send(..., MSG_OOB)), a
// sysfs GPIO interrupt, other drivers' POLLPRI.
//
// Caveats: level-triggered like Io: the callback must clear the condition
// (recv(fd, &c, 1, MSG_OOB) for urgent data, lseek+read for sysfs) or it is
// called again next iteration; after Event::Hup or Event::Error stop the watcher or close the
// fd, or it keeps firing. start() throws std::system_error for fds epoll
// refuses: EPERM for regular files, EBADF for closed ones. With SO_OOBINLINE
// the urgent byte is read inline and EPOLLPRI stays until it is consumed.
// Several Priority watchers may watch one fd; each is called.
//
// revents: Event::Pri for EPOLLPRI (the EPOLLERR sysfs always adds to it
// is still plain Event::Pri); Event::Error for EPOLLERR alone; Event::Hup for
// EPOLLHUP (alone or with one of the others). Plus whatever feed() passes.
#pragma once

#include "../core/exceptional.hpp"
#include "../core/loop.hpp"
#include "../core/watcher.hpp"

namespace evw {

/// Calls back when fd has an exceptional condition (EPOLLPRI).
class Priority final : public detail::ExceptWatcher<Priority> {
 public:
  /// @brief A stopped watcher of fd.
  /// @throws std::invalid_argument if fd < 0 or cb is empty.
  Priority(Loop& loop, int fd, Callback cb);
  ~Priority();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// The fd stays registered with the kernel: the loop's queue is re-pointed.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Priority(Priority&& other);
  Priority& operator=(Priority&& other) { return move_assign(other); }
  /// @brief Watch another fd; allowed while active or pending (restarts,
  /// keeps a pending event). @throws as the constructor, and as start().
  void set(int fd);
  int fd() const noexcept { return node_.fd; }

 private:
  // start() @throws std::system_error (EPERM, EBADF, EMFILE for the loop's queue).
  detail::EvStorage<32> ev_;  // never started in libev: the loop's EPOLLPRI table drives it
};

}  // namespace evw
