#include "priority_table.hpp"

#include <cerrno>
#include <string>
#include <system_error>

#include "access.hpp"

namespace evw::detail {

static inline int priority_of(const ExceptNode* node) noexcept {
  return ev_priority(static_cast<ev_watcher*>(node->ev));
}

void Access::note_feed(Loop& loop) noexcept {
  if (loop.priority_) loop.priority_->note_feed();
}

PriorityTable& Access::make_priority_table(Loop& loop) {
  if (!loop.priority_) loop.priority_ = std::make_unique<PriorityTable>(loop);
  return *loop.priority_;
}

PriorityTable::PriorityTable(Loop& owner)
    : owner_(owner), loop_(owner.raw()), backend_(make_except_backend()) {
  ev_io_init(&io_, on_ready, backend_->pollable_fd(), EV_READ);
  // At EV_MAXPRI the drain runs before any user callback of the iteration,
  // so a fed high-priority event still overtakes a pending low-priority one.
  ev_set_priority(&io_, EV_MAXPRI);
  io_.data = this;
  // Started for good and counted as active (ev_ref) only while a node is
  // registered, so run() still returns when nothing else is left. Stopping it
  // with the last watcher would drop its pending event: the last Priority
  // watcher stopped and started again in one iteration (set_priority() or
  // set() from an earlier callback) would miss the event the poll found.
  ev_io_start(loop_, &io_);
  ev_unref(loop_);
}

PriorityTable::~PriorityTable() {
  if (nodes_ == 0) ev_ref(loop_);  // ev_io_stop counts it off again
  ev_io_stop(loop_, &io_);
}

void PriorityTable::add(ExceptNode& node) {
  const int fd = node.fd;
  if (static_cast<std::size_t>(fd) >= heads_.size()) {
    heads_.resize(fd + 1, nullptr);
    tags_.resize(fd + 1, 0);
  }
  // The new tag counts only once the kernel has it: after a failed modify()
  // the fd's other watchers keep receiving events under the old one.
  const unsigned tag = tags_[fd] + 1;
  if (heads_[fd] == nullptr) backend_->add(fd, tag);
  else backend_->modify(fd, tag);
  tags_[fd] = tag;
  node.prev = nullptr;
  node.next = heads_[fd];
  if (node.next != nullptr) node.next->prev = &node;
  heads_[fd] = &node;
  node.linked = true;
  if (nodes_++ == 0) ev_ref(loop_);
}

void PriorityTable::remove(ExceptNode& node) noexcept {
  if (!node.linked) return;
  for (Batch* batch = batch_; batch != nullptr; batch = batch->outer)
    for (int i = 0; i < batch->count; ++i)
      if (batch->nodes[i] == &node) batch->nodes[i] = nullptr;
  node.queued = 0;
  if (node.prev != nullptr) node.prev->next = node.next;
  else heads_[node.fd] = node.next;
  if (node.next != nullptr) node.next->prev = node.prev;
  node.prev = node.next = nullptr;
  node.linked = false;
  if (heads_[node.fd] == nullptr) backend_->remove(node.fd);
  if (--nodes_ == 0) ev_unref(loop_);
}

// Delivery must look exactly as if every ready watcher had been fed through
// libev's pending queue (ev_feed_event): priority order across all watcher
// types, a pending event kept by set(), cleared by stop(). Feeding costs two
// trips through libev per event, so when nothing else is pending in this
// iteration the watchers are called here directly, highest priority first,
// which is the order libev would pick. As soon as anything else becomes
// pending (a callback fed an event, ran the loop, ...) the rest is fed after
// all, and libev orders it with the newcomer.
void PriorityTable::on_ready(struct ev_loop* loop, ev_io* io, int) noexcept {
  auto* self = static_cast<PriorityTable*>(io->data);
  ReadyFd ready[kBatch];
  const int n = self->backend_->drain(ready, kBatch);
  if (n <= 0) [[unlikely]] {
    if (n < 0) self->drain_failed(-n);
    return;
  }
  // A callback of an outer on_ready runs the loop: libev orders the rest now.
  if (self->batch_ != nullptr) self->spill(*self->batch_);
  if (ev_pending_count(loop) != 0) {  // the drain itself is no longer counted
    bool stale = false;
    for (int i = 0; i < n; ++i) stale |= !self->feed_fd(ready[i]);
    if (stale) [[unlikely]] self->drop_stale();
    return;
  }
  Batch batch;
  batch.outer = self->batch_;
  bool sorted = true, stale = false;
  int last_pri = MAXPRI;
  for (int i = 0; i < n; ++i) {
    const auto fd = static_cast<std::size_t>(ready[i].fd);
    if (!self->is_live(ready[i])) [[unlikely]] {
      stale = true;
      continue;
    }
    for (ExceptNode* node = self->heads_[fd]; node != nullptr; node = node->next) {
      if (batch.count == kBatch) {
        ev_feed_event(loop, node->ev, ready[i].revents);
        continue;
      }
      const int pri = priority_of(node);
      sorted &= pri <= last_pri;
      last_pri = pri;
      node->queued = ready[i].revents;
      batch.nodes[batch.count++] = node;
    }
  }
  if (stale) [[unlikely]] self->drop_stale();
  if (batch.count == 0) return;
  if (!sorted) {  // highest priority first; insertion sort: batches are small
    for (int i = 1; i < batch.count; ++i) {
      ExceptNode* node = batch.nodes[i];
      int j = i;
      for (; j > 0 && priority_of(batch.nodes[j - 1]) < priority_of(node); --j)
        batch.nodes[j] = batch.nodes[j - 1];
      batch.nodes[j] = node;
    }
  }
  self->batch_ = &batch;
  unsigned epoch = self->feeds_;
  for (int i = 0; i < batch.count; ++i) {
    ExceptNode* node = batch.nodes[i];
    if (node == nullptr) continue;  // stopped or destroyed by an earlier callback
    batch.nodes[i] = nullptr;
    const int revents = node->queued;
    node->queued = 0;
    if (revents == 0) continue;  // its pending event was cleared
    auto* w = static_cast<ev_watcher*>(node->ev);
    w->cb(loop, w, revents);  // exactly what libev's dispatch does
    // Something was fed: if it is pending now, libev must order the rest.
    if (self->feeds_ != epoch) [[unlikely]] {
      epoch = self->feeds_;
      if (i + 1 < batch.count && ev_pending_count(loop) != 0) {
        self->spill(batch);
        break;
      }
    }
  }
  self->batch_ = batch.outer;
}

bool PriorityTable::feed_fd(const ReadyFd& ready) noexcept {
  if (!is_live(ready)) return false;
  for (ExceptNode* node = heads_[static_cast<std::size_t>(ready.fd)]; node != nullptr; node = node->next)
    ev_feed_event(loop_, node->ev, ready.revents);
  return true;
}

void PriorityTable::spill(Batch& batch) noexcept {
  for (int i = 0; i < batch.count; ++i) {
    ExceptNode* node = batch.nodes[i];
    if (node == nullptr) continue;
    batch.nodes[i] = nullptr;
    if (node->queued != 0) ev_feed_event(loop_, node->ev, node->queued);
    node->queued = 0;
  }
}

void except_start(Loop& loop, ExceptNode& node) { Access::make_priority_table(loop).add(node); }

// WatcherBase::stop() and freeze() have taken the pending event already.
void except_stop(Loop& loop, ExceptNode& node) noexcept {
  if (PriorityTable* table = Access::priority_table(loop)) table->remove(node);
}

int except_take_pending(Loop& loop, ExceptNode& node) noexcept {
  int revents = ev_clear_pending(loop.raw(), static_cast<ev_watcher*>(node.ev));
  revents |= node.queued;
  node.queued = 0;
  return revents;
}

bool except_is_pending(const ExceptNode& node) noexcept {
  return node.queued != 0 || ev_is_pending(static_cast<ev_watcher*>(node.ev));
}

// An event of a registration nobody owns any more (a file closed under a
// watcher while a dup of it lives on: epoll keeps it armed and DEL cannot
// reach it) is dropped; the only cure is a new kernel queue with the live fds.
void PriorityTable::drop_stale() noexcept {
  int failed_fd, failed_errno;
  try {
    rebuild(&failed_fd, &failed_errno);
  } catch (const std::system_error&) {
    // No descriptor for a new queue: the stale entry stays until one is free.
  }
}

// The kernel queue could not be read (EINTR is retried in drain): run()
// throws it, like a callback's exception. The conditions stay queued and the
// internal ev_io stays readable, so the next run() delivers them.
void PriorityTable::drain_failed(int err) noexcept {
  try {
    throw_system(err, "evw::Priority: epoll_wait on the loop's EPOLLPRI set");
  } catch (...) {
    Access::capture(owner_, std::current_exception());
  }
}

// A new kernel queue with every live fd registered again. @return false if an
// fd could not be added (the first such fd and errno are reported).
// @throws std::system_error if no new queue can be created (nothing changed).
bool PriorityTable::rebuild(int* failed_fd, int* failed_errno) {
  auto fresh = make_except_backend();
  *failed_fd = -1;
  for (std::size_t fd = 0; fd < heads_.size(); ++fd) {
    if (heads_[fd] == nullptr) continue;
    try {
      fresh->add(static_cast<int>(fd), tags_[fd]);
    } catch (const std::system_error& e) {
      if (*failed_fd < 0) *failed_fd = static_cast<int>(fd), *failed_errno = e.code().value();
    }
  }
  if (nodes_ == 0) ev_ref(loop_);
  ev_io_stop(loop_, &io_);
  backend_ = std::move(fresh);
  ev_io_set(&io_, backend_->pollable_fd(), EV_READ);
  ev_io_start(loop_, &io_);
  if (nodes_ == 0) ev_unref(loop_);
  return *failed_fd < 0;
}

void PriorityTable::after_fork() {
  // The inherited queue is shared with the parent: build a private one.
  int failed_fd, failed_errno;
  if (!rebuild(&failed_fd, &failed_errno))
    throw_system(failed_errno, "evw::Loop::fork: cannot watch fd " + std::to_string(failed_fd) +
                                   " for EPOLLPRI again in the child");
}

}  // namespace evw::detail
