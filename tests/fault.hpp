// Fault injection for tests: swaps one entry of evw's system-call seam
// (core/sys.hpp) for one that fails chosen calls with a chosen errno, and
// restores it when the scope ends.
//
//   evw_test::Fault f(evw_test::Call::epoll_ctl, EIO, evw_test::op_is(EPOLL_CTL_MOD));
//   CHECK_THROWS(...);
//   CHECK(f.failed() == 1);   // the injection was reached
//
// A Fault fails the `nth` call that matches its predicate and the `times - 1`
// matching calls after it; every other call goes to the real one. close()
// is modelled as Linux does it: the descriptor is released, then the error
// is returned. One Fault at a time (the state is global, as the seam is).
#pragma once

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>

#include "../core/sys.hpp"

namespace evw_test {

namespace sys = evw::detail::sys;

enum class Call { epoll_create1, epoll_ctl, epoll_wait, open, read, write, lseek, fcntl, ioctl, eventfd, close, poll, stat,
                  socket, connect, fstatfs, pidfd_open, waitid };

inline const char* call_name(Call c) {
  static const char* const names[] = {"epoll_create1", "epoll_ctl", "epoll_wait", "open",
                                      "read",          "write",     "lseek",      "fcntl",
                                      "ioctl",         "eventfd",   "close",      "poll",
                                      "stat",          "socket",    "connect",    "fstatfs",
                                      "pidfd_open",    "waitid"};
  return names[static_cast<int>(c)];
}

/// What a predicate sees of a call: its descriptor (-1 if none), its
/// operation (epoll_ctl op, fcntl cmd, ioctl request; 0 if none) and, for
/// open and stat, the path.
struct CallInfo {
  int fd = -1;
  unsigned long op = 0;
  const char* path = nullptr;
  /// The file fd names (readlink of /proc/self/fd/N), "" if none.
  std::string file() const {
    if (fd < 0) return "";
    char buf[4096];
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
    return n < 0 ? "" : std::string(buf, static_cast<std::size_t>(n));
  }
};

using Match = std::function<bool(const CallInfo&)>;

inline Match any_call() {
  return [](const CallInfo&) { return true; };
}
inline Match op_is(unsigned long op) {
  return [op](const CallInfo& c) { return c.op == op; };
}
/// open() of a path, or a call on a descriptor whose file name, ending with `suffix`.
inline Match file_ends_with(std::string suffix) {
  return [suffix](const CallInfo& c) {
    const std::string name = c.path != nullptr ? std::string(c.path) : c.file();
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
}

class Fault {
 public:
  static constexpr int kAlways = INT_MAX;

  /// Fail the nth call of `call` that `match` accepts (1 = the first) and the
  /// times - 1 matching calls after it, with errno `err`.
  Fault(Call call, int err, Match match = any_call(), int nth = 1, int times = 1)
      : call_(call), err_(err), match_(std::move(match)), nth_(nth), times_(times), saved_(sys::table) {
    if (active_ != nullptr) throw std::logic_error("evw_test::Fault: one at a time");
    active_ = this;
    switch (call) {
      case Call::epoll_create1: sys::table.epoll_create1 = epoll_create1; break;
      case Call::epoll_ctl: sys::table.epoll_ctl = epoll_ctl; break;
      case Call::epoll_wait: sys::table.epoll_wait = epoll_wait; break;
      case Call::open: sys::table.open = open; break;
      case Call::read: sys::table.read = read; break;
      case Call::write: sys::table.write = write; break;
      case Call::lseek: sys::table.lseek = lseek; break;
      case Call::fcntl: sys::table.fcntl = fcntl; break;
      case Call::ioctl: sys::table.ioctl = ioctl; break;
      case Call::eventfd: sys::table.eventfd = eventfd; break;
      case Call::close: sys::table.close = close; break;
      case Call::poll: sys::table.poll = poll; break;
      case Call::stat: sys::table.stat = stat; break;
      case Call::socket: sys::table.socket = socket; break;
      case Call::connect: sys::table.connect = connect; break;
      case Call::fstatfs: sys::table.fstatfs = fstatfs; break;
      case Call::pidfd_open: sys::table.pidfd_open = pidfd_open; break;
      case Call::waitid: sys::table.waitid = waitid; break;
    }
  }
  ~Fault() {
    sys::table = saved_;
    active_ = nullptr;
  }
  Fault(const Fault&) = delete;
  Fault& operator=(const Fault&) = delete;

  int matched() const noexcept { return matched_; }  ///< calls the predicate accepted
  int failed() const noexcept { return failed_; }    ///< calls made to fail
  const char* name() const noexcept { return call_name(call_); }

 private:
  // true: this call fails (errno is set by the caller of hit()).
  static bool hit(const CallInfo& info) {
    Fault& f = *active_;
    if (!f.match_(info)) return false;
    ++f.matched_;
    if (f.matched_ < f.nth_ || f.failed_ >= f.times_) return false;
    ++f.failed_;
    return true;
  }
  template <class R>
  static R fail() {
    errno = active_->err_;
    return static_cast<R>(-1);
  }
  static const sys::Table& real() { return active_->saved_; }

  static int epoll_create1(int flags) {
    return hit({}) ? fail<int>() : real().epoll_create1(flags);
  }
  static int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
    return hit({fd, static_cast<unsigned long>(op)}) ? fail<int>() : real().epoll_ctl(epfd, op, fd, ev);
  }
  static int epoll_wait(int epfd, epoll_event* events, int max, int timeout) {
    return hit({epfd}) ? fail<int>() : real().epoll_wait(epfd, events, max, timeout);
  }
  static int open(const char* path, int flags, mode_t mode) {
    return hit({-1, 0, path}) ? fail<int>() : real().open(path, flags, mode);
  }
  static ssize_t read(int fd, void* buf, std::size_t n) {
    return hit({fd}) ? fail<ssize_t>() : real().read(fd, buf, n);
  }
  static ssize_t write(int fd, const void* buf, std::size_t n) {
    return hit({fd}) ? fail<ssize_t>() : real().write(fd, buf, n);
  }
  static off_t lseek(int fd, off_t offset, int whence) {
    return hit({fd}) ? fail<off_t>() : real().lseek(fd, offset, whence);
  }
  static int fcntl(int fd, int cmd, long arg) {
    return hit({fd, static_cast<unsigned long>(cmd)}) ? fail<int>() : real().fcntl(fd, cmd, arg);
  }
  static int ioctl(int fd, unsigned long request, void* arg) {
    return hit({fd, request}) ? fail<int>() : real().ioctl(fd, request, arg);
  }
  static int eventfd(unsigned initval, int flags) {
    return hit({}) ? fail<int>() : real().eventfd(initval, flags);
  }
  static int poll(pollfd* fds, nfds_t nfds, int timeout) {
    return hit({nfds > 0 ? fds[0].fd : -1}) ? fail<int>() : real().poll(fds, nfds, timeout);
  }
  static int stat(const char* path, struct stat* st) {
    return hit({-1, 0, path}) ? fail<int>() : real().stat(path, st);
  }
  static int socket(int domain, int type, int protocol) {
    return hit({}) ? fail<int>() : real().socket(domain, type, protocol);
  }
  static int connect(int fd, const sockaddr* addr, socklen_t len) {
    return hit({fd}) ? fail<int>() : real().connect(fd, addr, len);
  }
  static int fstatfs(int fd, struct statfs* st) {
    return hit({fd}) ? fail<int>() : real().fstatfs(fd, st);
  }
  // The pid as the "fd" of CallInfo (pidfd_open has no descriptor yet).
  static int pidfd_open(pid_t pid, unsigned flags) {
    return hit({pid}) ? fail<int>() : real().pidfd_open(pid, flags);
  }
  // The pidfd as the fd and the options as the op: op_is(WNOWAIT | ...) picks the start's check.
  static int waitid(idtype_t idtype, id_t id, siginfo_t* info, int options) {
    return hit({static_cast<int>(id), static_cast<unsigned long>(options)}) ? fail<int>()
                                                                           : real().waitid(idtype, id, info, options);
  }
  static int close(int fd) {
    // Match before closing: the predicate may look at the file.
    const bool failing = hit({fd});
    const int r = real().close(fd);
    return failing ? fail<int>() : r;
  }

  Call call_;
  int err_;
  Match match_;
  int nth_, times_;
  int matched_ = 0, failed_ = 0;
  sys::Table saved_;
  static inline Fault* active_ = nullptr;
};

}  // namespace evw_test
