#include "signal.hpp"

#include <signal.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "../core/access.hpp"
#include "../core/signals.hpp"
#include "../core/wakeup.hpp"

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
  // As stop() would: a signal of the old number that the loop received but
  // did not dispatch is dropped if this is the loop's last watcher of it.
  if (signum != this->signum() && is_active()) discard_impl();
  Frozen frozen = freeze();  // keeps a pending event
  ev_signal_set(detail::ev_of<ev_signal>(*this), signum);
  thaw(frozen);
}

int Signal::signum() const noexcept { return detail::ev_of<ev_signal>(*this)->signum; }

// libev never sees this watcher started (its ev_signal allows one loop per
// signal): evw's handler wakes the loop, whose wake callback feeds it (see
// core/signals.hpp). The ev_signal carries what libev's would: `active`,
// which is_active() reads, and one reference on the loop, so that run() goes
// on while it is active.
void Signal::start_impl() {
  detail::watch_signal(detail::Access::wakeup(loop()), *this, signum(), carried());
  carried() = false;
  detail::ev_of<ev_signal>(*this)->active = 1;
  ev_ref(raw_loop());
}

// A move: the new watcher joins the loop's list for the signal before the
// old one leaves it, so the signal is never without a watcher (its old
// disposition would come back for a moment, and a signal arriving then could
// kill the process). The loop reference of the active watcher passes over.
void Signal::rehome_stop_impl() noexcept {}

void Signal::rehome_start_impl(WatcherBase& from, bool active) noexcept {
  if (!active) return;
  detail::Wakeup& wakeup = detail::Access::wakeup(*detail::Access::loop(*this));
  auto& old = static_cast<Signal&>(from);
  detail::watch_signal(wakeup, *this, signum(), false);
  detail::ev_of<ev_signal>(*this)->active = 1;
  detail::unwatch_signal(wakeup, old, signum());  // not the last watcher: nothing to carry
  detail::ev_of<ev_signal>(old)->active = 0;
  old.carried() = false;
}

// Also the first half of the freeze guard (set_priority, set): a signal the
// loop received for its last watcher is carried over to the start_impl that
// follows. stop() has dropped it before (discard_impl).
void Signal::stop_impl() noexcept {
  ev_unref(raw_loop());
  detail::ev_of<ev_signal>(*this)->active = 0;
  carried() = detail::unwatch_signal(detail::Access::wakeup(*detail::Access::loop(*this)), *this, signum());
}

// stop() only: a signal received while this was the loop's last watcher of
// it, and not yet dispatched, is dropped — never reported later to a watcher
// started afterwards, here or in another loop.
void Signal::discard_impl() noexcept {
  carried() = false;
  detail::drop_signal(detail::Access::wakeup(*detail::Access::loop(*this)), *this, signum());
}

}  // namespace evw
