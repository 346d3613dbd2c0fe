// Internal (not installed): the exceptional-condition backend.
//
// libev's backends register only EPOLLIN/EPOLLOUT, so exceptional conditions
// (EPOLLPRI) go through a second, private kernel queue whose own descriptor is
// pollable and watched by the loop. This interface is all watchers and the
// table see of it; each OS gets one implementation file (backend_epoll.cpp
// now; a kqueue EVFILT_EXCEPT or a poll()-thread backend would sit beside it).
#pragma once

#include <memory>

namespace evw::detail {

/// One descriptor with a condition, in evw bits (PRI, ERR, HUP), and the tag
/// it was registered with.
struct ReadyFd {
  int fd;
  int revents;
  unsigned tag;
};

class ExceptBackend {
 public:
  virtual ~ExceptBackend() = default;
  /// Readable while any registered fd has a condition.
  virtual int pollable_fd() const noexcept = 0;
  /// Register fd; its events come back with `tag`.
  /// @throws std::system_error (EPERM for regular files, EBADF).
  virtual void add(int fd, unsigned tag) = 0;
  /// Re-register fd with a new tag, adding it again if the kernel dropped it
  /// (closed and reused). @throws std::system_error.
  virtual void modify(int fd, unsigned tag) = 0;
  /// Unregister fd; a descriptor already closed is not an error. If the
  /// kernel refuses, the registration stays: its events come back with a tag
  /// the table no longer expects, and a later add() takes it over.
  virtual void remove(int fd) noexcept = 0;
  /// Collect up to max ready fds without blocking (EINTR is retried).
  /// @return how many, or -errno if the kernel queue could not be read; the
  /// conditions stay queued then.
  virtual int drain(ReadyFd* out, int max) noexcept = 0;
};

/// The backend for this OS. @throws std::system_error (EMFILE, ENOMEM, ...).
std::unique_ptr<ExceptBackend> make_except_backend();

}  // namespace evw::detail
