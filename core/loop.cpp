#include "loop.hpp"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <system_error>

#include "access.hpp"
#include "priority_table.hpp"
#include "signals.hpp"

namespace evw {

// evw's constants are libev's, so masks pass between the two unchanged.
static_assert(READ == EV_READ && WRITE == EV_WRITE && TIMER == EV_TIMER &&
              PERIODIC == EV_PERIODIC && SIGNAL == EV_SIGNAL && CHILD == EV_CHILD &&
              STAT == EV_STAT && IDLE == EV_IDLE && PREPARE == EV_PREPARE &&
              CHECK == EV_CHECK && EMBED == EV_EMBED && FORK == EV_FORK &&
              CLEANUP == EV_CLEANUP && ASYNC == EV_ASYNC && CUSTOM == EV_CUSTOM &&
              ERROR == EV_ERROR);
static_assert(((PRI | HUP | ERR) & (EV_READ | EV_WRITE | EV__IOFDSET | EV_TIMER)) == 0);
static_assert(ONCE == EVRUN_ONCE && NOWAIT == EVRUN_NOWAIT && BREAK_ONE == EVBREAK_ONE &&
              BREAK_ALL == EVBREAK_ALL && BREAK_CANCEL == EVBREAK_CANCEL);
static_assert(MINPRI == EV_MINPRI && MAXPRI == EV_MAXPRI);
static_assert(FLAG_NOENV == EVFLAG_NOENV && FLAG_FORKCHECK == EVFLAG_FORKCHECK &&
              FLAG_NOINOTIFY == EVFLAG_NOINOTIFY && FLAG_SIGNALFD == EVFLAG_SIGNALFD &&
              FLAG_NOSIGMASK == EVFLAG_NOSIGMASK && FLAG_NOTIMERFD == EVFLAG_NOTIMERFD &&
              BACKEND_SELECT == EVBACKEND_SELECT && BACKEND_POLL == EVBACKEND_POLL &&
              BACKEND_EPOLL == EVBACKEND_EPOLL && BACKEND_KQUEUE == EVBACKEND_KQUEUE &&
              BACKEND_DEVPOLL == EVBACKEND_DEVPOLL && BACKEND_PORT == EVBACKEND_PORT &&
              BACKEND_LINUXAIO == EVBACKEND_LINUXAIO && BACKEND_IOURING == EVBACKEND_IOURING);

namespace {

[[noreturn]] void throw_loop_failure(const char* what, unsigned flags) {
  int err = errno != 0 ? errno : EINVAL;
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%x", flags);
  throw std::system_error(err, std::generic_category(),
                          std::string("evw::Loop: ") + what + " failed for flags " + hex);
}

}  // namespace

Loop::Loop(unsigned flags) {
  errno = 0;
  raw_ = ev_loop_new(flags);
  if (raw_ == nullptr) throw_loop_failure("ev_loop_new", flags);
}

Loop::Loop(DefaultTag) : is_default_(true) {
  // ev_default_loop starts libev's own SIGCHLD watcher: take the signal first,
  // so that a SIGCHLD watcher in another loop is an error and not an assert.
  detail::claim_signal(SIGCHLD, *this, "Loop::default_loop");
  errno = 0;
  raw_ = ev_default_loop(0);
  if (raw_ == nullptr) {
    detail::release_signal(SIGCHLD, *this);
    throw_loop_failure("ev_default_loop", 0);
  }
}

Loop& Loop::default_loop() {
  static Loop loop{DefaultTag{}};
  return loop;
}

Loop::~Loop() {
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
  priority_.reset();
  ev_loop_destroy(raw_);  // runs the Cleanup watchers
  while (head_ != nullptr) release(*head_, false);
  if (is_default_) detail::release_signal(SIGCHLD, *this);
}

bool Loop::run(int flags) {
  // An exception captured outside run() (a Periodic's reschedule callable
  // called from resume() or update_now()) is reported before anything runs.
  if (failed_) [[unlikely]] rethrow();
  // libev's ev_run cancels a pending break on entry, so a nested run() would
  // swallow a stop() that a callback asked of the enclosing one: re-issue it.
  const int enclosing = std::exchange(break_, 0);
  bool more = ev_run(raw_, flags) != 0;
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
  if (how != BREAK_CANCEL && how != BREAK_ALL) how = BREAK_ONE;
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
  ev_loop_fork(raw_);
  if (priority_) priority_->after_fork();
}

void Loop::remove(detail::WatcherBase& w) {
  if (w.loop_ != this || !w.owned_)
    throw std::logic_error(std::string("evw::Loop::remove: the ") + w.kind_ +
                           " watcher is not owned by this loop (create it with Loop::add)");
  std::unique_ptr<detail::WatcherBase>(&w).reset();
}

void Loop::adopt(detail::WatcherBase& w) noexcept { w.owned_ = true; }

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
