#include "cleanup.hpp"

#include <utility>

#include "../core/access.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<32>) >= sizeof(ev_cleanup));

namespace {

void cleanup_callback(struct ev_loop* raw, ev_cleanup* w, int revents) noexcept {
  Cleanup& c = *static_cast<Cleanup*>(w->data);
  // Outside run() a cleanup event comes only from ev_loop_destroy: there is
  // no run() to rethrow to, and a failed first cleanup must not keep the
  // others from running, so call it directly and drop what it throws.
  if (ev_depth(raw) == 0) {
    try {
      detail::invoke_callback(*detail::Access::loop(c), c, revents);  // may destroy c: touch nothing after
    } catch (...) {
    }
    return;
  }
  detail::dispatch(c, revents);
}

}  // namespace

Cleanup::Cleanup(Loop& loop, Callback cb) : Watcher(loop, &ev_, "Cleanup", std::move(cb)) {
  ev_set_cb(detail::ev_of<ev_cleanup>(*this), cleanup_callback);
}

Cleanup::~Cleanup() { stop(); }

Cleanup::Cleanup(Cleanup&& other) : Watcher(std::move(other), &ev_) { finish_move(other, sizeof ev_); }

void Cleanup::start_impl() { ev_cleanup_start(raw_loop(), detail::ev_of<ev_cleanup>(*this)); }
void Cleanup::stop_impl() noexcept { ev_cleanup_stop(raw_loop(), detail::ev_of<ev_cleanup>(*this)); }

}  // namespace evw
