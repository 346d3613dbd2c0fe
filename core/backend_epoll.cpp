// The exceptional-condition backend on Linux: an inner epoll instance.
//
// Quirks handled here:
//  a) epoll reports EPOLLERR and EPOLLHUP whether asked or not; sysfs adds
//     EPOLLERR to every EPOLLPRI, so ERR with PRI is plain PRI.
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
#include <sys/epoll.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "access.hpp"
#include "backend.hpp"
#include "events.hpp"
#include "sys.hpp"

namespace evw::detail {
namespace {

class EpollBackend final : public ExceptBackend {
 public:
  EpollBackend() : epfd_(sys::retry_eintr([] { return sys::epoll_create1(EPOLL_CLOEXEC); })) {
    if (epfd_ < 0) throw_system(errno, "evw::Priority: epoll_create1 for the loop's EPOLLPRI set");
  }
  ~EpollBackend() override { sys::close(epfd_); }

  int pollable_fd() const noexcept override { return epfd_; }

  void add(int fd, unsigned tag) override {
    if (ctl(EPOLL_CTL_ADD, fd, tag) == 0) return;
    if (errno != EEXIST) fail("EPOLL_CTL_ADD", fd);
    if (ctl(EPOLL_CTL_MOD, fd, tag) != 0) fail("EPOLL_CTL_MOD", fd);  // d)
  }

  void modify(int fd, unsigned tag) override {
    if (ctl(EPOLL_CTL_MOD, fd, tag) == 0) return;
    if (errno != ENOENT) fail("EPOLL_CTL_MOD", fd);
    if (ctl(EPOLL_CTL_ADD, fd, tag) != 0) fail("EPOLL_CTL_ADD", fd);  // c)
  }

  void remove(int fd) noexcept override {
    epoll_event unused{};
    sys::retry_eintr([&] { return sys::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &unused); });
  }

  int drain(ReadyFd* out, int max) noexcept override {
    constexpr int kBatch = 64;
    epoll_event events[kBatch];
    int n;
    do n = sys::epoll_wait(epfd_, events, max < kBatch ? max : kBatch, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) [[unlikely]] return -errno;
    for (int i = 0; i < n; ++i) {
      unsigned e = events[i].events;
      int revents = 0;
      if (e & EPOLLPRI) revents = PRI;
      else if (e & EPOLLERR) revents = ERR;
      if (e & EPOLLHUP) revents |= HUP;
      const std::uint64_t data = events[i].data.u64;
      out[i] = {static_cast<int>(data & 0xffffffffu), revents, static_cast<unsigned>(data >> 32)};
    }
    return n;
  }

 private:
  int ctl(int op, int fd, unsigned tag = 0) noexcept {
    epoll_event ev{};
    ev.events = EPOLLPRI;
    ev.data.u64 = (std::uint64_t{tag} << 32) | static_cast<std::uint32_t>(fd);
    return sys::retry_eintr([&] { return sys::epoll_ctl(epfd_, op, fd, &ev); });
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
