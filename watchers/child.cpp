#include "child.hpp"

#include <stdexcept>
#include <string>
#include <utility>

#include "../core/access.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<56>) >= sizeof(ev_child));

namespace {

void child_callback(struct ev_loop*, ev_child* w, int revents) noexcept {
  detail::dispatch(*static_cast<Child*>(w->data), revents);
}

void check(int pid) {
  if (pid < 0)
    detail::throw_invalid("Child", "pid",
                          std::to_string(pid) + " is negative (use 0 for any child)");
}

// libev asserts that child watchers live in the default loop.
void check_loop(const Loop& loop) {
  if (!loop.is_default())
    throw std::logic_error(
        "evw::Child: child watchers work only on Loop::default_loop(), which owns SIGCHLD");
}

}  // namespace

Child::Child(Loop& loop, int pid, Callback cb) : Child(loop, pid, false, std::move(cb)) {}

Child::Child(Loop& loop, int pid, bool trace, Callback cb)
    : Watcher(loop, &ev_, "Child", std::move(cb)) {
  check_loop(loop);
  check(pid);
  auto* w = detail::ev_of<ev_child>(*this);
  ev_child_set(w, pid, trace);
  w->rpid = 0;
  w->rstatus = 0;
  ev_set_cb(w, child_callback);
  // libev sets max_priority itself when a status arrives (child_reap); doing it now
  // keeps priority() truthful and a pending event in the right queue.
  ev_set_priority(w, max_priority);
}

Child::~Child() { stop(); }

Child::Child(Child&& other) : Watcher(std::move(other), &ev_) { finish_move(other, sizeof ev_); }

void Child::set(int pid, bool trace) {
  check(pid);
  Frozen frozen = freeze();
  ev_child_set(detail::ev_of<ev_child>(*this), pid, trace);
  thaw(frozen);
}

void Child::check_priority(int pri) const {
  if (pri != max_priority)
    detail::throw_invalid("Child", "priority",
                          std::to_string(pri) + ": child watchers always run at max_priority (" +
                              std::to_string(max_priority) + "), libev resets any other");
}

int Child::pid() const noexcept { return detail::ev_of<ev_child>(*this)->pid; }
bool Child::trace() const noexcept { return (detail::ev_of<ev_child>(*this)->flags & 1) != 0; }
int Child::rpid() const noexcept { return detail::ev_of<ev_child>(*this)->rpid; }
int Child::rstatus() const noexcept { return detail::ev_of<ev_child>(*this)->rstatus; }

void Child::start_impl() { ev_child_start(raw_loop(), detail::ev_of<ev_child>(*this)); }
void Child::stop_impl() noexcept { ev_child_stop(raw_loop(), detail::ev_of<ev_child>(*this)); }

}  // namespace evw
