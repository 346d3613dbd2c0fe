#include "priority.hpp"

#include <string>

#include "../core/access.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<32>) >= sizeof(ev_watcher));

namespace {

void priority_callback(struct ev_loop*, ev_watcher* w, int revents) noexcept {
  detail::dispatch(*static_cast<Priority*>(w->data), revents);
}

// The EPOLLPRI table's direct call: it catches, and it never calls directly
// once the loop has failed (see PriorityTable::hand_over).
void priority_direct(int revents, void* self) {
  auto& w = *static_cast<Priority*>(self);
  detail::invoke_callback(*detail::Access::loop(w), w, revents);  // may destroy w: touch nothing after
}

void check(int fd) {
  if (fd < 0) detail::throw_invalid("Priority", "fd", std::to_string(fd) + " is negative");
}

}  // namespace

Priority::Priority(Loop& loop, int fd, Callback cb)
    : ExceptWatcher(loop, &ev_, "Priority", std::move(cb)) {
  check(fd);
  node_.fd = fd;
  node_.ev = &ev_;
  node_.self = this;
  node_.call = priority_direct;
  ev_set_cb(detail::ev_of<ev_watcher>(*this), priority_callback);
}

Priority::~Priority() { stop(); }

Priority::Priority(Priority&& other) : ExceptWatcher(std::move(other), &ev_) { finish_move(other, sizeof ev_); }

void Priority::set(int fd) {
  check(fd);
  Frozen frozen = freeze();
  node_.fd = fd;
  thaw(frozen);
}

}  // namespace evw
