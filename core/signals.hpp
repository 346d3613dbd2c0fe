// Internal (not installed): Unix signals for any number of loops.
//
// libev keeps one process-wide table of signals and asserts when a signal is
// started in a second loop, so evw does not use ev_signal. It installs its own
// handler (sigaction) for each signal an evw::Signal watches, and keeps per
// signal a lock-free list of slots, one per loop watching it. The handler
// sets the flag of each loop's slot and wakes that loop through its Wakeup
// (ev_async_send, async-signal-safe per libev's manual); the loop's wake
// callback feeds that loop's Signal watchers. The handler also passes every
// signal to libev (ev_feed_signal), for the signal watchers libev keeps
// itself: the default loop's SIGCHLD watcher, which reaps children for Child.
// The disposition a signal had before evw took it is restored when its last
// watcher, in any loop, stops.
#pragma once

#include <vector>

struct ev_loop;

namespace evw {
class Loop;
}

namespace evw::detail {

class WatcherBase;
class Wakeup;
struct SignalSlot;

/// The active watchers of one signal in one loop. Loop thread only.
struct LoopSignal {
  int signum;
  SignalSlot* slot;  // the loop's slot in the signal's list
  std::vector<WatcherBase*> watchers;
};

/// Deliver signum to w, a Signal of the loop whose Wakeup this is. Installs
/// evw's handler for the first watcher of signum in the process. With
/// `raised`, the loop has received signum (what unwatch_signal returned).
/// @throws std::bad_alloc (nothing is changed then).
void watch_signal(Wakeup& wakeup, WatcherBase& w, int signum, bool raised = false);
/// Undo watch_signal; the last watcher of signum restores its disposition.
/// @return true if w was the loop's last watcher of signum and the loop had
///         received signum without dispatching it yet (the flag goes with it).
bool unwatch_signal(Wakeup& wakeup, WatcherBase& w, int signum) noexcept;
/// If w is the loop's last watcher of signum, forget that the loop received
/// signum (stop() drops what its last watcher did not get).
void drop_signal(Wakeup& wakeup, WatcherBase& w, int signum) noexcept;
/// The wake callback: feed EV_SIGNAL to the watchers of every signal received
/// since the last call.
void feed_signals(Loop& loop, struct ev_loop* raw, std::vector<LoopSignal>& signals) noexcept;
/// ev_default_loop has just installed libev's SIGCHLD handler: if evw serves
/// SIGCHLD, put evw's back (it passes SIGCHLD on to libev) and restore
/// libev's when evw is done with it.
void after_default_loop() noexcept;
/// Make sure libev will find a free descriptor for its wakeup: libev aborts
/// when it cannot create one.
/// @throws std::system_error (EMFILE, ENFILE, ...) naming `kind`.
void probe_wakeup_fd(const char* kind);

}  // namespace evw::detail
