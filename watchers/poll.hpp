// evw::Poll — everything epoll can say about an fd: readable, writable,
// exceptional (EPOLLPRI), peer hung up (EPOLLRDHUP), in level-triggered,
// edge-triggered, one-shot or exclusive mode.
//
// It goes through the loop's EPOLLPRI side-queue (as Priority does), not
// libev's ev_io: one more epoll_wait per loop wakeup, no trip through libev's
// pending queue per event. For plain Event::Read/Write in level mode, Io is
// the usual choice (see the README's table).
//
// Caveats:
// - One registration per fd and loop: the fd's Poll, Priority and Gpio
//   watchers in one loop share it. Its events are the union of theirs (each
//   watcher is called with its own bits only), and its mode must be theirs
//   too: start() throws std::logic_error if the fd is watched in the loop
//   with another PollMode. (Io watchers are libev's and independent.)
// - PollMode::Edge: one call per new readiness; read (or write) until EAGAIN,
//   or no further call comes for the data already there.
// - PollMode::OneShot: after one event the registration is disarmed until
//   rearm() (or set(), or a restart); several one-shot watchers of one fd
//   share that arming: one rearm() re-arms them all.
// - PollMode::Exclusive (EPOLLEXCLUSIVE): of several loops watching one fd,
//   one wakes per event. The kernel's rules are checked: only Event::Read
//   and/or Event::Write, not with OneShot (std::invalid_argument here). The
//   loop's exclusive fds are in an epoll of their own with a small thread
//   asleep on it (the kernel stops an exclusive wakeup only at an epoll with
//   a sleeper, which the nested side-queue never has); the thread hands the
//   events to the loop and polls again once their callbacks have run. It is
//   made with the loop's first active exclusive watcher and ends with the
//   last; callbacks still run on the loop's thread.
// - Level mode is like Io: consume the data or the call repeats. After
//   Event::Hup or Event::Error stop the watcher or close the fd.
// - start() throws std::system_error for fds epoll refuses (EPERM for
//   regular files, EBADF for closed ones).
//
// revents: the asked bits that are ready (Event::Read, Write, Pri, RdHup),
// plus Event::Hup (EPOLLHUP) and Event::Error (EPOLLERR; with EPOLLPRI it is
// plain Event::Pri, as sysfs always adds it), which epoll always reports.
// Plus whatever feed() passes.
#pragma once

#include "../core/events.hpp"
#include "../core/exceptional.hpp"
#include "../core/loop.hpp"
#include "../core/watcher.hpp"

namespace evw {

/// Calls back when fd has any of the asked epoll conditions.
class Poll final : public detail::ExceptWatcher<Poll> {
 public:
  /// @brief A stopped watcher of fd for events (any of Event::Read, Write,
  /// Pri, RdHup) in mode (PollMode::Level, or Edge, OneShot, Exclusive combined).
  /// @throws std::invalid_argument if fd < 0; if events is empty or has other
  ///         bits; if mode has unknown bits, combines Exclusive with OneShot,
  ///         or Exclusive with Event::Pri or Event::RdHup; if cb is empty.
  Poll(Loop& loop, int fd, int events, int mode, Callback cb);
  /// @brief A level-triggered watcher (PollMode::Level). @throws as above.
  Poll(Loop& loop, int fd, int events, Callback cb) : Poll(loop, fd, events, PollMode::Level, std::move(cb)) {}
  ~Poll();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// The fd stays registered with the kernel: the loop's queue is re-pointed.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Poll(Poll&& other);
  Poll& operator=(Poll&& other) { return move_assign(other); }
  /// @brief Watch another fd, events and mode; allowed while active or pending
  /// (restarts, keeps a pending event; a one-shot watcher is armed again).
  /// @throws as the constructor (nothing changes then), and as start(): the
  ///         watcher then has the new fd, events and mode but is stopped, and
  ///         its pending event is dropped (it was the old registration's).
  void set(int fd, int events, int mode);
  /// @brief Same mode. @throws as set(fd, events, mode).
  void set(int fd, int events) { set(fd, events, mode()); }
  /// @brief Same fd and mode, other events. @throws as set(fd, events, mode).
  void set_events(int events) { set(fd(), events, mode()); }
  /// @brief Arm a PollMode::OneShot watcher again after its event. Does
  /// nothing for a stopped watcher or another mode.
  /// @throws std::system_error if epoll refuses (EPOLL_CTL_MOD).
  void rearm();
  int fd() const noexcept { return node_.fd; }
  int events() const noexcept { return node_.events; }
  int mode() const noexcept { return node_.mode; }

 private:
  // start() @throws std::system_error (EPERM, EBADF, EMFILE for the loop's queue; for
  // an exclusive watcher also EAGAIN when no thread can be made for its queue),
  // std::logic_error (another mode on the fd in this loop).
  detail::EvStorage<32> ev_;  // never started in libev: the loop's EPOLLPRI table drives it
};

}  // namespace evw
