#include "child.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <utility>

#include "../core/access.hpp"
#include "../core/sys.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<56>) >= sizeof(ev_child));
static_assert(sizeof(detail::EvStorage<48>) >= sizeof(ev_io));

namespace {

void child_callback(struct ev_loop*, ev_child* w, int revents) noexcept {
  detail::dispatch(*static_cast<Child*>(w->data), revents);
}

void check(int pid) {
  if (pid < 0)
    detail::throw_invalid("Child", "pid",
                          std::to_string(pid) + " is negative (use 0 for any child)");
}

// libev asserts that ev_child watchers live in the default loop; elsewhere a
// pidfd stands in, which can wait for one child's exit only.
void check_loop(const Loop& loop, int pid, bool trace) {
  if (loop.is_default()) return;
  if (pid == 0)
    throw std::logic_error(
        "evw::Child: pid 0 (any child) needs Loop::default_loop(), which owns SIGCHLD; "
        "other loops watch one child by its pidfd");
  if (trace)
    throw std::logic_error(
        "evw::Child: trace (stops and continues) needs Loop::default_loop(), which owns SIGCHLD; "
        "other loops watch a child's exit by its pidfd");
}

// The status waitpid() would have given for what waitid() says.
int wait_status(const siginfo_t& info) noexcept {
  switch (info.si_code) {
    case CLD_EXITED: return (info.si_status & 0xff) << 8;
    case CLD_KILLED: return info.si_status & 0x7f;
    case CLD_DUMPED: return (info.si_status & 0x7f) | 0x80;
    default: return 0;
  }
}

// P_PIDFD (Linux 5.4): glibc has it in idtype_t since 2.36; the number is the kernel's.
constexpr auto kPidfd = static_cast<idtype_t>(3);

}  // namespace

struct detail::ChildPidfd {
  static ev_io* io(Child& c) noexcept { return reinterpret_cast<ev_io*>(&c.pidfd_io_); }
  static const ev_io* io(const Child& c) noexcept { return reinterpret_cast<const ev_io*>(&c.pidfd_io_); }

  static void close(Child& c) noexcept {
    if (c.pidfd_ >= 0) sys::close(c.pidfd_);
    c.pidfd_ = -1;
  }

  // The child exited (its pidfd is readable): reap it, then deliver through
  // the watcher's own ev_child (fed), like libev's SIGCHLD path.
  static void on_readable(struct ev_loop* raw, ev_io* w, int) noexcept {
    Child& c = *static_cast<Child*>(w->data);
    siginfo_t info{};
    const int r = sys::retry_eintr([&] { return sys::waitid(kPidfd, static_cast<id_t>(c.pidfd_), &info, WEXITED | WNOHANG); });
    int revents = Event::Child;
    auto* ev = reinterpret_cast<ev_child*>(&c.ev_);
    if (r < 0) {
      // ECHILD: reaped by someone else first (the default loop's waitpid(-1)).
      c.error_ = std::error_code(errno, std::generic_category());
      ev->rpid = ev->pid;
      ev->rstatus = 0;
      revents = Event::Error;
    } else if (info.si_pid == 0) {
      return;  // not reapable yet
    } else {
      ev->rpid = info.si_pid;
      ev->rstatus = wait_status(info);
    }
    // Gone for good: stop (the pidfd stays readable) and deliver.
    ev_io_stop(raw, w);
    close(c);
    Access::note_feed(*Access::loop(c));
    ev_feed_event(raw, ev, revents);
  }

  static void start(Child& c) {
    const int pid = c.pid();
    const int fd = sys::pidfd_open(pid, 0);
    if (fd < 0) {
      const int err = errno;
      throw_system(err, "evw::Child::start: pidfd_open(" + std::to_string(pid) + ")" +
                            (err == ENOSYS ? ": this kernel has no pidfds (Linux 5.3); "
                                             "outside the default loop Child needs them"
                                           : ""));
    }
    c.pidfd_ = fd;
    // Is it our child? waitid would only say so at its exit (ECHILD, and the
    // exit would be lost); ask now without reaping anything.
    siginfo_t info{};
    if (sys::retry_eintr([&] { return sys::waitid(kPidfd, static_cast<id_t>(fd), &info, WEXITED | WNOHANG | WNOWAIT); }) < 0) {
      const int err = errno;
      close(c);
      throw_system(err, "evw::Child::start: waitid(P_PIDFD) for pid " + std::to_string(pid) +
                            (err == ECHILD ? ": not a child of this process"
                             : err == EINVAL ? ": this kernel has no waitid(P_PIDFD) (Linux 5.4)"
                                             : ""));
    }
    ev_io_set(io(c), fd, EV_READ);
    ev_set_priority(io(c), c.priority());
    ev_io_start(c.raw_loop(), io(c));
    c.error_.clear();
  }

  static void stop(Child& c) noexcept {
    ev_io_stop(c.raw_loop(), io(c));
    close(c);
  }
};

Child::Child(Loop& loop, int pid, Callback cb) : Child(loop, pid, false, std::move(cb)) {}

Child::Child(Loop& loop, int pid, bool trace, Callback cb)
    : Watcher(loop, &ev_, "Child", std::move(cb)) {
  check(pid);
  check_loop(loop, pid, trace);
  pidfd_form_ = !loop.is_default();
  auto* io = detail::ChildPidfd::io(*this);
  ev_init(io, detail::ChildPidfd::on_readable);
  io->data = this;
  auto* w = detail::ev_of<ev_child>(*this);
  ev_child_set(w, pid, trace);
  w->rpid = 0;
  w->rstatus = 0;
  ev_set_cb(w, child_callback);
  // libev sets max_priority itself when a status arrives (child_reap); doing it now
  // keeps priority() truthful and a pending event in the right queue.
  ev_set_priority(w, max_priority);
}

Child::~Child() { stop(); }

Child::Child(Child&& other)
    : Watcher(std::move(other), &ev_), pidfd_form_(other.pidfd_form_), error_(other.error_) {
  auto* io = detail::ChildPidfd::io(*this);
  ev_init(io, detail::ChildPidfd::on_readable);
  io->data = this;
  finish_move(other, sizeof ev_);
}

// The pidfd form: the old watcher's ev_io stops, its pidfd stays open for the
// new one. An exit seen but not yet reaped is seen again: the pidfd of a
// zombie stays readable.
void Child::rehome_stop_impl() noexcept {
  if (pidfd_form_) ev_io_stop(raw_loop(), detail::ChildPidfd::io(*this));
  else ev_child_stop(raw_loop(), detail::ev_of<ev_child>(*this));
}

void Child::rehome_start_impl(WatcherBase& from, bool active) noexcept {
  auto& old = static_cast<Child&>(from);
  if (!pidfd_form_) {
    if (active) ev_child_start(raw_loop(), detail::ev_of<ev_child>(*this));
    return;
  }
  pidfd_ = std::exchange(old.pidfd_, -1);
  if (!active) return;
  auto* io = detail::ChildPidfd::io(*this);
  ev_io_set(io, pidfd_, EV_READ);
  ev_set_priority(io, priority());
  ev_io_start(raw_loop(), io);
}

void Child::set(int pid, bool trace) {
  check(pid);
  if (pidfd_form_) check_loop(loop(), pid, trace);
  Frozen frozen = freeze();
  ev_child_set(detail::ev_of<ev_child>(*this), pid, trace);
  thaw(frozen);
}

void Child::check_priority(int pri) const {
  if (pri != max_priority)
    detail::throw_invalid("Child", "priority",
                          std::to_string(pri) + ": child watchers always run at max_priority (" +
                              std::to_string(max_priority) + "), libev resets any other");
}

int Child::pid() const noexcept { return detail::ev_of<ev_child>(*this)->pid; }
bool Child::trace() const noexcept { return (detail::ev_of<ev_child>(*this)->flags & 1) != 0; }
int Child::rpid() const noexcept { return detail::ev_of<ev_child>(*this)->rpid; }
int Child::rstatus() const noexcept { return detail::ev_of<ev_child>(*this)->rstatus; }

void Child::start_impl() {
  if (pidfd_form_) detail::ChildPidfd::start(*this);
  else ev_child_start(raw_loop(), detail::ev_of<ev_child>(*this));
}

void Child::stop_impl() noexcept {
  if (pidfd_form_) detail::ChildPidfd::stop(*this);
  else ev_child_stop(raw_loop(), detail::ev_of<ev_child>(*this));
}

bool Child::active_impl() const noexcept {
  return pidfd_form_ ? ev_is_active(detail::ChildPidfd::io(*this)) : WatcherBase::active_impl();
}

// The pidfd form: an exit seen but not yet reaped (its ev_io pending) is
// dropped with the pidfd, not fed back: the child is still a zombie, so the
// pidfd of the restart is readable again and reports it then.
bool Child::pending_impl() const noexcept {
  return WatcherBase::pending_impl() || (pidfd_form_ && ev_is_pending(detail::ChildPidfd::io(*this)));
}

int Child::take_pending() noexcept {
  if (pidfd_form_) ev_clear_pending(raw_loop(), detail::ChildPidfd::io(*this));
  return WatcherBase::take_pending();
}

}  // namespace evw
