#include "async.hpp"

#include <utility>

#include "../core/access.hpp"
#include "../core/signals.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<40>) >= sizeof(ev_async));

namespace {

void async_callback(struct ev_loop*, ev_async* w, int revents) noexcept {
  detail::dispatch(*static_cast<Async*>(w->data), revents);
}

// ev_async_start clears `sent`: a send() made while stopped (or between the
// stop and start of set_priority, or of a move) would be lost; send it again.
void start_keeping_send(struct ev_loop* loop, ev_async* w) noexcept {
  const bool sent = w->sent != 0;
  ev_async_start(loop, w);
  if (sent) ev_async_send(loop, w);
}

}  // namespace

Async::Async(Loop& loop, Callback cb) : Watcher(loop, &ev_, "Async", std::move(cb)) {
  auto* w = detail::ev_of<ev_async>(*this);
  ev_set_cb(w, async_callback);
  w->sent = 0;
  // A send() before any async watcher of the loop was started hits a libev
  // assert (its wakeup pipe does not exist yet: "pipe_w not active, but pipe
  // not written"). Starting once creates the pipe for the loop's lifetime,
  // so that send() is safe on a stopped watcher too.
  detail::probe_wakeup_fd("Async");  // libev aborts when it cannot create it
  ev_async_start(raw_loop(), w);
  ev_async_stop(raw_loop(), w);
}

Async::~Async() { stop(); }

Async::Async(Async&& other) : Watcher(std::move(other), &ev_) { finish_move(other, sizeof ev_); }

void Async::send() {
  require_attached("send");
  ev_async_send(raw_loop(), detail::ev_of<ev_async>(*this));
}

bool Async::async_pending() const noexcept {
  return ev_async_pending(detail::ev_of<ev_async>(*this)) != 0;
}

void Async::start_impl() {
  // libev aborts when it cannot create its wakeup descriptor.
  detail::probe_wakeup_fd("Async");
  start_keeping_send(raw_loop(), detail::ev_of<ev_async>(*this));
}

// The loop's wakeup descriptor exists: the old watcher was active.
void Async::rehome_start_impl(WatcherBase&, bool active) noexcept {
  if (active) start_keeping_send(raw_loop(), detail::ev_of<ev_async>(*this));
}

void Async::stop_impl() noexcept { ev_async_stop(raw_loop(), detail::ev_of<ev_async>(*this)); }

}  // namespace evw
