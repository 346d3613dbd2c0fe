// evw — event bits, run/break flags, priorities and backend flags.
//
// The values equal libev's (checked by static_assert in core/loop.cpp), so a
// revents mask from evw can be handed to libev code and back. PRI, HUP and ERR
// are evw's own: libev has no bit for an exceptional condition.
#pragma once

namespace evw {

/// @name Event bits (the `revents` of a callback, the `events` of an Io)
/// @{
inline constexpr int NONE = 0x00;
inline constexpr int READ = 0x01;          ///< fd readable (EV_READ)
inline constexpr int WRITE = 0x02;         ///< fd writable (EV_WRITE)
inline constexpr int PRI = 0x04;           ///< exceptional condition: EPOLLPRI (Priority, Gpio)
inline constexpr int HUP = 0x08;           ///< EPOLLHUP on a Priority watcher's fd
inline constexpr int ERR = 0x10;           ///< EPOLLERR without EPOLLPRI on a Priority watcher's fd
inline constexpr int TIMER = 0x00000100;   ///< Timer expired (EV_TIMER)
inline constexpr int PERIODIC = 0x00000200;
inline constexpr int SIGNAL = 0x00000400;
inline constexpr int CHILD = 0x00000800;
inline constexpr int STAT = 0x00001000;
inline constexpr int IDLE = 0x00002000;
inline constexpr int PREPARE = 0x00004000;
inline constexpr int CHECK = 0x00008000;
inline constexpr int EMBED = 0x00010000;
inline constexpr int FORK = 0x00020000;
inline constexpr int CLEANUP = 0x00040000;
inline constexpr int ASYNC = 0x00080000;
inline constexpr int CUSTOM = 0x01000000;
inline constexpr int ERROR = static_cast<int>(0x80000000u);  ///< libev's EV_ERROR
/// @}

/// @name Loop::run() flags
/// @{
inline constexpr int ONCE = 2;    ///< block for one iteration (EVRUN_ONCE)
inline constexpr int NOWAIT = 1;  ///< one iteration without blocking (EVRUN_NOWAIT)
/// @}

/// @name Loop::stop() modes
/// @{
inline constexpr int BREAK_CANCEL = 0;
inline constexpr int BREAK_ONE = 1;  ///< return from the innermost run()
inline constexpr int BREAK_ALL = 2;  ///< return from every nested run()
/// @}

/// @name Watcher priorities: higher runs first within one iteration
/// @{
inline constexpr int MINPRI = -2;
inline constexpr int MAXPRI = 2;
/// @}

/// @name Loop constructor flags (libev's EVFLAG_* and EVBACKEND_*)
/// @{
inline constexpr unsigned FLAG_AUTO = 0x00000000u;
inline constexpr unsigned FLAG_NOENV = 0x01000000u;
inline constexpr unsigned FLAG_FORKCHECK = 0x02000000u;
inline constexpr unsigned FLAG_NOINOTIFY = 0x00100000u;
inline constexpr unsigned FLAG_SIGNALFD = 0x00200000u;
inline constexpr unsigned FLAG_NOSIGMASK = 0x00400000u;
inline constexpr unsigned FLAG_NOTIMERFD = 0x00800000u;
inline constexpr unsigned BACKEND_SELECT = 0x00000001u;
inline constexpr unsigned BACKEND_POLL = 0x00000002u;
inline constexpr unsigned BACKEND_EPOLL = 0x00000004u;
inline constexpr unsigned BACKEND_KQUEUE = 0x00000008u;
inline constexpr unsigned BACKEND_DEVPOLL = 0x00000010u;
inline constexpr unsigned BACKEND_PORT = 0x00000020u;
inline constexpr unsigned BACKEND_LINUXAIO = 0x00000040u;
inline constexpr unsigned BACKEND_IOURING = 0x00000080u;
/// @}

}  // namespace evw
