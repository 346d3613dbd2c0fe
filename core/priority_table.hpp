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
#include "exclusive_queue.hpp"

namespace evw::detail {

class PriorityTable {
 public:
  explicit PriorityTable(Loop& owner);
  ~PriorityTable();
  PriorityTable(const PriorityTable&) = delete;
  PriorityTable& operator=(const PriorityTable&) = delete;

  /// Register node (node.fd, node.ev(), node.events, node.mode set): its fd is
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
  static_assert(ExclusiveQueue::kBatch == kBatch, "the exclusive queue's records are taken into a Batch");
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
    bool exclusive = false;  // the records come from the exclusive queue
    bool lenient = false;    // a record nobody owns may be an old one, not a stale registration
    Entry entries[kBatch];
    int count = 0;
    Batch* outer = nullptr;  // an on_ready further up the stack (a nested run())
  };
  // One per fd number: its watchers and the tag of its kernel registration.
  // 16 bytes: the lazy path finds it with one shift (its events are in events_).
  struct Slot {
    ExceptNode* head = nullptr;
    unsigned tag = 0;       // bumped at every registration, never kNoTag
    unsigned one_tag = kNoTag;  // tag while exactly one watcher is here (and the kernel
                                // reports it nothing else), else kNoTag
  };
  static_assert(sizeof(Slot) == 16);
  static unsigned events_of(const ExceptNode* head) noexcept;
  static constexpr unsigned kNoTag = 0;
  static void on_ready(struct ev_loop* loop, ev_io* io, int revents) noexcept;
  static void on_exclusive(struct ev_loop* loop, ev_async* async, int revents) noexcept;
  static void on_resume(struct ev_loop* loop, ev_prepare* prepare, int revents) noexcept;
  // Delivers batch.ready[0, n) (n > 0): the body of on_ready and on_exclusive.
  [[gnu::always_inline]] inline void deliver(Batch& batch, int n) noexcept;
  // The kernel queue of a registration in mode; the exclusive one is made
  // (with its waiter) on first use. @throws std::system_error.
  ExceptBackend& queue_for(int mode);
  // Called after any change of a registration in mode's queue.
  void changed(int mode) noexcept {
    if ((mode & PollMode::Exclusive) != 0 && exclusive_) exclusive_->changed();
  }
  void link(ExceptNode& node);  // add()'s work
  void make_exclusive();
  void drop_exclusive() noexcept;
  std::unique_ptr<ExclusiveQueue> fresh_exclusive(int* failed_fd, int* failed_errno);
  void drop_stale_exclusive() noexcept;
  void hand_outer_to_libev() noexcept;
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
  // Registers every live fd of one kind (exclusive or not) in fresh.
  bool populate(ExceptBackend& fresh, bool exclusive, int* failed_fd, int* failed_errno) noexcept;
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
  std::vector<unsigned> events_;  // by fd: the epoll events registered, the union of the watchers'
                                  // (at least as long as slots_)
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
  // PollMode::Exclusive registrations live in a queue of their own, with a
  // thread asleep on it (exclusive_queue.hpp), made with the first exclusive
  // watcher and dropped with the last: its records arrive through async_ and
  // are delivered like the side-queue's; resume_ (a prepare: every callback
  // of the iteration has run) lets the waiter poll again. Both are started
  // with the queue and do not keep run() going (the nodes do).
  std::unique_ptr<ExclusiveQueue> exclusive_;  // while exclusive_nodes_ > 0 (or a fork lost it)
  int exclusive_nodes_ = 0;
  ev_async async_;
  ev_prepare resume_;
};

}  // namespace evw::detail
