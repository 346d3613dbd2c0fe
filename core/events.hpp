// evw — event bits, run/break flags, priorities and loop flags.
//
// No ALL_CAPS names (C++ Core Guidelines ES.9): those belong to macros, and a
// macro of a system header would break them (<curses.h> defines ERR,
// <arpa/tftp.h> ERROR). The constants live in structs, so `Event::Timer`
// never clashes with the class evw::Timer and no using-directive can pull
// them into the enclosing namespace.
//
// The values equal libev's (checked by static_assert in core/loop.cpp), so a
// revents mask from evw can be handed to libev code and back. Pri, Hup and
// RdHup are evw's own: libev has no bit for them.
#pragma once

#if __cplusplus < 202002L
#error "evw needs C++20: compile with -std=c++20 (or -std=gnu++20) or later"
#endif

namespace evw {

/// Event bits: the `revents` of a callback, the `events` of an Io or Poll.
struct Event final {
  Event() = delete;
  static constexpr int None = 0x00;
  static constexpr int Read = 0x01;     ///< fd readable (EV_READ)
  static constexpr int Write = 0x02;    ///< fd writable (EV_WRITE)
  static constexpr int Pri = 0x04;      ///< exceptional condition: EPOLLPRI (Priority, Gpio)
  static constexpr int Hup = 0x08;      ///< EPOLLHUP: the fd hung up (Priority, Gpio, GpioLine)
  static constexpr int RdHup = 0x20;    ///< EPOLLRDHUP: the peer shut down writing
  static constexpr int Timer = 0x00000100;     ///< a Timer expired (EV_TIMER)
  static constexpr int Periodic = 0x00000200;  ///< a Periodic is due (EV_PERIODIC)
  static constexpr int Signal = 0x00000400;    ///< a Signal arrived (EV_SIGNAL)
  static constexpr int Child = 0x00000800;     ///< a Child changed state (EV_CHILD)
  static constexpr int Stat = 0x00001000;      ///< a Stat path changed (EV_STAT)
  static constexpr int Idle = 0x00002000;      ///< nothing else to do (EV_IDLE)
  static constexpr int Prepare = 0x00004000;   ///< before the loop blocks (EV_PREPARE)
  static constexpr int Check = 0x00008000;     ///< after the loop blocked (EV_CHECK)
  static constexpr int Embed = 0x00010000;     ///< the embedded loop has work (EV_EMBED)
  static constexpr int Fork = 0x00020000;      ///< the loop is used after fork (EV_FORK)
  static constexpr int Cleanup = 0x00040000;   ///< the loop is being destroyed (EV_CLEANUP)
  static constexpr int Async = 0x00080000;     ///< Async::send() was called (EV_ASYNC)
  static constexpr int Custom = 0x01000000;    ///< free for feed() (EV_CUSTOM)
  /// The one error bit: the watcher's source failed and the watcher stopped
  /// or must be stopped (libev's EV_ERROR, EPOLLERR without EPOLLPRI, an
  /// unreadable GPIO value, a failed GpioLine read).
  static constexpr int Error = static_cast<int>(0x80000000u);
};

/// How a Poll watcher is registered with epoll (combine with |).
struct PollMode final {
  PollMode() = delete;
  static constexpr int Level = 0x0;      ///< level-triggered, as Io: called while the condition lasts
  static constexpr int Edge = 0x1;       ///< EPOLLET: called once per new readiness; drain until EAGAIN
  static constexpr int OneShot = 0x2;    ///< EPOLLONESHOT: silent after one event until Poll::rearm()
  static constexpr int Exclusive = 0x4;  ///< EPOLLEXCLUSIVE: of the loops watching one fd, one wakes
};

/// Loop::run() flags.
struct Run final {
  Run() = delete;
  static constexpr int Default = 0;  ///< until no active watcher remains or stop()
  static constexpr int NoWait = 1;   ///< one iteration without blocking (EVRUN_NOWAIT)
  static constexpr int Once = 2;     ///< one iteration, blocking if nothing is ready (EVRUN_ONCE)
};

/// Loop::stop() modes.
struct Break final {
  Break() = delete;
  static constexpr int Cancel = 0;  ///< withdraw an earlier stop()
  static constexpr int One = 1;     ///< return from the innermost run()
  static constexpr int All = 2;     ///< return from every nested run()
};

/// Watcher priorities: higher runs first within one iteration.
inline constexpr int min_priority = -2;
inline constexpr int max_priority = 2;

/// Loop constructor flags (libev's EVFLAG_*), combined with Backend bits.
struct LoopFlag final {
  LoopFlag() = delete;
  static constexpr unsigned Auto = 0x00000000u;       ///< libev's defaults (EVFLAG_AUTO)
  static constexpr unsigned NoEnv = 0x01000000u;      ///< ignore LIBEV_FLAGS
  static constexpr unsigned ForkCheck = 0x02000000u;  ///< notice fork() by itself (getpid each iteration)
  static constexpr unsigned NoInotify = 0x00100000u;  ///< Stat without inotify
  static constexpr unsigned SignalFd = 0x00200000u;   ///< signals through signalfd
  static constexpr unsigned NoSigMask = 0x00400000u;  ///< never touch the signal mask
  static constexpr unsigned NoTimerFd = 0x00800000u;  ///< no timerfd for time jumps
};

/// Loop constructor backends (libev's EVBACKEND_*); Loop::backend() returns one.
struct Backend final {
  Backend() = delete;
  static constexpr unsigned Select = 0x00000001u;
  static constexpr unsigned Poll = 0x00000002u;
  static constexpr unsigned Epoll = 0x00000004u;
  static constexpr unsigned Kqueue = 0x00000008u;
  static constexpr unsigned DevPoll = 0x00000010u;
  static constexpr unsigned Port = 0x00000020u;
  static constexpr unsigned LinuxAio = 0x00000040u;
  static constexpr unsigned IoUring = 0x00000080u;
};

}  // namespace evw
