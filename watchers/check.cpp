#include "check.hpp"

#include <utility>

#include "../core/access.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<32>) >= sizeof(ev_check));

namespace {

void check_callback(struct ev_loop*, ev_check* w, int revents) noexcept {
  detail::dispatch(*static_cast<Check*>(w->data), revents);
}

}  // namespace

Check::Check(Loop& loop, Callback cb) : Watcher(loop, &ev_, "Check", std::move(cb)) {
  ev_set_cb(detail::ev_of<ev_check>(*this), check_callback);
}

Check::~Check() { stop(); }

Check::Check(Check&& other) : Watcher(std::move(other), &ev_) { finish_move(other, sizeof ev_); }

void Check::start_impl() { ev_check_start(raw_loop(), detail::ev_of<ev_check>(*this)); }
void Check::stop_impl() noexcept { ev_check_stop(raw_loop(), detail::ev_of<ev_check>(*this)); }

}  // namespace evw
