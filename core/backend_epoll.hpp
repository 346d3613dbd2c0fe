// Internal (not installed): the exceptional-condition backend on Linux, an
// inner epoll instance (see backend.hpp for the interface).
//
// Quirks handled here:
//  a) epoll reports EPOLLERR and EPOLLHUP whether asked or not; sysfs adds
//     EPOLLERR to every EPOLLPRI, so EPOLLERR with EPOLLPRI is plain Event::Pri;
//     EPOLLERR alone is Event::Error, the one error bit of every watcher.
//  b) epoll refuses regular files with EPERM (they are always ready); that is
//     reported, not papered over as libev does for ev_io.
//  c) epoll registers a (fd number, open file) pair and drops it only when the
//     file is closed everywhere: close() of one dup leaves it armed under a
//     number that may already name another file, and DEL can no longer reach
//     it. Events carry a tag (a per-fd generation) so the table can tell such
//     stale events from live ones; modify() re-adds on ENOENT.
//  d) a DEL that failed leaves the fd registered: add() then gets EEXIST and
//     modifies it instead (its events were stale meanwhile, by tag).
// Every call goes through sys:: (the fault-injection seam); EINTR is retried.
#pragma once

#include <sys/epoll.h>

#include <cerrno>
#include <cstdint>

#include "events.hpp"
#include "sys.hpp"

namespace evw::detail {

// evw bits for epoll's (events >> 1) & 0xf: EPOLLPRI is bit 0 of that,
// EPOLLERR bit 2, EPOLLHUP bit 3 (EPOLLIN, bit 1, is never asked for).
static_assert(EPOLLPRI == 1 << 1 && EPOLLERR == 1 << 3 && EPOLLHUP == 1 << 4);
constexpr int epoll_revents(unsigned bits) {
  const unsigned e = bits << 1;
  return ((e & EPOLLPRI) ? Event::Pri : (e & EPOLLERR) ? Event::Error : 0) | ((e & EPOLLHUP) ? Event::Hup : 0);
}
static constexpr int kEpollRevents[16] = {
    epoll_revents(0),  epoll_revents(1),  epoll_revents(2),  epoll_revents(3),
    epoll_revents(4),  epoll_revents(5),  epoll_revents(6),  epoll_revents(7),
    epoll_revents(8),  epoll_revents(9),  epoll_revents(10), epoll_revents(11),
    epoll_revents(12), epoll_revents(13), epoll_revents(14), epoll_revents(15)};

class ExceptBackend {
 public:
  /// @throws std::system_error (EMFILE, ENOMEM, ...).
  ExceptBackend();
  ~ExceptBackend();
  ExceptBackend(const ExceptBackend&) = delete;
  ExceptBackend& operator=(const ExceptBackend&) = delete;

  int pollable_fd() const noexcept { return epfd_; }
  void add(int fd, unsigned tag);
  void modify(int fd, unsigned tag);
  void remove(int fd) noexcept;

  /// One ready registration, as the kernel reports it; decoded by the
  /// accessors below only when the table gets to it.
  using Ready = epoll_event;
  static int fd_of(const Ready& r) noexcept { return static_cast<int>(static_cast<std::uint32_t>(r.data.u64)); }
  static unsigned tag_of(const Ready& r) noexcept { return static_cast<unsigned>(r.data.u64 >> 32); }
  static int revents_of(const Ready& r) noexcept { return kEpollRevents[(r.events >> 1) & 0xf]; }

  /// Up to max ready registrations, without blocking (EINTR is retried).
  /// @return how many, or -errno if the queue could not be read (the
  /// conditions stay queued then).
  int drain(Ready* out, int max) noexcept {
    int n;
    do n = sys::epoll_wait(epfd_, out, max, 0);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
  }

 private:
  int ctl(int op, int fd, unsigned tag) noexcept;
  [[noreturn]] static void fail(const char* op, int fd);
  int epfd_;
};

}  // namespace evw::detail
