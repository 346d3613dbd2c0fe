#include "priority.hpp"

#include <string>

#include "../core/access.hpp"
#include "../core/priority_table.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<32>) >= sizeof(ev_watcher));

namespace {

void priority_callback(struct ev_loop*, ev_watcher* w, int revents) noexcept {
  detail::dispatch(*static_cast<Priority*>(w->data), revents);
}

void check(int fd) {
  if (fd < 0) detail::throw_invalid("Priority", "fd", std::to_string(fd) + " is negative");
}

}  // namespace

Priority::Priority(Loop& loop, int fd, Callback cb)
    : Watcher(loop, &ev_, "Priority", std::move(cb)) {
  check(fd);
  node_.fd = fd;
  node_.ev = &ev_;
  ev_set_cb(detail::ev_of<ev_watcher>(*this), priority_callback);
}

Priority::~Priority() { stop(); }

void Priority::set(int fd) {
  check(fd);
  Frozen frozen = freeze();
  node_.fd = fd;
  thaw(frozen);
}

void Priority::start_impl() {
  detail::Access::make_priority_table(loop()).add(node_);
}

void Priority::stop_impl() noexcept {
  // Never started in libev: only the table knows it, and pending is ours to clear.
  ev_clear_pending(raw_loop(), detail::ev_of<ev_watcher>(*this));
  detail::Access::priority_table(*detail::Access::loop(*this))->remove(node_);
}

}  // namespace evw
