#include "fork.hpp"

#include <utility>

#include "../core/access.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<32>) >= sizeof(ev_fork));

namespace {

void fork_callback(struct ev_loop*, ev_fork* w, int revents) noexcept {
  detail::dispatch(*static_cast<Fork*>(w->data), revents);
}

}  // namespace

Fork::Fork(Loop& loop, Callback cb) : Watcher(loop, &ev_, "Fork", std::move(cb)) {
  ev_set_cb(detail::ev_of<ev_fork>(*this), fork_callback);
}

Fork::~Fork() { stop(); }

Fork::Fork(Fork&& other) : Watcher(std::move(other), &ev_) { finish_move(other, sizeof ev_); }

void Fork::start_impl() { ev_fork_start(raw_loop(), detail::ev_of<ev_fork>(*this)); }
void Fork::stop_impl() noexcept { ev_fork_stop(raw_loop(), detail::ev_of<ev_fork>(*this)); }

}  // namespace evw
