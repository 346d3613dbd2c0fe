// Internal (not installed): the one seam for the system calls evw makes.
//
// Every call site in core/ and watchers/ calls these wrappers instead of libc,
// so a test can swap an entry of `table` for one that fails (tests/fault.hpp)
// and check that each failure is reported or retried, never a crash, a leak
// or a half-registered watcher. A wrapper is one indirect call through a
// global table: no branch, no thread-local, the same cost as the libc call
// it replaces. `table` is hidden: libevw.so exports no seam.
#pragma once

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstddef>

namespace evw::detail::sys {

/// The calls, with fixed signatures (libc's open, fcntl and ioctl are
/// variadic; the defaults pass the third argument on).
struct Table {
  int (*epoll_create1)(int flags);
  int (*epoll_ctl)(int epfd, int op, int fd, epoll_event* event);
  int (*epoll_wait)(int epfd, epoll_event* events, int max, int timeout);
  int (*open)(const char* path, int flags, mode_t mode);
  ssize_t (*read)(int fd, void* buf, std::size_t count);
  ssize_t (*write)(int fd, const void* buf, std::size_t count);
  off_t (*lseek)(int fd, off_t offset, int whence);
  int (*fcntl)(int fd, int cmd, long arg);
  int (*ioctl)(int fd, unsigned long request, void* arg);
  int (*eventfd)(unsigned initval, int flags);
  int (*close)(int fd);
  int (*poll)(pollfd* fds, nfds_t nfds, int timeout);
  int (*stat)(const char* path, struct stat* st);
  // The kernel-notification watchers (Pressure, Child's pidfd form):
  int (*socket)(int domain, int type, int protocol);
  int (*connect)(int fd, const sockaddr* addr, socklen_t len);
  int (*fstatfs)(int fd, struct statfs* st);
  int (*pidfd_open)(pid_t pid, unsigned flags);  // syscall(SYS_pidfd_open): glibc < 2.36 lacks it
  int (*waitid)(idtype_t idtype, id_t id, siginfo_t* info, int options);
};

/// The libc calls; what `table` starts as.
extern const Table libc;
/// What evw calls. Tests swap entries and restore them.
extern Table table __attribute__((visibility("hidden")));

inline int epoll_create1(int flags) { return table.epoll_create1(flags); }
inline int epoll_ctl(int epfd, int op, int fd, epoll_event* event) {
  return table.epoll_ctl(epfd, op, fd, event);
}
inline int epoll_wait(int epfd, epoll_event* events, int max, int timeout) {
  return table.epoll_wait(epfd, events, max, timeout);
}
inline int open(const char* path, int flags, mode_t mode = 0) { return table.open(path, flags, mode); }
inline ssize_t read(int fd, void* buf, std::size_t count) { return table.read(fd, buf, count); }
inline ssize_t write(int fd, const void* buf, std::size_t count) { return table.write(fd, buf, count); }
inline off_t lseek(int fd, off_t offset, int whence) { return table.lseek(fd, offset, whence); }
inline int fcntl(int fd, int cmd, long arg = 0) { return table.fcntl(fd, cmd, arg); }
inline int ioctl(int fd, unsigned long request, void* arg) { return table.ioctl(fd, request, arg); }
inline int eventfd(unsigned initval, int flags) { return table.eventfd(initval, flags); }
/// Never retried: Linux releases the descriptor even when close fails (EINTR, EIO).
inline int close(int fd) { return table.close(fd); }
inline int poll(pollfd* fds, nfds_t nfds, int timeout) { return table.poll(fds, nfds, timeout); }
inline int stat(const char* path, struct stat* st) { return table.stat(path, st); }
inline int socket(int domain, int type, int protocol) { return table.socket(domain, type, protocol); }
inline int connect(int fd, const sockaddr* addr, socklen_t len) { return table.connect(fd, addr, len); }
inline int fstatfs(int fd, struct statfs* st) { return table.fstatfs(fd, st); }
inline int pidfd_open(pid_t pid, unsigned flags) { return table.pidfd_open(pid, flags); }
inline int waitid(idtype_t idtype, id_t id, siginfo_t* info, int options) {
  return table.waitid(idtype, id, info, options);
}

/// call() again while it fails with EINTR (a signal arrived first).
template <class Call>
inline auto retry_eintr(Call call) {
  decltype(call()) r;
  do r = call();
  while (r < 0 && errno == EINTR);
  return r;
}

}  // namespace evw::detail::sys
