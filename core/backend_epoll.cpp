// The exceptional-condition backend on Linux: an inner epoll instance.
//
// Quirks handled here:
//  a) epoll reports EPOLLERR and EPOLLHUP whether asked or not; sysfs adds
//     EPOLLERR to every EPOLLPRI, so ERR with PRI is plain PRI.
//  b) epoll refuses regular files with EPERM (they are always ready); that is
//     reported, not papered over as libev does for ev_io.
//  c) a closed fd leaves epoll silently, so its number can come back as a new
//     file: modify() re-adds on ENOENT.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "access.hpp"
#include "backend.hpp"
#include "events.hpp"

namespace evw::detail {
namespace {

class EpollBackend final : public ExceptBackend {
 public:
  EpollBackend() : epfd_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (epfd_ < 0) throw_system(errno, "evw::Priority: epoll_create1 for the loop's EPOLLPRI set");
  }
  ~EpollBackend() override { ::close(epfd_); }

  int pollable_fd() const noexcept override { return epfd_; }

  void add(int fd) override {
    if (ctl(EPOLL_CTL_ADD, fd) != 0) fail("EPOLL_CTL_ADD", fd);
  }

  void modify(int fd) override {
    if (ctl(EPOLL_CTL_MOD, fd) == 0) return;
    if (errno == ENOENT && ctl(EPOLL_CTL_ADD, fd) == 0) return;
    fail("EPOLL_CTL_MOD", fd);
  }

  void remove(int fd) noexcept override {
    epoll_event unused{};
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &unused);
  }

  int drain(ReadyFd* out, int max) noexcept override {
    constexpr int kBatch = 64;
    epoll_event events[kBatch];
    int n;
    do n = ::epoll_wait(epfd_, events, max < kBatch ? max : kBatch, 0);
    while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; ++i) {
      unsigned e = events[i].events;
      int revents = 0;
      if (e & EPOLLPRI) revents = PRI;
      else if (e & EPOLLERR) revents = ERR;
      if (e & EPOLLHUP) revents |= HUP;
      out[i] = {events[i].data.fd, revents};
    }
    return n < 0 ? 0 : n;
  }

 private:
  int ctl(int op, int fd) noexcept {
    epoll_event ev{};
    ev.events = EPOLLPRI;
    ev.data.fd = fd;
    return ::epoll_ctl(epfd_, op, fd, &ev);
  }
  [[noreturn]] static void fail(const char* op, int fd) {
    int err = errno;
    throw_system(err, "evw::Priority: cannot watch fd " + std::to_string(fd) +
                          " for EPOLLPRI (" + op + ")");
  }
  int epfd_;
};

}  // namespace

std::unique_ptr<ExceptBackend> make_except_backend() { return std::make_unique<EpollBackend>(); }

}  // namespace evw::detail
