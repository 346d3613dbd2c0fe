// evw::Pressure — a PSI trigger (Pressure Stall Information, Linux 5.2+): the
// kernel calls back when tasks stalled on memory, CPU or IO for at least
// `threshold` within a `window`, system-wide or within one cgroup v2 group.
//
// The constructor opens /proc/pressure/<resource> (or <cgroup>/<resource>.pressure)
// read-write and writes the trigger, e.g. "some 200000 2000000" (200 ms of
// stall per 2 s window), so kernel errors surface there; start() watches the
// file for POLLPRI. Not through the loop's shared EPOLLPRI set: a PSI file's
// poll() takes the event it reports, and the shared set loses it (see
// detail::OwnEpoll); each Pressure has an epoll set of its own (one more
// descriptor) that libev watches directly. Pressure::from_environment() speaks
// systemd's protocol ($MEMORY_PRESSURE_WATCH, $MEMORY_PRESSURE_WRITE), so a
// service started with MemoryPressureWatch= works unchanged; it may also be
// handed a socket (or FIFO) to read from instead, watched for POLLIN.
//
// Caveats:
// - Without CAP_SYS_RESOURCE the kernel accepts only windows that are whole
//   multiples of 2 s (up to 10 s; a 1 s window is EINVAL) and checks them at
//   its 2 s averaging rate, so an event comes up to ~2 s after the stall.
//   With the capability any window of 500 ms..10 s is allowed (the kernel then
//   runs a real-time "psimon" thread for it).
// - At most one event per window while the stall lasts; the kernel keeps one
//   event flag, so events do not queue up (nor while the watcher is stopped:
//   one is reported after start()).
// - "full" for the CPU is always 0 system-wide (Linux 5.13+ only reports it
//   per cgroup).
// - A cgroup's PSI file notifies every trigger on it (kernfs_notify) when one
//   of them fires or is closed: a Pressure on a cgroup file may be called for
//   another trigger on the same file (of this or another process), its own
//   threshold not crossed (seen on Linux 6.18). The kernel's poll of the
//   file would tell them apart, but epoll's check of the watcher's set takes
//   that answer (see detail::OwnEpoll). /proc/pressure/* triggers each have
//   a queue of their own: exactly their events.
// - A cgroup's file goes away with the group: the kernel then wakes the
//   trigger's pollers, the read fails, the watcher stops itself and calls
//   back once with Event::Error, error() being ENODEV.
// - Each Pressure is one kernel trigger (one open file): set() opens a new
//   one (the kernel takes one trigger per open file).
//
// revents: Event::Pri when the trigger fired (stats() holds the file's
// averages of that moment); Event::Error once when the source failed (the PSI
// file can no longer be read, the socket read failed; the watcher has stopped
// itself and error() says why); Event::Hup once when the from_environment()
// socket or FIFO was closed by the other end (the watcher has stopped itself).
// Plus whatever feed() passes.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "../core/loop.hpp"
#include "../core/watcher.hpp"
#include "attr.hpp"

namespace evw {

/// The resource whose stalls a Pressure watches.
enum class Resource { Memory, Cpu, Io };

/// Which stall: Some = at least one task stalled, Full = all non-idle tasks
/// stalled at once (the machine or group got nothing done).
enum class Stall { Some, Full };

/// A PSI trigger: call back when `stall` on `resource` adds up to at least
/// `threshold` within `window`. The defaults are systemd's for memory
/// (sd-event, MemoryPressureThresholdSec=): some 200 ms per 2 s.
struct PressureConfig {
  Resource resource = Resource::Memory;
  Stall stall = Stall::Some;
  std::chrono::microseconds threshold = std::chrono::milliseconds(200);
  /// 500 ms..10 s with CAP_SYS_RESOURCE; without it a multiple of 2 s.
  std::chrono::microseconds window = std::chrono::seconds(2);
  /// Empty: the whole system (/proc/pressure/<resource>). Else a cgroup v2
  /// directory, e.g. "/sys/fs/cgroup/system.slice/x.service", whose
  /// <resource>.pressure is used.
  std::string cgroup;
};

/// One line of a PSI file: the share of time (percent) stalled over the last
/// 10, 60 and 300 s, and the total stall time in microseconds.
struct PressureLine {
  double avg10 = 0, avg60 = 0, avg300 = 0;
  std::uint64_t total_us = 0;
};

/// A PSI file's two lines.
struct PressureStats {
  PressureLine some;
  PressureLine full;
};

namespace detail {
struct PressureTrampoline;
}

/// Calls back when a PSI trigger fires: revents Event::Pri; Event::Error or
/// Event::Hup once if the source failed or was closed (the watcher has then
/// stopped itself).
class Pressure final : public detail::Watcher<Pressure> {
 public:
  /// @brief Opens the PSI file of config and writes the trigger; the watcher
  ///        is stopped (the kernel already watches: an event that comes before
  ///        start() is reported after it).
  /// @throws std::invalid_argument if the threshold or window is not
  ///         positive, the threshold exceeds the window, the window exceeds
  ///         10 s, an enum is out of range, or cb is empty;
  ///         std::system_error with the kernel's errno and a message naming the
  ///         file and saying what it means: ENOENT (no PSI in this kernel, or
  ///         not a cgroup v2 directory), EOPNOTSUPP (PSI disabled: psi=0),
  ///         EINVAL (the kernel refused the trigger, e.g. a window that is not a
  ///         multiple of 2 s without CAP_SYS_RESOURCE), EACCES, ...
  Pressure(Loop& loop, PressureConfig config, Callback cb);
  /// @brief The default trigger: memory, some 200 ms per 2 s, system-wide.
  Pressure(Loop& loop, Callback cb) : Pressure(loop, PressureConfig{}, std::move(cb)) {}
  ~Pressure();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, trigger, stats, active state; a pending event is delivered once,
  /// from here); `other` is left stopped and empty. The trigger stays
  /// armed: its file (or stream) and epoll set go along, nothing is rewritten.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Pressure(Pressure&& other);
  Pressure& operator=(Pressure&& other) { return move_assign(other); }

  /// @brief Memory pressure the way systemd services watch it (sd-event's
  ///        sd_event_add_memory_pressure, systemd's MEMORY_PRESSURE.md):
  ///        - $MEMORY_PRESSURE_WATCH names what to watch: a PSI file
  ///          (procfs/cgroupfs; POLLPRI), an AF_UNIX stream socket to connect
  ///          to, or a FIFO / character device (both POLLIN, whatever arrives
  ///          is read and dropped);
  ///        - $MEMORY_PRESSURE_WRITE, base64, is written to it first (the
  ///          trigger; a missing NUL terminator is added for PSI files);
  ///        - without $MEMORY_PRESSURE_WATCH: this process's own cgroup v2
  ///          memory.pressure (where the unified hierarchy is mounted),
  ///          else /proc/pressure/memory, with "some 200000 2000000".
  ///        The watcher is stopped.
  /// @throws std::system_error(EHOSTDOWN) when $MEMORY_PRESSURE_WATCH is
  ///         empty or /dev/null (the service manager turned it off: run
  ///         without); std::invalid_argument when it is not an absolute,
  ///         normalized path, $MEMORY_PRESSURE_WRITE is not base64, or is
  ///         missing for a PSI file;
  ///         std::system_error for what the kernel says (ENOENT, ECONNREFUSED,
  ///         ENOTTY for a regular file that is neither procfs nor cgroupfs,
  ///         EISDIR, and the constructor's errors).
  static Pressure from_environment(Loop& loop, Callback cb);

  /// @brief Another trigger; allowed while active or pending (restarts,
  ///        keeps a pending event). The new trigger is set up first: if that
  ///        throws, the watcher keeps its old one.
  /// @throws as the constructor.
  void set(PressureConfig config);

  /// @brief In a coroutine: `co_await pressure.next()` waits for the next
  ///        event, after this watcher's callback (a stopped watcher is
  ///        started for the wait and stopped after). Needs <evw/coro/coro.hpp>.
  template <class Self = Pressure>
  [[nodiscard]] detail::EdgeAwaitable<Self> next() noexcept {
    return detail::EdgeAwaitable<Self>(static_cast<Self&>(*this));
  }
  template <class>
  friend class detail::EdgeAwaitable;

  /// The trigger. From from_environment(): resource Memory and what the
  /// written trigger says (the defaults if it was not a PSI trigger).
  const PressureConfig& config() const noexcept { return config_; }
  /// The file or socket watched.
  const std::string& path() const noexcept { return path_; }
  /// The trigger as written, without its terminating NUL ("" if none was written).
  const std::string& trigger() const noexcept { return trigger_; }
  /// True for a socket or FIFO from from_environment() (POLLIN); false for a PSI file (POLLPRI).
  bool is_stream() const noexcept { return stream_; }
  /// The PSI file's averages at setup and at the last event (zero for a stream).
  const PressureStats& stats() const noexcept { return stats_; }
  /// Why the watcher stopped itself with Event::Error, else empty; cleared by start().
  std::error_code error() const noexcept { return error_; }
  /// The open PSI file or socket (owned by the watcher).
  int fd() const noexcept { return file_.fd(); }

  /// @brief Parses the text of a PSI file ("some avg10=0.12 avg60=... total=...").
  static PressureStats parse(std::string_view text) noexcept;

 private:
  friend struct detail::PressureTrampoline;
  struct Setup;
  struct EnvironmentTag {};
  Pressure(Loop& loop, EnvironmentTag, Callback cb);
  void init() noexcept;
  void adopt(Setup&& setup) noexcept;

  // start() throws nothing: the descriptors exist since the constructor.
  void start_impl() override;
  void stop_impl() noexcept override;
  bool active_impl() const noexcept override;
  int take_pending() noexcept override;
  bool pending_impl() const noexcept override;
  void on_event(int revents) noexcept;

  detail::EvStorage<32> ev_;   // fed, never started: delivery, feed() and pending state
  detail::EvStorage<48> io_;   // EV_READ on own_ (a PSI file) or on the stream
  detail::AttrFile file_;      // the PSI file, or the stream (socket, FIFO)
  detail::OwnEpoll own_;       // a PSI file's own epoll set (see detail::OwnEpoll)
  bool stream_ = false;
  bool fired_at_setup_ = false;  // the trigger fired before its set existed: deliver at start
  PressureConfig config_;
  std::string path_;
  std::string trigger_;
  std::string text_;
  PressureStats stats_;
  std::error_code error_;
};

}  // namespace evw
