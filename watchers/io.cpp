#include "io.hpp"

#include <cstddef>

#include <fcntl.h>

#include <cerrno>
#include <string>

#include "../core/access.hpp"
#include "../core/fd_check.hpp"
#include "../core/sys.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<48>) >= sizeof(ev_io));

namespace {

void io_callback(struct ev_loop*, ev_io* w, int revents) noexcept {
  detail::dispatch(*static_cast<Io*>(w->data), revents);
}

void check(int fd, int events) {
  if (fd < 0) detail::throw_invalid("Io", "fd", std::to_string(fd) + " is negative");
  if (events == 0 || (events & ~(Event::Read | Event::Write)) != 0)
    detail::throw_invalid("Io", "events", std::to_string(events) +
                                              (events & Event::Pri ? " include Event::Pri: use evw::Priority"
                                                            : " must be Event::Read, Event::Write or both"));
}

// Before libev registers the fds noted by start() and stop() (see
// fd_check.hpp): the Io watchers of one that is closed now stop and get
// EV_ERROR, as libev does for an fd that fails later, instead of libev
// asserting on epoll_ctl's EBADF.
bool closed_fd(int fd) noexcept {
  return detail::sys::retry_eintr([&] { return detail::sys::fcntl(fd, F_GETFD); }) < 0 &&
         errno == EBADF;
}

void kill_closed(Loop& loop, struct ev_loop* raw, int fd) noexcept {
  for (detail::WatcherBase* w = detail::Access::first(loop); w != nullptr; w = detail::Access::next(*w)) {
    auto* io = dynamic_cast<Io*>(w);
    if (io == nullptr || io->fd() != fd || !io->is_active()) continue;
    auto* ev = detail::ev_of<ev_io>(*io);
    ev_io_stop(raw, ev);
    detail::Access::note_feed(loop);
    ev_feed_event(raw, ev, EV_ERROR | EV_READ | EV_WRITE);
  }
}

void check_closed(struct ev_loop* raw, ev_prepare* prepare, int) noexcept {
  auto& check = *static_cast<detail::FdCheck*>(prepare->data);
  Loop& loop = *check.owner;
  if (check.take_all()) {  // after Loop::fork(): every active Io
    for (detail::WatcherBase* w = detail::Access::first(loop); w != nullptr; w = detail::Access::next(*w))
      if (auto* io = dynamic_cast<Io*>(w); io != nullptr && io->is_active()) check.note(io->fd());
  }
  for (const int fd : check.take())
    if (closed_fd(fd)) kill_closed(loop, raw, fd);
}

}  // namespace

Io::Io(Loop& loop, int fd, int events, Callback cb)
    : Watcher(loop, &ev_, "Io", std::move(cb)) {
  check(fd, events);
  auto* w = detail::ev_of<ev_io>(*this);
  ev_io_set(w, fd, events);
  ev_set_cb(w, io_callback);
}

Io::~Io() { stop(); }

Io::Io(Io&& other) : Watcher(std::move(other), &ev_) { finish_move(other, sizeof ev_); }

void Io::set(int fd, int events) {
  check(fd, events);
  Frozen frozen = freeze();
  ev_io_set(detail::ev_of<ev_io>(*this), fd, events);
  thaw(frozen);
}


void Io::start_impl() {
  static_assert(offsetof(ev_io, fd) == fd_offset && offsetof(ev_io, events) == fd_offset + sizeof(int),
                "ev_io's layout changed: Io::fd()/events() read it inline");
  // libev would report a closed fd later as EV_ERROR and stop the watcher;
  // saying so at start() is clearer.
  if (detail::sys::retry_eintr([&] { return detail::sys::fcntl(fd(), F_GETFD); }) < 0) {
    const int err = errno;
    detail::throw_system(err, "evw::Io::start: fd " + std::to_string(fd()) +
                                  (err == EBADF ? " is not open" : ": fcntl(F_GETFD)"));
  }
  detail::FdCheck& closed = detail::Access::make_fd_check(loop(), check_closed);
  ev_io_start(raw_loop(), detail::ev_of<ev_io>(*this));
  closed.note(fd());
}

// Without start_impl's fcntl check: the fd was being watched, and if it has
// been closed since, the closed-fd check that stop_impl noted it for finds it.
void Io::rehome_start_impl(WatcherBase&, bool active) noexcept {
  if (active) ev_io_start(raw_loop(), detail::ev_of<ev_io>(*this));
}

void Io::stop_impl() noexcept {
  ev_io_stop(raw_loop(), detail::ev_of<ev_io>(*this));
  // Another watcher of this fd is modified in the kernel at the next fd_reify.
  if (detail::FdCheck* closed = detail::Access::fd_check(*detail::Access::loop(*this))) closed->note(fd());
}

}  // namespace evw
