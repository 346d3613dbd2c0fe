#include "loop.hpp"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <system_error>

#include "access.hpp"
#include "fd_check.hpp"
#include "priority_table.hpp"
#include "signals.hpp"
#include "wakeup.hpp"

namespace evw {

// evw's constants are libev's, so masks pass between the two unchanged.
static_assert(Event::Read == EV_READ && Event::Write == EV_WRITE && Event::Timer == EV_TIMER &&
              Event::Periodic == EV_PERIODIC && Event::Signal == EV_SIGNAL && Event::Child == EV_CHILD &&
              Event::Stat == EV_STAT && Event::Idle == EV_IDLE && Event::Prepare == EV_PREPARE &&
              Event::Check == EV_CHECK && Event::Embed == EV_EMBED && Event::Fork == EV_FORK &&
              Event::Cleanup == EV_CLEANUP && Event::Async == EV_ASYNC && Event::Custom == EV_CUSTOM &&
              Event::Error == EV_ERROR);
static_assert(((Event::Pri | Event::Hup | Event::RdHup) & (EV_READ | EV_WRITE | EV__IOFDSET | EV_TIMER)) == 0);
static_assert(Run::Once == EVRUN_ONCE && Run::NoWait == EVRUN_NOWAIT && Break::One == EVBREAK_ONE &&
              Break::All == EVBREAK_ALL && Break::Cancel == EVBREAK_CANCEL);
static_assert(min_priority == EV_MINPRI && max_priority == EV_MAXPRI);
static_assert(LoopFlag::NoEnv == EVFLAG_NOENV && LoopFlag::ForkCheck == EVFLAG_FORKCHECK &&
              LoopFlag::NoInotify == EVFLAG_NOINOTIFY && LoopFlag::SignalFd == EVFLAG_SIGNALFD &&
              LoopFlag::NoSigMask == EVFLAG_NOSIGMASK && LoopFlag::NoTimerFd == EVFLAG_NOTIMERFD &&
              Backend::Select == EVBACKEND_SELECT && Backend::Poll == EVBACKEND_POLL &&
              Backend::Epoll == EVBACKEND_EPOLL && Backend::Kqueue == EVBACKEND_KQUEUE &&
              Backend::DevPoll == EVBACKEND_DEVPOLL && Backend::Port == EVBACKEND_PORT &&
              Backend::LinuxAio == EVBACKEND_LINUXAIO && Backend::IoUring == EVBACKEND_IOURING);

namespace {

[[noreturn]] void throw_loop_failure(const char* what, unsigned flags) {
  int err = errno != 0 ? errno : EINVAL;
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%x", flags);
  throw std::system_error(err, std::generic_category(),
                          std::string("evw::Loop: ") + what + " failed for flags " + hex);
}

}  // namespace

namespace detail {

// One run() in progress. A callback may destroy its own Loop: ~Loop then
// stops and releases every watcher as usual, but cannot free the libev loop
// (ev_run is on the stack and touches it until it returns) nor the EPOLLPRI
// table (its on_ready may be on the stack). It hands both to the outermost
// run(), marks every frame gone and breaks all levels; each run() returns
// without touching its Loop, and the outermost frees what it was handed and
// rethrows an exception a callback threw meanwhile.
struct RunFrame {
  RunFrame(RunFrame* enclosing, WatcherBase* caller) noexcept : outer(enclosing), running(caller) {}
  RunFrame* outer;
  WatcherBase* running;  // the watcher whose callback called this run(), if any
  bool gone = false;
  // Set on the outermost frame of a destroyed loop:
  const Loop* loop = nullptr;  // its address: Access::capture recognises it
  struct ev_loop* raw = nullptr;
  std::unique_ptr<PriorityTable> table;
  std::exception_ptr error;
  RunFrame* next_gone = nullptr;

  bool unwind();
};

namespace {
thread_local RunFrame* t_gone = nullptr;  // outermost frames of loops destroyed while running
}

bool RunFrame::unwind() {
  if (outer != nullptr) return false;  // the outermost run() of the dead loop finishes
  RunFrame** link = &t_gone;
  while (*link != this) link = &(*link)->next_gone;
  *link = next_gone;
  table.reset();
  ev_loop_destroy(raw);
  if (error) std::rethrow_exception(std::move(error));
  return false;
}

FdCheck& Access::make_fd_check(Loop& loop, void (*on_prepare)(struct ev_loop*, ev_prepare*, int)) {
  if (!loop.fd_check_) loop.fd_check_ = std::make_unique<FdCheck>(loop, on_prepare);
  return *loop.fd_check_;
}

void Access::capture(Loop& loop, std::exception_ptr e) noexcept {
  for (RunFrame* frame = t_gone; frame != nullptr; frame = frame->next_gone)
    if (frame->loop == &loop) {
      if (!frame->error) frame->error = std::move(e);
      return;
    }
  loop.capture(std::move(e));
}

// Something was fed into libev's queue: the EPOLLPRI table's batch on the
// stack must know, and outside run() libev would dispatch it only after its
// next poll, which may block (for ever, with no timer): see Wakeup::kick.
void Access::note_feed(Loop& loop) noexcept {
  if (loop.priority_) loop.priority_->note_feed();
  if (ev_depth(loop.raw_) == 0) loop.wakeup_->kick();
}

void Access::capture_current(Loop& loop) noexcept { capture(loop, std::current_exception()); }

void Access::defer_or_capture(Loop& loop, WatcherBase& w, int revents) noexcept {
  try {
    defer(loop, w, revents);
  } catch (...) {
    capture_current(loop);
  }
}

}  // namespace detail

Loop::Loop(unsigned flags) {
  errno = 0;
  raw_ = ev_loop_new(flags);
  if (raw_ == nullptr) throw_loop_failure("ev_loop_new", flags);
  try {
    wakeup_ = std::make_shared<detail::Wakeup>(*this);
  } catch (...) {
    ev_loop_destroy(raw_);
    throw;
  }
}

Loop::Loop(DefaultTag) : is_default_(true) {
  errno = 0;
  raw_ = ev_default_loop(0);
  if (raw_ == nullptr) throw_loop_failure("ev_default_loop", 0);
  // ev_default_loop started libev's own SIGCHLD watcher (it reaps children
  // for Child), which installed libev's handler: if evw's already served
  // SIGCHLD, it takes it back and passes each SIGCHLD on to libev.
  detail::after_default_loop();
  wakeup_ = std::make_shared<detail::Wakeup>(*this);
}

Loop& Loop::default_loop() {
  static Loop loop{DefaultTag{}};
  return loop;
}

Loop::~Loop() {
  wakeup_->close();  // queued posts are destroyed while every watcher still exists
  for (auto* fn : on_destroy_) fn(*this);
  // Detach a watcher: stop it, forget it, destroy it if the loop owns it.
  auto release = [this](detail::WatcherBase& w, bool libev_alive) {
    if (libev_alive) w.stop();
    unlink(w);
    w.loop_ = nullptr;
    if (w.owned_) std::unique_ptr<detail::WatcherBase>(&w).reset();
  };
  // Everything but active Cleanup watchers stops now. A destroyed owned
  // watcher may destroy others, so restart from the head each time.
  for (;;) {
    detail::WatcherBase* w = head_;
    while (w != nullptr && w->runs_at_loop_destroy() && w->is_active()) w = w->next_;
    if (w == nullptr) break;
    release(*w, true);
  }
  if (frame_ == nullptr && ev_depth(raw_) == 0) [[likely]] {
    priority_.reset();
    fd_check_.reset();
    wakeup_->stop();
    ev_loop_destroy(raw_);  // runs the Cleanup watchers
    while (head_ != nullptr) release(*head_, false);
    return;
  }
  // Destroyed while libev runs it: by a callback (see RunFrame), or inside an
  // ev_run that is not ours (an embedding loop's sweep). The Cleanup watchers
  // run now, one at a time (ev_loop_destroy would run every pending watcher).
  while (head_ != nullptr) {
    detail::WatcherBase* w = head_;
    if (!w->runs_at_loop_destroy() || !w->is_active()) {  // one a cleanup callback made
      release(*w, true);
      continue;
    }
    ev_invoke(raw_, static_cast<ev_watcher*>(w->ev()), EV_CLEANUP);
    if (head_ == w) release(*w, true);  // else the callback destroyed it
  }
  if (priority_) priority_->orphan();
  fd_check_.reset();
  wakeup_->stop();
  ev_break(raw_, EVBREAK_ALL);
  if (frame_ == nullptr) {
    // Nobody to hand the libev loop to: it (and the table) is left allocated.
    static_cast<void>(priority_.release());
    return;
  }
  detail::RunFrame* outermost = frame_;
  for (detail::RunFrame* frame = frame_; frame != nullptr; frame = frame->outer) {
    frame->gone = true;
    outermost = frame;
  }
  outermost->loop = this;
  outermost->raw = raw_;
  outermost->table = std::move(priority_);
  outermost->error = std::move(error_);
  outermost->next_gone = detail::t_gone;
  detail::t_gone = outermost;
}

bool Loop::run(int flags) {
  // An exception captured outside run() (a Periodic's reschedule callable
  // called from resume() or update_now()) is reported before anything runs.
  if (failed_) [[unlikely]] rethrow();
  // libev's ev_run cancels a pending break on entry, so a nested run() would
  // swallow a stop() that a callback asked of the enclosing one: re-issue it.
  const int enclosing = std::exchange(break_, 0);
  detail::RunFrame frame{frame_, running_};
  frame_ = &frame;
  bool more = ev_run(raw_, flags) != 0;
  if (frame.gone) [[unlikely]] return frame.unwind();  // a callback destroyed this loop
  // With nothing active, ev_run made one iteration and returned: functions
  // posted meanwhile (by the posts it ran, or racing with its end) run now.
  // ev_run's first iteration never blocks when nothing is active.
  while (!more && flags == Run::Default && break_ == 0 && !failed_ && wakeup_->has_posts()) [[unlikely]] {
    more = ev_run(raw_, flags) != 0;
    if (frame.gone) return frame.unwind();
  }
  frame_ = frame.outer;
  running_ = frame.running;  // back in the callback that called this run(), if any
  if (enclosing != 0 && ev_depth(raw_) > 0) {
    ev_break(raw_, enclosing);
    break_ = enclosing;
  }
  if (failed_) [[unlikely]] rethrow();
  return more;
}

void Loop::rethrow() {
  failed_ = false;
  // Events libev had ready but that were not run go back into the queue, in
  // order, so the next run() delivers them first.
  auto deferred = std::move(deferred_);
  deferred_.clear();
  if (!deferred.empty()) detail::Access::note_feed(*this);
  for (auto& [w, revents] : deferred) ev_feed_event(raw_, detail::Access::ev(*w), revents);
  // A nested run() broke every level; if the caller handles the exception
  // inside a callback, the outer run() should go on.
  if (ev_depth(raw_) > 0) ev_break(raw_, EVBREAK_CANCEL);
  std::rethrow_exception(std::exchange(error_, nullptr));
}

void Loop::stop(int how) noexcept {
  if (how != Break::Cancel && how != Break::All) how = Break::One;
  break_ = how;
  ev_break(raw_, how);
}

double Loop::now() const noexcept { return ev_now(raw_); }
void Loop::update_now() noexcept { ev_now_update(raw_); }
unsigned Loop::iteration() const noexcept { return ev_iteration(raw_); }
unsigned Loop::depth() const noexcept { return ev_depth(raw_); }
unsigned Loop::backend() const noexcept { return ev_backend(raw_); }
unsigned Loop::pending_count() const noexcept { return ev_pending_count(raw_); }
void Loop::suspend() noexcept { ev_suspend(raw_); }
void Loop::resume() noexcept { ev_resume(raw_); }

void Loop::fork() {
  ev_loop_fork(raw_);  // the closed-fd check's fork watcher runs in the next iteration
  if (priority_) priority_->after_fork();
}

void Loop::remove(detail::WatcherBase& w) {
  if (w.loop_ != this || !w.owned_)
    throw std::logic_error(std::string("evw::Loop::remove: the ") + w.kind() +
                           " watcher is not owned by this loop (create it with Loop::add)");
  std::unique_ptr<detail::WatcherBase>(&w).reset();
}

void Loop::adopt(detail::WatcherBase& w) noexcept { w.owned_ = true; }

bool Loop::post_function(detail::Function<void()>&& fn) {
  if (!fn) throw std::invalid_argument("evw::Loop::post: the function is empty");
  return wakeup_->push(fn);
}

LoopHandle Loop::handle() const { return LoopHandle(wakeup_); }

void Loop::link(detail::WatcherBase& w) noexcept {
  w.prev_ = nullptr;
  w.next_ = head_;
  if (head_ != nullptr) head_->prev_ = &w;
  head_ = &w;
  ++count_;
}

void Loop::unlink(detail::WatcherBase& w) noexcept {
  if (w.prev_ != nullptr) w.prev_->next_ = w.next_;
  else head_ = w.next_;
  if (w.next_ != nullptr) w.next_->prev_ = w.prev_;
  w.prev_ = w.next_ = nullptr;
  --count_;
}

void Loop::replace(detail::WatcherBase& from, detail::WatcherBase& to) noexcept {
  to.prev_ = std::exchange(from.prev_, nullptr);
  to.next_ = std::exchange(from.next_, nullptr);
  if (to.prev_ != nullptr) to.prev_->next_ = &to;
  else head_ = &to;
  if (to.next_ != nullptr) to.next_->prev_ = &to;
  // Events recorded after a callback threw go to the new address too.
  for (auto& entry : deferred_)
    if (entry.first == &from) entry.first = &to;
}

bool Loop::is_running(const detail::WatcherBase& w) const noexcept {
  if (running_ == &w) return true;
  for (const detail::RunFrame* frame = frame_; frame != nullptr; frame = frame->outer)
    if (frame->running == &w) return true;
  return false;
}

// w is destroyed: a watcher built later at its address is not running.
void Loop::forget_running(const detail::WatcherBase& w) noexcept {
  if (running_ == &w) running_ = nullptr;
  for (detail::RunFrame* frame = frame_; frame != nullptr; frame = frame->outer)
    if (frame->running == &w) frame->running = nullptr;
}

void Loop::capture(std::exception_ptr error) noexcept {
  if (!error_) error_ = std::move(error);
  failed_ = true;
  ev_break(raw_, EVBREAK_ALL);
  // Events the EPOLLPRI table was about to call directly go through libev's
  // queue now, whose dispatch defers them.
  if (priority_) priority_->hand_over();
}

void Loop::defer(detail::WatcherBase& w, int revents) { deferred_.emplace_back(&w, revents); }

void Loop::forget(detail::WatcherBase& w) noexcept {
  std::erase_if(deferred_, [&w](const auto& entry) { return entry.first == &w; });
}

}  // namespace evw
