// Internal (not installed): a Loop's watchers of exceptional conditions.
//
// One backend per loop, created with the first Priority/Gpio watcher. Its
// pollable fd is watched by an internal ev_io at EV_MAXPRI, started for the
// table's lifetime and counted as active only while a node is registered (so
// run() still returns when nothing else is left). When it fires, the ready
// fds are drained and their watchers are delivered in priority order (see
// on_ready).
#pragma once

#include <ev.h>
#include <sys/types.h>

#include <memory>
#include <vector>

#include "backend.hpp"
#include "events.hpp"
#include "exceptional.hpp"

namespace evw::detail {

class PriorityTable {
 public:
  explicit PriorityTable(Loop& owner);
  ~PriorityTable();
  PriorityTable(const PriorityTable&) = delete;
  PriorityTable& operator=(const PriorityTable&) = delete;

  /// Register node (node.fd, node.ev, node.events, node.mode set): its fd is
  /// registered for the union of its watchers' events.
  /// @throws std::system_error; std::logic_error if the fd's other watchers
  ///         have another mode.
  void add(ExceptNode& node);
  /// Arm node's fd again (PollMode::OneShot). @throws std::system_error.
  void rearm(ExceptNode& node);
  void remove(ExceptNode& node) noexcept;
  /// `to`, a copy of the registered `from`, takes its place (a watcher moved).
  void replace(ExceptNode& from, ExceptNode& to) noexcept;
  /// In a forked child: a new kernel queue, every fd registered again.
  void after_fork();
  static void on_fork(struct ev_loop* loop, ev_fork* w, int revents) noexcept;
  std::size_t size() const noexcept { return nodes_; }
  /// The Loop is destroyed while libev still runs (a callback destroyed it):
  /// stop the internal watcher now; the table itself lives until on_ready
  /// can no longer be on the stack.
  void orphan() noexcept;
  /// Something was fed into libev's queue from outside its dispatch.
  void note_feed() noexcept;
  /// The event node waits for in a direct-dispatch batch, taken (0 if none).
  int take_queued(const ExceptNode& node) noexcept;
  bool is_queued(const ExceptNode& node) noexcept;

 private:
  static constexpr int kBatch = 64;  // ready fds per drain; more come next iteration
  using Ready = ExceptBackend::Ready;
  struct Entry {
    ExceptNode* node;  // nullptr once called, stopped, or its event taken
    int revents;
  };
  // The events one on_ready is delivering directly. They start as the raw
  // kernel records, looked up one by one as they are dispatched (`lazy`);
  // the moment anything could observe or change the table (a watcher started,
  // stopped, asked whether it is pending, a nested run), the rest is resolved
  // into entries, which stop() and friends can find and clear.
  struct Batch {
    Ready ready[kBatch];
    Ready* next = ready;  // the first raw record not yet dispatched
    Ready* end = ready;   // past the last one drained
    bool lazy = true;   // false: the rest is in entries
    bool stale = false; // a record of a registration nobody owns was seen
    Entry entries[kBatch];
    int count = 0;
    Batch* outer = nullptr;  // an on_ready further up the stack (a nested run())
  };
  // One per fd number: its watchers and the tag of its kernel registration.
  struct Slot {
    ExceptNode* head = nullptr;
    unsigned tag = 0;       // bumped at every registration, never kNoTag
    unsigned one_tag = kNoTag;  // tag while exactly one watcher is here (and the kernel
                                // reports it nothing else), else kNoTag
    unsigned events = 0;        // the epoll events registered: the union of the watchers'
  };
  static unsigned events_of(const ExceptNode* head) noexcept;
  static constexpr unsigned kNoTag = 0;
  static void on_ready(struct ev_loop* loop, ev_io* io, int revents) noexcept;
  // Calls node's callback; an exception is kept for run(), as dispatch does.
  void call(ExceptNode& node, int revents) noexcept {
    try {
      node.call(revents, node.self);  // may destroy node: touch nothing after
    } catch (...) {
      capture();
    }
  }
  void capture() noexcept;

 public:
  /// The loop failed (an exception was captured): everything not yet called
  /// directly goes to libev's queue, whose dispatch defers it.
  void hand_over() noexcept;

 private:
  void resolve(Batch& batch) noexcept;
  void resolve_all() noexcept {
    for (Batch* batch = batch_; batch != nullptr; batch = batch->outer)
      if (batch->lazy) resolve(*batch);
  }
  void dispatch_entries(Batch& batch, unsigned epoch) noexcept;
  void spill(Batch& batch) noexcept;
  void drop_stale() noexcept;
  void drain_failed(int err) noexcept;
  bool rebuild(int* failed_fd, int* failed_errno);
  bool populate(ExceptBackend& fresh, int* failed_fd, int* failed_errno) noexcept;
  void watch_queue(std::unique_ptr<ExceptBackend> fresh = nullptr) noexcept;
  void make_spare() noexcept;
  void pause() noexcept;
  static void on_retry(struct ev_loop* loop, ev_timer* timer, int revents) noexcept;
  // The watchers a record belongs to, or nullptr for a stale record (see
  // backend_epoll.hpp c) or one of an fd nobody watches any more.
  const Slot& slot_of(const Ready& ready) const noexcept {
    // Every fd the kernel reports was registered once, and slots_ never shrinks.
    return slots_.data()[static_cast<unsigned>(ExceptBackend::fd_of(ready))];
  }
  // The lazy path's test, one comparison: the record is live and its fd has
  // exactly one watcher (then slot.head is that watcher).
  bool only_one(const Slot& slot, const Ready& ready) const noexcept {
    return slot.one_tag == ExceptBackend::tag_of(ready);
  }
  ExceptNode* live(const Ready& ready) const noexcept {
    const Slot& slot = slot_of(ready);
    return slot.tag == ExceptBackend::tag_of(ready) ? slot.head : nullptr;
  }

  Loop* owner_;
  struct ev_loop* loop_;
  std::unique_ptr<ExceptBackend> backend_;
  ev_io io_;
  std::vector<Slot> slots_;  // indexed by fd
  int by_priority_[max_priority - min_priority + 1] = {};  // registered nodes at each priority
  int priorities_ = 0;  // how many priorities have nodes: above 1, batches are sorted
  std::size_t nodes_ = 0;
  Batch* batch_ = nullptr;
  unsigned feeds_ = 0;  // see note_feed
  bool orphaned_ = false;
  // A forked child must not share the parent's queue: Loop::fork() rebuilds
  // it at once, and this fork watcher does (in the child's first iteration)
  // when libev noticed the fork by itself (LoopFlag::ForkCheck). pid_ is the
  // process the queue belongs to.
  ev_fork fork_;
  pid_t pid_;
  // A stale registration (backend_epoll.hpp c) can only be cured by a new
  // kernel queue, and a level-triggered stale condition makes the queue's fd
  // readable until then: the loop would spin if the new queue needed a
  // descriptor the process does not have (EMFILE). So an empty queue is kept
  // ready: a rebuild takes it, closes the old one and makes the next spare
  // in the number just freed. Without a spare and without a descriptor, the
  // queue is not watched for kRetry seconds (retry_ stands in for io_; exactly
  // one of them is active), then watched again: its conditions are
  // level-triggered, so they wait, and the rebuild is tried again.
  std::unique_ptr<ExceptBackend> spare_;
  ev_timer retry_;
  static constexpr ev_tstamp kRetry = 0.01;
};

}  // namespace evw::detail
