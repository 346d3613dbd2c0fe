#include "idle.hpp"

#include <utility>

#include "../core/access.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<32>) >= sizeof(ev_idle));

namespace {

void idle_callback(struct ev_loop*, ev_idle* w, int revents) noexcept {
  detail::dispatch(*static_cast<Idle*>(w->data), revents);
}

}  // namespace

Idle::Idle(Loop& loop, Callback cb) : Watcher(loop, &ev_, "Idle", std::move(cb)) {
  ev_set_cb(detail::ev_of<ev_idle>(*this), idle_callback);
}

Idle::~Idle() { stop(); }

Idle::Idle(Idle&& other) : Watcher(std::move(other), &ev_) { finish_move(other, sizeof ev_); }

void Idle::start_impl() { ev_idle_start(raw_loop(), detail::ev_of<ev_idle>(*this)); }
void Idle::stop_impl() noexcept { ev_idle_stop(raw_loop(), detail::ev_of<ev_idle>(*this)); }

}  // namespace evw
