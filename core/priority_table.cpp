#include "priority_table.hpp"

#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>

#include "access.hpp"

namespace evw::detail {

void PriorityTable::capture() noexcept {
  Access::capture(*owner_, std::current_exception());  // owner_ may be gone: capture knows
}

void PriorityTable::hand_over() noexcept {
  for (Batch* batch = batch_; batch != nullptr; batch = batch->outer) {
    if (batch->lazy) resolve(*batch);  // feeds: the loop has failed
    spill(*batch);
  }
}

void PriorityTable::note_feed() noexcept {
  ++feeds_;
  resolve_all();  // a lazy batch cannot tell whether the fed event will overtake it
}

PriorityTable& Access::make_priority_table(Loop& loop) {
  if (!loop.priority_) loop.priority_ = std::make_unique<PriorityTable>(loop);
  return *loop.priority_;
}

PriorityTable::PriorityTable(Loop& owner) : owner_(&owner), loop_(owner.raw()), backend_(std::make_unique<ExceptBackend>()) {
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
  ev_timer_init(&retry_, on_retry, kRetry, kRetry);
  ev_set_priority(&retry_, EV_MAXPRI);
  retry_.data = this;
  pid_ = ::getpid();
  ev_fork_init(&fork_, on_fork);
  ev_set_priority(&fork_, EV_MAXPRI);
  fork_.data = this;
  ev_fork_start(loop_, &fork_);
  ev_unref(loop_);
  ev_async_init(&async_, on_exclusive);
  ev_set_priority(&async_, EV_MAXPRI);
  async_.data = this;
  ev_prepare_init(&resume_, on_resume);
  ev_set_priority(&resume_, EV_MAXPRI);
  resume_.data = this;
  make_spare();
}

PriorityTable::~PriorityTable() { orphan(); }

void PriorityTable::orphan() noexcept {
  if (orphaned_) return;
  orphaned_ = true;
  ev_ref(loop_);
  ev_fork_stop(loop_, &fork_);
  drop_exclusive();
  if (nodes_ == 0) ev_ref(loop_);  // ev_io_stop counts it off again
  if (ev_is_active(&retry_)) ev_timer_stop(loop_, &retry_);
  else ev_io_stop(loop_, &io_);
}

unsigned PriorityTable::events_of(const ExceptNode* head) noexcept {
  unsigned events = 0;
  for (const ExceptNode* node = head; node != nullptr; node = node->next)
    events |= epoll_events(node->events, node->mode);
  return events;
}

void PriorityTable::add(ExceptNode& node) {
  try {
    link(node);
  } catch (...) {
    // A failed first exclusive start leaves no queue (nor thread) behind.
    if (exclusive_nodes_ == 0) drop_exclusive();
    throw;
  }
}

void PriorityTable::link(ExceptNode& node) {
  resolve_all();  // the tag bump below would hide a queued record from its watcher
  const int fd = node.fd;
  const auto index = static_cast<std::size_t>(fd);
  unsigned events = epoll_events(node.events, node.mode);
  if (index >= slots_.size()) {
    // The kernel first: a number that is not an open fd (any int may come
    // in) fails there with EBADF instead of sizing the table after it.
    ExceptBackend& queue = queue_for(node.mode);
    queue.add(fd, kNoTag + 1, events);
    changed(node.mode);
    try {
      events_.resize(index + 1);
      slots_.resize(index + 1);
    } catch (...) {
      queue.remove(fd);
      changed(node.mode);
      throw;
    }
    slots_[index].tag = kNoTag + 1;
  } else {
    Slot& slot = slots_[index];
    // EPOLLET, EPOLLONESHOT and EPOLLEXCLUSIVE belong to the one registration
    // of the fd, so its watchers must agree on them.
    if (slot.head != nullptr && slot.head->mode != node.mode)
      throw std::logic_error("evw::Poll: fd " + std::to_string(fd) +
                             " is watched in this loop with another PollMode already (mode " +
                             std::to_string(slot.head->mode) + ", asked " + std::to_string(node.mode) + ")");
    unsigned tag = slot.tag + 1;
    if (tag == kNoTag) ++tag;
    events |= events_of(slot.head);
    ExceptBackend& queue = queue_for(node.mode);
    changed(node.mode);  // before: a record the waiter takes meanwhile is not checked as stale
    if (slot.head == nullptr) queue.add(fd, tag, events);
    else queue.modify(fd, tag, events);  // if this throws, the kernel keeps the old tag
    changed(node.mode);
    slot.tag = tag;
  }
  Slot& slot = slots_[index];
  events_[index] = events;
  const unsigned tag = slot.tag;
  node.pri = static_cast<signed char>(ev_priority(static_cast<ev_watcher*>(node.ev())));
  if (by_priority_[node.pri - min_priority]++ == 0) ++priorities_;
  node.prev = nullptr;
  node.next = slot.head;
  if (node.next != nullptr) node.next->prev = &node;
  slot.head = &node;
  slot.one_tag = node.next == nullptr ? tag : kNoTag;
  node.linked = true;
  if (nodes_++ == 0) ev_ref(loop_);
  if ((node.mode & PollMode::Exclusive) != 0) ++exclusive_nodes_;
}

void PriorityTable::rearm(ExceptNode& node) {
  if (!node.linked) return;
  const Slot& slot = slots_[static_cast<std::size_t>(node.fd)];
  queue_for(node.mode).modify(node.fd, slot.tag, events_[static_cast<std::size_t>(node.fd)]);  // the same tag: queued records stay live
}

void PriorityTable::remove(ExceptNode& node) noexcept {
  if (!node.linked) return;
  take_queued(node);
  if (--by_priority_[node.pri - min_priority] == 0) --priorities_;
  Slot& slot = slots_[node.fd];
  if (node.prev != nullptr) node.prev->next = node.next;
  else slot.head = node.next;
  if (node.next != nullptr) node.next->prev = node.prev;
  node.prev = node.next = nullptr;
  node.linked = false;
  // A linked node's queue exists (unless the loop is gone: orphan()).
  ExceptBackend* const queue = (node.mode & PollMode::Exclusive) == 0 ? backend_.get()
                               : exclusive_                           ? &exclusive_->backend()
                                                                      : nullptr;
  if (slot.head == nullptr) {
    if (queue != nullptr) queue->remove(node.fd);
    changed(node.mode);
    slot.one_tag = kNoTag;
  } else {
    // The others' events only: a level-triggered Event::Write nobody asks
    // for any more would otherwise wake the loop on every iteration. Still
    // the tag the kernel has (no new registration).
    bool exact = true;
    if (const unsigned events = events_of(slot.head); events != events_[static_cast<std::size_t>(node.fd)]) {
      try {
        if (queue != nullptr) queue->modify(node.fd, slot.tag, events);
        events_[static_cast<std::size_t>(node.fd)] = events;
      } catch (...) {
        exact = false;  // the wider registration stays; resolve() filters what it reports
      }
      changed(node.mode);
    }
    slot.one_tag = exact && slot.head->next == nullptr ? slot.tag : kNoTag;
  }
  if (--nodes_ == 0) ev_unref(loop_);
  // The exclusive queue and its thread last as long as an exclusive watcher.
  if ((node.mode & PollMode::Exclusive) != 0 && --exclusive_nodes_ == 0) drop_exclusive();
}

void PriorityTable::replace(ExceptNode& from, ExceptNode& to) noexcept {
  Slot& slot = slots_[static_cast<std::size_t>(to.fd)];
  if (to.prev != nullptr) to.prev->next = &to;
  else slot.head = &to;  // a lazy batch finds the watcher through the slot
  if (to.next != nullptr) to.next->prev = &to;
  for (Batch* batch = batch_; batch != nullptr; batch = batch->outer)
    for (int i = 0; i < batch->count; ++i)
      if (batch->entries[i].node == &from) batch->entries[i].node = &to;
  from.prev = from.next = nullptr;
  from.linked = false;
}

// Delivery must look exactly as if every ready watcher had been fed through
// libev's pending queue (ev_feed_event): priority order across all watcher
// types, a pending event kept by set(), cleared by stop(). Feeding costs two
// trips through libev per event, so when nothing else is pending in this
// iteration the watchers are called here directly, highest priority first,
// which is the order libev would pick. As soon as anything else becomes
// pending (a callback fed an event, ran the loop, ...) the rest is fed after
// all, and libev orders it with the newcomer.
//
// Records are looked up as they are dispatched while nothing can tell the
// difference: one priority in the table, one watcher per fd, and no callback
// has touched the table since the drain. Anything else resolves the rest
// into entries first (resolve), whose order and contents are then fixed.
void PriorityTable::on_ready(struct ev_loop*, ev_io* io, int) noexcept {
  auto* self = static_cast<PriorityTable*>(io->data);
  if (self->batch_ != nullptr) [[unlikely]] self->hand_outer_to_libev();
  Batch batch;
  const int n = self->backend_->drain(batch.ready, kBatch);
  if (n <= 0) [[unlikely]] {
    if (n < 0) self->drain_failed(-n);
    return;
  }
  self->deliver(batch, n);
}

// The exclusive queue's waiter published records (exclusive_queue.hpp).
void PriorityTable::on_exclusive(struct ev_loop*, ev_async* async, int) noexcept {
  auto* self = static_cast<PriorityTable*>(async->data);
  if (!self->exclusive_) return;
  if (self->batch_ != nullptr) [[unlikely]] self->hand_outer_to_libev();
  Batch batch;
  bool exact = true;
  const int n = self->exclusive_->take(batch.ready, &exact);
  if (n == 0) return;
  // The waiter polls again once every callback of this iteration has run.
  if (!ev_is_active(&self->resume_)) {
    ev_prepare_start(self->loop_, &self->resume_);
    ev_unref(self->loop_);
  }
  if (n < 0) {
    self->drain_failed(-n);
    return;
  }
  batch.exclusive = true;
  batch.lenient = !exact;
  self->deliver(batch, n);
}

// A callback of an outer batch runs the loop: libev orders the rest now.
void PriorityTable::hand_outer_to_libev() noexcept {
  resolve_all();
  spill(*batch_);
}

void PriorityTable::on_resume(struct ev_loop* loop, ev_prepare* prepare, int) noexcept {
  auto* self = static_cast<PriorityTable*>(prepare->data);
  ev_ref(loop);
  ev_prepare_stop(loop, prepare);
  if (self->exclusive_) self->exclusive_->resume();
}

void PriorityTable::deliver(Batch& batch, int n) noexcept {
  batch.end = batch.ready + n;
  batch.outer = batch_;
  batch_ = &batch;
  const unsigned epoch = feeds_;
  if (ev_pending_count(loop_) != 0 || priorities_ > 1 || Access::failed(*owner_))
      [[unlikely]] {
    resolve(batch);  // the drain itself is no longer counted as pending
  } else {
    // Lazy: ends as soon as a callback touches the table or feeds an event
    // (note_feed resolves the rest; dispatch_entries then decides whether
    // libev must order it).
    // batch.next is re-read after every call: resolve() (from a callback or
    // below) moves it to the end, which ends the lazy loop in the same test.
    for (Ready* ready = batch.next; ready != batch.end; ready = batch.next) {
      const Slot& slot = slot_of(*ready);
      if (!only_one(slot, *ready)) [[unlikely]] {
        resolve(batch);
        break;
      }
      batch.next = ready + 1;
      call(*slot.head, ExceptBackend::revents_of(*ready));
    }
  }
  if (!batch.lazy) dispatch_entries(batch, epoch);
  batch_ = batch.outer;
  if (batch.stale) [[unlikely]] {
    if (batch.exclusive) drop_stale_exclusive();
    else drop_stale();
  }
}

// The records not yet dispatched become entries (or are fed to libev when
// something else is pending, or when there are more watchers than entries),
// sorted by priority.
void PriorityTable::resolve(Batch& batch) noexcept {
  batch.lazy = false;
  const bool direct = ev_pending_count(loop_) == 0 && !Access::failed(*owner_);
  Entry* out = batch.entries;
  Entry* const end = batch.entries + kBatch;
  for (; batch.next != batch.end; ++batch.next) {
    const Ready& ready = *batch.next;
    ExceptNode* node = live(ready);
    if (node == nullptr && !batch.lenient) batch.stale = true;
    const int all = ExceptBackend::revents_of(ready);
    for (; node != nullptr; node = node->next) {
      const int revents = all & node->accepts();  // each watcher of the fd gets its own bits
      if (revents == 0) continue;
      if (!direct || out == end) ev_feed_event(loop_, node->ev(), revents);
      else *out++ = {node, revents};
    }
  }
  batch.count = static_cast<int>(out - batch.entries);
  if (priorities_ > 1) {  // highest priority first; insertion sort: batches are small
    for (int i = 1; i < batch.count; ++i) {
      const Entry entry = batch.entries[i];
      int j = i;
      for (; j > 0 && batch.entries[j - 1].node->pri < entry.node->pri; --j)
        batch.entries[j] = batch.entries[j - 1];
      batch.entries[j] = entry;
    }
  }
}

void PriorityTable::dispatch_entries(Batch& batch, unsigned epoch) noexcept {
  for (int i = 0; i < batch.count; ++i) {
    // Something was fed: if it is pending now, libev must order the rest.
    if (feeds_ != epoch) [[unlikely]] {
      epoch = feeds_;
      if (ev_pending_count(loop_) != 0) {
        spill(batch);
        break;
      }
    }
    Entry& entry = batch.entries[i];
    ExceptNode* node = entry.node;
    if (node == nullptr) continue;  // stopped, destroyed or cleared by an earlier callback
    entry.node = nullptr;
    call(*node, entry.revents);
  }
}

void PriorityTable::spill(Batch& batch) noexcept {
  for (int i = 0; i < batch.count; ++i) {
    Entry& entry = batch.entries[i];
    if (entry.node == nullptr) continue;
    ev_feed_event(loop_, entry.node->ev(), entry.revents);
    entry.node = nullptr;
  }
}

int PriorityTable::take_queued(const ExceptNode& node) noexcept {
  resolve_all();
  int revents = 0;
  for (Batch* batch = batch_; batch != nullptr; batch = batch->outer)
    for (int i = 0; i < batch->count; ++i)
      if (batch->entries[i].node == &node) {
        revents |= batch->entries[i].revents;
        batch->entries[i].node = nullptr;
      }
  return revents;
}

bool PriorityTable::is_queued(const ExceptNode& node) noexcept {
  resolve_all();
  for (const Batch* batch = batch_; batch != nullptr; batch = batch->outer)
    for (int i = 0; i < batch->count; ++i)
      if (batch->entries[i].node == &node) return true;
  return false;
}

void except_start(Loop& loop, ExceptNode& node) { Access::make_priority_table(loop).add(node); }

void except_rearm(Loop& loop, ExceptNode& node) {
  if (PriorityTable* table = Access::priority_table(loop)) table->rearm(node);
}

// WatcherBase::stop() and freeze() have taken the pending event already.
void except_stop(Loop& loop, ExceptNode& node) noexcept {
  if (PriorityTable* table = Access::priority_table(loop)) table->remove(node);
}

int except_take_pending(Loop& loop, ExceptNode& node) noexcept {
  int revents = ev_clear_pending(loop.raw(), static_cast<ev_watcher*>(node.ev()));
  if (PriorityTable* table = Access::priority_table(loop)) revents |= table->take_queued(node);
  return revents;
}

void except_replace(Loop& loop, ExceptNode& from, ExceptNode& to) noexcept {
  if (PriorityTable* table = Access::priority_table(loop)) table->replace(from, to);
}

bool except_is_pending(Loop& loop, const ExceptNode& node) noexcept {
  if (ev_is_pending(static_cast<ev_watcher*>(node.ev()))) return true;
  PriorityTable* table = Access::priority_table(loop);
  return table != nullptr && table->is_queued(node);
}

// An event of a registration nobody owns any more (a file closed under a
// watcher while a dup of it lives on: epoll keeps it armed and DEL cannot
// reach it) is dropped; the only cure is a new kernel queue with the live fds.
// It is the spare (no descriptor needed), else a new one; if neither can be
// had, or a live fd cannot be added for want of memory (ENOMEM, ENOSPC: a
// partial queue would lose its events), the queue is not watched for kRetry
// seconds instead of spinning on the stale condition, and then tried again.
void PriorityTable::drop_stale() noexcept {
  if (orphaned_) return;  // its Loop is gone
  std::unique_ptr<ExceptBackend> fresh = std::move(spare_);
  if (!fresh) {
    try {
      fresh = std::make_unique<ExceptBackend>();
    } catch (const std::exception&) {
      // No descriptor (EMFILE, ENFILE) or no memory: pause below.
    }
  }
  if (fresh) {
    int failed_fd, failed_errno;
    if (populate(*fresh, false, &failed_fd, &failed_errno)) {
      // Any other failure is of an fd closed under its watchers (EBADF): the
      // old queue has no live registration of it either.
      watch_queue(std::move(fresh));
      make_spare();  // in the number the old queue just freed
      return;
    }
    fresh.reset();
    make_spare();
  }
  pause();
}

// Watches the queue again after pause(); a stale condition still there
// brings drop_stale() back at once.
void PriorityTable::on_retry(struct ev_loop*, ev_timer* timer, int) noexcept {
  static_cast<PriorityTable*>(timer->data)->watch_queue();
}

void PriorityTable::pause() noexcept {
  if (ev_is_active(&retry_)) return;  // a nested run() paused already
  if (nodes_ == 0) ev_ref(loop_);  // as in watch_queue: io_'s count passes to retry_
  ev_io_stop(loop_, &io_);
  ev_timer_set(&retry_, kRetry, kRetry);
  ev_timer_start(loop_, &retry_);
  if (nodes_ == 0) ev_unref(loop_);
}

// io_ watches backend_ again, in place of retry_ (or of itself); with fresh,
// that becomes backend_ and the old queue is closed (after io_ let go of it).
void PriorityTable::watch_queue(std::unique_ptr<ExceptBackend> fresh) noexcept {
  if (nodes_ == 0) ev_ref(loop_);  // the stop counts it off again
  if (ev_is_active(&retry_)) ev_timer_stop(loop_, &retry_);
  else ev_io_stop(loop_, &io_);
  if (fresh) backend_ = std::move(fresh);
  ev_io_set(&io_, backend_->pollable_fd(), EV_READ);
  ev_io_start(loop_, &io_);
  if (nodes_ == 0) ev_unref(loop_);
}

void PriorityTable::make_spare() noexcept {
  if (spare_) return;
  try {
    spare_ = std::make_unique<ExceptBackend>();
  } catch (const std::exception&) {
    // None now: drop_stale() tries to create its queue then.
  }
}

// The kernel queue could not be read (EINTR is retried in drain): run()
// throws it, like a callback's exception. The conditions stay queued and the
// internal ev_io stays readable, so the next run() delivers them.
void PriorityTable::drain_failed(int err) noexcept {
  try {
    throw_system(err, "evw::Priority: epoll_wait on the loop's EPOLLPRI set");
  } catch (...) {
    Access::capture(*owner_, std::current_exception());
  }
}

// Registers every live fd in fresh; the first that cannot be added is
// reported (*failed_fd = -1 if none), the others are added all the same.
// @return false if an fd could not be added for want of memory (ENOMEM,
// ENOSPC: max_user_watches), which a later try may cure.
bool PriorityTable::populate(ExceptBackend& fresh, bool exclusive, int* failed_fd, int* failed_errno) noexcept {
  bool short_of_memory = false;
  *failed_fd = -1;
  *failed_errno = 0;
  for (std::size_t fd = 0; fd < slots_.size(); ++fd) {
    if (slots_[fd].head == nullptr) continue;
    if (((slots_[fd].head->mode & PollMode::Exclusive) != 0) != exclusive) continue;
    int err = 0;
    try {
      // A disarmed one-shot registration comes back armed: at worst one event early.
      fresh.add(static_cast<int>(fd), slots_[fd].tag, events_[fd]);
    } catch (const std::system_error& e) {
      err = e.code().value();
    } catch (const std::exception&) {  // std::bad_alloc building the message
      err = ENOMEM;
    }
    if (err == 0) continue;
    if (err == ENOMEM || err == ENOSPC) short_of_memory = true;
    if (*failed_fd < 0) *failed_fd = static_cast<int>(fd), *failed_errno = err;
  }
  return !short_of_memory;
}

// A new kernel queue with every live fd registered again. @return false if an
// fd could not be added (the first such fd and errno are reported).
// @throws std::system_error if no new queue can be created (nothing changed
// but the spare, which is dropped).
bool PriorityTable::rebuild(int* failed_fd, int* failed_errno) {
  spare_.reset();  // in a forked child it is the parent's too: never to be used
  auto fresh = std::make_unique<ExceptBackend>();
  populate(*fresh, false, failed_fd, failed_errno);
  watch_queue(std::move(fresh));
  make_spare();
  return *failed_fd < 0;
}

void PriorityTable::after_fork() {
  // The inherited queue is shared with the parent: build a private one.
  const bool forked = ::getpid() != pid_;
  pid_ = ::getpid();
  int failed_fd, failed_errno;
  bool rebuilt = rebuild(&failed_fd, &failed_errno);
  if (exclusive_ && forked) {
    // The child has no waiter: the old queue is closed without it, and a
    // new one gets its own.
    exclusive_->abandon();
    exclusive_.reset();
    int ex_fd, ex_errno;
    exclusive_ = fresh_exclusive(&ex_fd, &ex_errno);
    if (rebuilt && ex_fd >= 0) {  // the first failure is reported
      rebuilt = false;
      failed_fd = ex_fd;
      failed_errno = ex_errno;
    }
  }
  if (!rebuilt)
    throw_system(failed_errno, "evw::Loop::fork: cannot watch fd " + std::to_string(failed_fd) +
                                   " again in the child");
}

// The exclusive queue, made on first use (with its waiter).
ExceptBackend& PriorityTable::queue_for(int mode) {
  if ((mode & PollMode::Exclusive) == 0) [[likely]]
    return *backend_;
  if (!exclusive_) make_exclusive();
  return exclusive_->backend();
}

// The last exclusive watcher stopped: the queue (its thread, epoll and two
// eventfds) goes. Its records in hand, if any, were copied into a batch.
void PriorityTable::drop_exclusive() noexcept {
  if (!exclusive_) return;
  exclusive_.reset();  // joins the waiter: it sends async_ no more
  ev_ref(loop_);
  ev_async_stop(loop_, &async_);
  if (ev_is_active(&resume_)) {
    ev_ref(loop_);
    ev_prepare_stop(loop_, &resume_);
  }
}

void PriorityTable::make_exclusive() {
  exclusive_ = std::make_unique<ExclusiveQueue>(loop_, &async_);
  if (ev_is_active(&async_)) return;  // after_fork lost the last queue, async_ stayed
  ev_async_start(loop_, &async_);
  ev_unref(loop_);
}

// A new exclusive queue with every live exclusive fd registered (the first
// that cannot be is reported in *failed_fd, else -1).
// @throws std::system_error if there is no queue or thread to be had.
std::unique_ptr<ExclusiveQueue> PriorityTable::fresh_exclusive(int* failed_fd, int* failed_errno) {
  auto fresh = std::make_unique<ExclusiveQueue>(loop_, &async_);
  populate(fresh->backend(), true, failed_fd, failed_errno);
  return fresh;
}

// A stale exclusive registration (a file closed under its watcher while a
// dup lives on) is cured as the side-queue's is: a new queue with the live
// fds. If none can be made now, the waiter goes on reporting the record and
// the next batch tries again.
void PriorityTable::drop_stale_exclusive() noexcept {
  if (orphaned_ || !exclusive_) return;
  try {
    int failed_fd, failed_errno;
    std::unique_ptr<ExclusiveQueue> fresh = fresh_exclusive(&failed_fd, &failed_errno);
    exclusive_.swap(fresh);  // fresh, the old one, joins its waiter as it goes
    if (ev_is_active(&resume_)) {  // the new waiter waits for no resume()
      ev_ref(loop_);
      ev_prepare_stop(loop_, &resume_);
    }
  } catch (const std::exception&) {
    // No descriptor or thread now.
  }
}

void PriorityTable::on_fork(struct ev_loop*, ev_fork* w, int) noexcept {
  auto* self = static_cast<PriorityTable*>(w->data);
  if (::getpid() == self->pid_) return;  // Loop::fork() rebuilt it already
  try {
    self->after_fork();
  } catch (...) {
    Access::capture(*self->owner_, std::current_exception());  // run() throws it
  }
}

}  // namespace evw::detail
