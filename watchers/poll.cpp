#include "poll.hpp"

#include <string>

#include "../core/access.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<32>) >= sizeof(ev_watcher));

namespace {

constexpr int kEvents = Event::Read | Event::Write | Event::Pri | Event::RdHup;
constexpr int kModes = PollMode::Edge | PollMode::OneShot | PollMode::Exclusive;

// The kernel's rules (epoll_ctl(2), EPOLLEXCLUSIVE_OK_BITS in eventpoll.c),
// checked here so that the mistake is named instead of an EINVAL at start().
void check(int fd, int events, int mode) {
  if (fd < 0) detail::throw_invalid("Poll", "fd", std::to_string(fd) + " is negative");
  if (events == 0 || (events & ~kEvents) != 0)
    detail::throw_invalid("Poll", "events",
                          std::to_string(events) + " must be Event::Read, Write, Pri, RdHup or a combination");
  if ((mode & ~kModes) != 0)
    detail::throw_invalid("Poll", "mode", std::to_string(mode) + " must combine PollMode::Edge, OneShot, Exclusive");
  if ((mode & PollMode::Exclusive) != 0) {
    if ((mode & PollMode::OneShot) != 0)
      detail::throw_invalid("Poll", "mode", std::to_string(mode) + ": PollMode::Exclusive cannot be OneShot (EPOLLEXCLUSIVE)");
    if ((events & ~(Event::Read | Event::Write)) != 0)
      detail::throw_invalid("Poll", "events",
                            std::to_string(events) + ": PollMode::Exclusive takes only Event::Read and Event::Write");
  }
}

}  // namespace

Poll::Poll(Loop& loop, int fd, int events, int mode, Callback cb)
    : ExceptWatcher(loop, &ev_, "Poll", std::move(cb)) {
  check(fd, events, mode);
  node_.fd = fd;
  node_.events = events;
  node_.mode = static_cast<unsigned char>(mode);
  node_.set_ev(&ev_);
  node_.self = this;
  node_.call = detail::except_direct<Poll>;
  ev_set_cb(detail::ev_of<ev_watcher>(*this), detail::except_callback<Poll>);
}

Poll::~Poll() { stop(); }

Poll::Poll(Poll&& other) : ExceptWatcher(std::move(other), &ev_) { finish_move(other, sizeof ev_); }

void Poll::set(int fd, int events, int mode) {
  check(fd, events, mode);
  Frozen frozen = freeze();
  node_.fd = fd;
  node_.events = events;
  node_.mode = static_cast<unsigned char>(mode);
  thaw(frozen);
}

void Poll::rearm() {
  if ((node_.mode & PollMode::OneShot) != 0 && is_active()) detail::except_rearm(loop(), node_);
}

}  // namespace evw
