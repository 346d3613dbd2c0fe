// The exceptional-condition backend on Linux (see backend_epoll.hpp).
#include "backend.hpp"

#include <string>

#include "access.hpp"
#include "sys.hpp"

namespace evw::detail {

ExceptBackend::ExceptBackend()
    : epfd_(sys::retry_eintr([] { return sys::epoll_create1(EPOLL_CLOEXEC); })) {
  if (epfd_ < 0) throw_system(errno, "evw::Priority: epoll_create1 for the loop's EPOLLPRI set");
}

ExceptBackend::~ExceptBackend() { sys::close(epfd_); }

void ExceptBackend::add(int fd, unsigned tag, unsigned events) {
  if (ctl(EPOLL_CTL_ADD, fd, tag, events) == 0) return;
  if (errno != EEXIST) fail("EPOLL_CTL_ADD", fd);
  modify(fd, tag, events);  // d)
}

void ExceptBackend::modify(int fd, unsigned tag, unsigned events) {
  // e) An exclusive registration (the old one or the new) cannot be modified.
  if ((events & EPOLLEXCLUSIVE) != 0 || ctl(EPOLL_CTL_MOD, fd, tag, events) != 0) {
    if ((events & EPOLLEXCLUSIVE) == 0 && errno != ENOENT) fail("EPOLL_CTL_MOD", fd);
    remove(fd);  // c) ENOENT: gone already
    if (ctl(EPOLL_CTL_ADD, fd, tag, events) != 0) fail("EPOLL_CTL_ADD", fd);
  }
}

void ExceptBackend::remove(int fd) noexcept {
  epoll_event unused{};
  sys::retry_eintr([&] { return sys::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &unused); });
}

int ExceptBackend::ctl(int op, int fd, unsigned tag, unsigned events) noexcept {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = (std::uint64_t{tag} << 32) | static_cast<std::uint32_t>(fd);
  return sys::retry_eintr([&] { return sys::epoll_ctl(epfd_, op, fd, &ev); });
}

void ExceptBackend::fail(const char* op, int fd) {
  int err = errno;
  throw_system(err, "evw::Priority/Poll: cannot watch fd " + std::to_string(fd) + " (" + op + ")");
}

}  // namespace evw::detail
