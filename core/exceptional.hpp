// evw — the base of watchers on the loop's exceptional-condition backend
// (EPOLLPRI and the rest of epoll's flags): Priority, Poll, Gpio, Attr.
// Not for applications.
#pragma once

#include <cstdint>

#include "loop.hpp"
#include "watcher.hpp"

namespace evw::detail {

class PriorityTable;

/// One registration of a watcher for exceptional conditions on one fd.
/// Nodes on the same fd form a list; the fd is registered with the kernel once.
struct ExceptNode {
  int fd = -1;
  int events = Event::Pri;  // what the watcher asks for (Event::Read, Write, Pri, RdHup)
  void* self = nullptr;  // the watcher, as call() takes it
  // Called directly when the table delivers the event itself, never after the
  // loop failed (a callback threw); may throw: the table catches. revents
  // comes first so that self is already where the callback holder's thunk
  // takes the watcher (its second argument): the trampoline is three moves.
  void (*call)(int revents, void* self) = nullptr;
  ExceptNode* prev = nullptr;
  ExceptNode* next = nullptr;
  // The libev watcher fed when the fd is ready and libev must order it, as
  // an offset from this node: both are members of the one watcher object.
  std::int32_t ev_offset = 0;
  signed char pri = 0;  // the watcher's priority, copied at registration (set_priority re-registers)
  bool linked = false;
  unsigned char mode = PollMode::Level;  // PollMode bits: one mode per fd and loop
  void* ev() const noexcept { return reinterpret_cast<char*>(const_cast<ExceptNode*>(this)) + ev_offset; }
  void set_ev(void* watcher) noexcept {
    ev_offset = static_cast<std::int32_t>(static_cast<char*>(watcher) - reinterpret_cast<char*>(this));
  }
  // What the watcher is called with: its events, and the errors epoll always reports.
  int accepts() const noexcept { return events | Event::Error | Event::Hup; }
};

// Out of line, in priority_table.cpp.
void except_start(Loop& loop, ExceptNode& node);
void except_stop(Loop& loop, ExceptNode& node) noexcept;
int except_take_pending(Loop& loop, ExceptNode& node) noexcept;
bool except_is_pending(Loop& loop, const ExceptNode& node) noexcept;
// A one-shot registration of node's fd is armed again. @throws std::system_error.
void except_rearm(Loop& loop, ExceptNode& node);
// A move: `to` (a copy of the registered node `from`) takes its place in the
// table, so the kernel registration stays as it is.
void except_replace(Loop& loop, ExceptNode& from, ExceptNode& to) noexcept;

/// A watcher registered in its loop's PriorityTable instead of libev: the
/// table decides when it is active and pending.
template <class W>
class ExceptWatcher : public Watcher<W> {
 protected:
  using Watcher<W>::Watcher;
  ExceptWatcher(ExceptWatcher&& other, void* ev) : Watcher<W>(std::move(other), ev), node_(other.node_) {}
  void start_impl() override { except_start(this->loop(), node_); }
  void stop_impl() noexcept override { except_stop(this->loop(), node_); }
  bool active_impl() const noexcept override { return node_.linked; }
  int take_pending() noexcept override { return except_take_pending(this->loop(), node_); }
  bool pending_impl() const noexcept override { return except_is_pending(this->loop(), node_); }
  // Moves re-point the table's node instead of registering the fd again.
  void rehome_stop_impl() noexcept override {}
  void rehome_start_impl(WatcherBase& from, bool active) noexcept override {
    node_.set_ev(this->ev());
    node_.self = static_cast<W*>(this);
    if (active) except_replace(this->loop(), static_cast<ExceptWatcher&>(from).node_, node_);
  }
  ExceptNode node_;
};

}  // namespace evw::detail
