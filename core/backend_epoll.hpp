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
//  e) EPOLLEXCLUSIVE is accepted only by ADD, and a registration made with it
//     refuses every MOD (EINVAL): its changes are a DEL and a new ADD.
// Every call goes through sys:: (the fault-injection seam); EINTR is retried.
#pragma once

#include <sys/epoll.h>

#include <cerrno>
#include <cstdint>

#include "events.hpp"
#include "sys.hpp"

namespace evw::detail {

// evw bits for epoll's events & 0x1f (EPOLLIN, EPOLLPRI, EPOLLOUT, EPOLLERR,
// EPOLLHUP); EPOLLRDHUP (0x2000) is Event::RdHup (0x20) shifted, see revents_of.
static_assert(EPOLLIN == 1 && EPOLLPRI == 1 << 1 && EPOLLOUT == 1 << 2 && EPOLLERR == 1 << 3 &&
              EPOLLHUP == 1 << 4 && EPOLLRDHUP >> 8 == Event::RdHup);
constexpr int epoll_revents(unsigned e) {
  return ((e & EPOLLIN) ? Event::Read : 0) | ((e & EPOLLOUT) ? Event::Write : 0) |
         ((e & EPOLLPRI) ? Event::Pri : (e & EPOLLERR) ? Event::Error : 0) | ((e & EPOLLHUP) ? Event::Hup : 0);
}
static constexpr auto kEpollRevents = [] {
  struct Table {
    int bits[32];
  } table{};
  for (unsigned e = 0; e < 32; ++e) table.bits[e] = epoll_revents(e);
  return table;
}();

/// The epoll events for evw's (Event::Read, Write, Pri, RdHup) and Poll's mode
/// bits (PollMode::Edge, OneShot, Exclusive).
constexpr unsigned epoll_events(int events, int mode) {
  return ((events & Event::Read) ? unsigned{EPOLLIN} : 0u) | ((events & Event::Write) ? unsigned{EPOLLOUT} : 0u) |
         ((events & Event::Pri) ? unsigned{EPOLLPRI} : 0u) | ((events & Event::RdHup) ? unsigned{EPOLLRDHUP} : 0u) |
         ((mode & PollMode::Edge) ? unsigned{EPOLLET} : 0u) | ((mode & PollMode::OneShot) ? unsigned{EPOLLONESHOT} : 0u) |
         ((mode & PollMode::Exclusive) ? unsigned{EPOLLEXCLUSIVE} : 0u);
}

class ExceptBackend {
 public:
  /// @throws std::system_error (EMFILE, ENOMEM, ...).
  ExceptBackend();
  ~ExceptBackend();
  ExceptBackend(const ExceptBackend&) = delete;
  ExceptBackend& operator=(const ExceptBackend&) = delete;

  int pollable_fd() const noexcept { return epfd_; }
  /// events: epoll's bits (see epoll_events).
  void add(int fd, unsigned tag, unsigned events);
  void modify(int fd, unsigned tag, unsigned events);
  void remove(int fd) noexcept;

  /// One ready registration, as the kernel reports it; decoded by the
  /// accessors below only when the table gets to it.
  using Ready = epoll_event;
  static int fd_of(const Ready& r) noexcept { return static_cast<int>(static_cast<std::uint32_t>(r.data.u64)); }
  static unsigned tag_of(const Ready& r) noexcept { return static_cast<unsigned>(r.data.u64 >> 32); }
  static int revents_of(const Ready& r) noexcept {
    return kEpollRevents.bits[r.events & 0x1f] | static_cast<int>((r.events >> 8) & Event::RdHup);
  }

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
  int ctl(int op, int fd, unsigned tag, unsigned events) noexcept;
  [[noreturn]] static void fail(const char* op, int fd);
  int epfd_;
};

}  // namespace evw::detail
