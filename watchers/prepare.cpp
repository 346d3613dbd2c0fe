#include "prepare.hpp"

#include <utility>

#include "../core/access.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<32>) >= sizeof(ev_prepare));

namespace {

void prepare_callback(struct ev_loop*, ev_prepare* w, int revents) noexcept {
  detail::dispatch(*static_cast<Prepare*>(w->data), revents);
}

}  // namespace

Prepare::Prepare(Loop& loop, Callback cb) : Watcher(loop, &ev_, "Prepare", std::move(cb)) {
  ev_set_cb(detail::ev_of<ev_prepare>(*this), prepare_callback);
}

Prepare::~Prepare() { stop(); }

Prepare::Prepare(Prepare&& other) : Watcher(std::move(other), &ev_) { finish_move(other, sizeof ev_); }

void Prepare::start_impl() { ev_prepare_start(raw_loop(), detail::ev_of<ev_prepare>(*this)); }
void Prepare::stop_impl() noexcept { ev_prepare_stop(raw_loop(), detail::ev_of<ev_prepare>(*this)); }

}  // namespace evw
