#include "priority.hpp"

#include <string>

#include "../core/access.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<32>) >= sizeof(ev_watcher));

namespace {

void check(int fd) {
  if (fd < 0) detail::throw_invalid("Priority", "fd", std::to_string(fd) + " is negative");
}

}  // namespace

Priority::Priority(Loop& loop, int fd, Callback cb)
    : ExceptWatcher(loop, &ev_, "Priority", std::move(cb)) {
  check(fd);
  node_.fd = fd;
  node_.set_ev(&ev_);
  node_.self = this;
  node_.call = detail::except_direct<Priority>;
  ev_set_cb(detail::ev_of<ev_watcher>(*this), detail::except_callback<Priority>);
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
