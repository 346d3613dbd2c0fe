// Internal (not installed): which Loop owns each signal.
//
// libev keeps one process-wide table of signals and asserts when a signal is
// started in a second loop; this table is checked first so that misuse is a
// std::logic_error instead. It also restores the disposition a signal had
// before evw took it (libev leaves SIG_DFL behind).
#pragma once

namespace evw {
class Loop;
}

namespace evw::detail {

/// Take one reference on signum for loop.
/// @throws std::logic_error if another loop holds the signal.
void claim_signal(int signum, const Loop& loop, const char* kind);
/// Drop one reference; the last one restores the saved disposition. Call
/// after libev has stopped its watcher.
void release_signal(int signum, const Loop& loop) noexcept;
/// True if loop holds signum with exactly one reference (one active watcher).
bool sole_claim(int signum, const Loop& loop) noexcept;
/// Make sure libev will find a free descriptor for its wakeup pipe or
/// signalfd: libev aborts when it cannot create one.
/// @throws std::system_error (EMFILE, ENFILE, ...) naming `kind`.
void probe_wakeup_fd(const char* kind);

}  // namespace evw::detail
