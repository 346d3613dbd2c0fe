#include "sys.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434  // Linux 5.3; one number on every architecture but alpha
#endif

namespace evw::detail::sys {
namespace {

int open_fixed(const char* path, int flags, mode_t mode) { return ::open(path, flags, mode); }
int fcntl_fixed(int fd, int cmd, long arg) { return ::fcntl(fd, cmd, arg); }
int ioctl_fixed(int fd, unsigned long request, void* arg) { return ::ioctl(fd, request, arg); }
int eventfd_fixed(unsigned initval, int flags) { return ::eventfd(initval, flags); }
// ::stat may be a macro-free inline wrapper in older glibc: take no address of it.
int stat_fixed(const char* path, struct stat* st) { return ::stat(path, st); }
int fstatfs_fixed(int fd, struct statfs* st) { return ::fstatfs(fd, st); }
int pidfd_open_fixed(pid_t pid, unsigned flags) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, flags));
}
int waitid_fixed(idtype_t idtype, id_t id, siginfo_t* info, int options) {
  return ::waitid(idtype, id, info, options);
}

}  // namespace

// Constant-initialized: no static-initialization order to worry about.
constexpr Table libc = {
    ::epoll_create1, ::epoll_ctl, ::epoll_wait, open_fixed, ::read, ::write,
    ::lseek,         fcntl_fixed, ioctl_fixed,  eventfd_fixed, ::close,
    ::poll,          stat_fixed,
    ::socket,        ::connect,   fstatfs_fixed, pidfd_open_fixed, waitid_fixed,
};
constinit Table table = libc;

}  // namespace evw::detail::sys
