#include "signal.hpp"

#include <signal.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "../core/access.hpp"
#include "../core/signals.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<48>) >= sizeof(ev_signal));

namespace {

void signal_callback(struct ev_loop*, ev_signal* w, int revents) noexcept {
  detail::dispatch(*static_cast<Signal*>(w->data), revents);
}

void check(int signum) {
  if (signum < 1 || signum >= NSIG)
    detail::throw_invalid("Signal", "signum",
                          std::to_string(signum) + " is outside [1, " + std::to_string(NSIG - 1) + "]");
  if (signum == SIGKILL || signum == SIGSTOP)
    detail::throw_invalid("Signal", "signum",
                          std::to_string(signum) + " (" + ::strsignal(signum) + ") cannot be caught");
  // The C library keeps some for itself (glibc: 32 and 33, below SIGRTMIN)
  // and refuses them in sigaction and sigaddset, which libev does not check:
  // the watcher would never fire and the signal would still kill the process.
  struct sigaction current {};
  if (::sigaction(signum, nullptr, &current) != 0)
    detail::throw_invalid("Signal", "signum",
                          std::to_string(signum) + " is reserved by the C library (sigaction: " +
                              ::strerror(errno) + ")");
}

}  // namespace

Signal::Signal(Loop& loop, int signum, Callback cb)
    : Watcher(loop, &ev_, "Signal", std::move(cb)) {
  check(signum);
  auto* w = detail::ev_of<ev_signal>(*this);
  ev_signal_set(w, signum);
  ev_set_cb(w, signal_callback);
}

Signal::~Signal() { stop(); }

Signal::Signal(Signal&& other) : Watcher(std::move(other), &ev_) { finish_move(other, sizeof ev_); }

void Signal::set(int signum) {
  check(signum);
  // Moving the last watcher of a signal to another one leaves libev's
  // "received" flag of the old signal behind, as stop() would (see
  // discard_impl): drop it here too, keeping only a real pending event.
  int kept = 0;
  if (is_active() && signum != this->signum()) {
    kept = take_pending();
    discard_impl();
    take_pending();
  }
  Frozen frozen = freeze();
  frozen.revents |= kept;
  ev_signal_set(detail::ev_of<ev_signal>(*this), signum);
  thaw(frozen);
}

int Signal::signum() const noexcept { return detail::ev_of<ev_signal>(*this)->signum; }

void Signal::start_impl() {
  const int sig = signum();
  detail::claim_signal(sig, loop(), "Signal");
  try {
    detail::probe_wakeup_fd("Signal");
  } catch (...) {
    detail::release_signal(sig, loop());
    throw;
  }
  ev_signal_start(raw_loop(), detail::ev_of<ev_signal>(*this));
}

// libev records a received signal in a process-wide flag and reports it to
// the signal's watchers at the loop's next wakeup. Left set when the last
// watcher stops, the flag would be reported to whichever watcher of that
// signal starts next, in any loop, without a new signal. As the last watcher,
// turn the flag into a pending event of this watcher (which stop() drops);
// with no flag set this feeds an event that is dropped just the same.
void Signal::discard_impl() noexcept {
  const int sig = signum();
  if (detail::sole_claim(sig, *detail::Access::loop(*this))) ev_feed_signal_event(raw_loop(), sig);
}

// A move: the new watcher joins libev's list for the signal before the old
// one leaves it. Stopping the last watcher first would hand the signal back
// for a moment (libev sets SIG_DFL, or unblocks it for a signalfd loop), and
// a signal arriving then could kill the process. The loop's claim (one
// reference per active watcher) is the same before and after.
void Signal::rehome_stop_impl() noexcept {}

void Signal::rehome_start_impl(WatcherBase& from, bool active) noexcept {
  if (!active) return;
  ev_signal_start(raw_loop(), detail::ev_of<ev_signal>(*this));
  ev_signal_stop(raw_loop(), detail::ev_of<ev_signal>(from));
}

void Signal::stop_impl() noexcept {
  ev_signal_stop(raw_loop(), detail::ev_of<ev_signal>(*this));
  detail::release_signal(signum(), *detail::Access::loop(*this));
}

}  // namespace evw
