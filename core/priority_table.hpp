// Internal (not installed): a Loop's watchers of exceptional conditions.
//
// One backend per loop, created with the first Priority/Gpio watcher. Its
// pollable fd is watched by an internal ev_io at EV_MAXPRI, started for the
// table's lifetime and counted as active only while a node is registered (so
// run() still returns when nothing else is left). When it fires, the ready
// fds are drained and their watchers are delivered in priority order (see
// on_ready for the two ways).
#pragma once

#include <ev.h>

#include <memory>
#include <vector>

#include "backend.hpp"
#include "events.hpp"
#include "exceptional.hpp"

namespace evw::detail {

class PriorityTable {
 public:
  explicit PriorityTable(struct ev_loop* loop);
  ~PriorityTable();
  PriorityTable(const PriorityTable&) = delete;
  PriorityTable& operator=(const PriorityTable&) = delete;

  /// Register node (node.fd, node.ev set). @throws std::system_error.
  void add(ExceptNode& node);
  void remove(ExceptNode& node) noexcept;
  /// In a forked child: a new kernel queue, every fd registered again.
  void after_fork();
  std::size_t size() const noexcept { return nodes_; }
  /// Something was fed into libev's queue from outside its dispatch.
  void note_feed() noexcept { ++feeds_; }
  /// The event node waits for in a direct-dispatch batch, taken (0 if none).
  int take_queued(const ExceptNode& node) noexcept;
  bool is_queued(const ExceptNode& node) const noexcept;

 private:
  static constexpr int kBatch = 64;  // ready fds per drain; more come next iteration
  // Watchers about to be called directly by one on_ready; entries are nulled
  // when their watcher stops, so a callback may stop or destroy any of them.
  struct Entry {
    ExceptNode* node;  // nullptr once called, stopped, or its event taken
    int revents;
  };
  struct Batch {
    Entry entries[kBatch];
    int count = 0;
    Batch* outer = nullptr;  // an on_ready further up the stack (a nested run())
  };
  static void on_ready(struct ev_loop* loop, ev_io* io, int revents) noexcept;
  // One per fd number: its watchers and the tag of its kernel registration.
  struct Slot {
    ExceptNode* head = nullptr;
    unsigned tag = 0;  // bumped at every registration
  };
  void spill(Batch& batch) noexcept;
  void drop_stale() noexcept;
  bool rebuild(int* failed_fd, int* failed_errno);
  // The watchers an event belongs to, or nullptr for a stale event (see
  // backend_epoll.hpp c) or one of an fd nobody watches any more.
  ExceptNode* live(int fd, unsigned tag) const noexcept {
    // Every fd epoll reports was registered once, and slots_ never shrinks.
    const Slot& slot = slots_.data()[static_cast<unsigned>(fd)];
    return slot.tag == tag ? slot.head : nullptr;
  }

  struct ev_loop* loop_;
  std::unique_ptr<ExceptBackend> backend_;
  ev_io io_;
  std::vector<Slot> slots_;  // indexed by fd
  int by_priority_[MAXPRI - MINPRI + 1] = {};  // registered nodes at each priority
  int priorities_ = 0;  // how many priorities have nodes: above 1, batches are sorted
  std::size_t nodes_ = 0;
  Batch* batch_ = nullptr;
  unsigned feeds_ = 0;  // see note_feed
};

}  // namespace evw::detail
