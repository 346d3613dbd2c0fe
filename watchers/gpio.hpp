// evw::Gpio — edges on a sysfs GPIO line (/sys/class/gpio/gpioN/value).
//
// The constructor exports the line if needed, writes direction=in, active_low
// and edge, opens `value` and does the priming read, so errors surface there
// and value() is valid at once; start() then watches `value` with the loop's
// EPOLLPRI backend (the one evw::Priority uses). On each edge the watcher
// re-reads `value` before calling back, so value() is the level the edge left
// and the condition is cleared. (`value` is a notifying sysfs attribute: the
// opening, priming read and reread are detail::AttrFile's, as for evw::Attr.)
//
// Caveats:
// - Like data on a socket, an edge that comes while the watcher is stopped
//   stays latched in sysfs and is reported (once) after the next start().
// - sysfs reports that *an* edge happened, not how many: edges faster than
//   the loop reads them coalesce into one callback, and value() is the level
//   at the time of the read. For every edge with a kernel timestamp use
//   evw::GpioLine (the character device).
// - Lines are shared within the process: every Gpio on a (sysfs root, line)
//   is counted in a process-wide registry (thread-safe: loops may run on
//   different threads; "/x/" and "/x" are one root, symlinks are not
//   resolved). The line is unexported when the last Gpio on it goes, and only
//   if a Gpio exported it. A line someone outside evw had exported before
//   (export says EBUSY and gpioN exists) is used, configured as GpioConfig
//   says, and never unexported. If the line disappears underneath
//   (unexported elsewhere), the kernel wakes no poller of its files: the
//   watcher goes silent. A restart (stop() + start()) polls the file afresh;
//   its read then fails: the watcher stops itself and calls back once with
//   Event::Error, and error() says why (ENODEV); set() throws ENOENT. A line that then comes back through someone else's export is
//   theirs, not unexported by evw (evw learns of the loss from that ENODEV:
//   a line lost and re-exported while no Gpio on it read `value` is not told
//   apart). A forked child inherits the registry but never unexports a line
//   its parent exported (the parent still uses it); lines the child exports
//   itself are its own.
// - value() is the level read at the last event: with Edge::Rising or
//   Edge::Falling it goes stale when the line moves the other way.
//   read_value() reads the level now, through a file of its own, so an edge
//   latched and not yet delivered stays latched: it is delivered once, as it
//   would have been (at once if the watcher is active, else after the next
//   start()).
// - revents is exactly one of two: Event::Pri for an edge (value() is then
//   the new level), or Event::Error once if `value` can no longer be read
//   (the watcher has stopped itself; error() says why). Never Event::Hup:
//   sysfs attributes (and gpio-sim's FUSE files) do not report EPOLLHUP, and
//   any other bits the loop reports or feed() puts in come as Event::Pri
//   once `value` was read for them.
// - debounce is a software filter of delivered callbacks, see GpioConfig.
// - The sysfs GPIO interface is deprecated in the kernel (CONFIG_GPIO_SYSFS);
//   lines named by the driver (gpioN directories with other names) are not
//   supported.
//
// revents: Event::Pri at a selected edge (value() is the new level); Event::Error
// once if `value` can no longer be read (the watcher has stopped itself and
// error() says why). sysfs raises no EPOLLHUP. Plus whatever feed() passes.
#pragma once

#include <cstdint>
#include <string>
#include <system_error>
#include <utility>

#include "../core/exceptional.hpp"
#include "../core/loop.hpp"
#include "../core/time.hpp"
#include "../core/watcher.hpp"
#include "attr.hpp"

namespace evw {

/// Which level changes of a GPIO input raise an event.
enum class Edge { None, Rising, Falling, Both };

/// How a sysfs GPIO line is set up.
struct GpioConfig {
  /// Where the sysfs GPIO tree is (a gpio-sim mount point in tests).
  std::string sysfs_root = "/sys/class/gpio";
  /// Edges that call back. Edge::None watches nothing (value() is still read once).
  Edge edge = Edge::Both;
  /// Invert the logical level: value() is 1 when the pin is low, and
  /// Rising/Falling refer to the logical level.
  bool active_low = false;
  /// Software debounce in seconds, 0 = off. An edge that comes within
  /// `debounce` of the previously delivered one is swallowed: no callback, but
  /// its level is still read, so value() stays true to the line. Leading-edge
  /// filter: the first edge of a bounce burst is delivered at once; if the
  /// burst settles on another level, no callback says so until the next edge
  /// outside the window (check value(), or use GpioLine's kernel debounce).
  Seconds debounce = 0.0;
};

namespace detail {

/// An owned file descriptor: closes on destruction. Not copyable.
class OwnedFd {
 public:
  OwnedFd() noexcept = default;
  explicit OwnedFd(int fd) noexcept : fd_(fd) {}
  OwnedFd(OwnedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~OwnedFd() { reset(); }
  int get() const noexcept { return fd_; }
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

/// One Gpio's use of a sysfs GPIO line, counted in a process-wide registry
/// keyed by (sysfs root, line): the last use of a line that evw exported
/// unexports it. Movable (a moved Gpio keeps its line), not copyable.
class GpioClaim {
 public:
  struct Entry;  // in gpio.cpp
  GpioClaim() noexcept = default;
  GpioClaim(GpioClaim&& other) noexcept
      : entry_(std::exchange(other.entry_, nullptr)), generation_(other.generation_) {}
  GpioClaim& operator=(GpioClaim&& other) noexcept {
    if (this != &other) {
      reset();
      entry_ = std::exchange(other.entry_, nullptr);
      generation_ = other.generation_;
    }
    return *this;
  }
  GpioClaim(const GpioClaim&) = delete;
  GpioClaim& operator=(const GpioClaim&) = delete;
  ~GpioClaim() { reset(); }

  /// Exports `line` under the canonical `root` unless the line is exported
  /// already, and counts one more use of it.
  /// @throws std::system_error naming the file (export, or stat of gpioN).
  static GpioClaim acquire(const std::string& root, int line);
  /// Gives the use up; the last use of a line this process exported unexports it.
  void reset() noexcept;
  /// The line evw exported was found gone (ENODEV): unless evw exported it
  /// again since this use began, it is not evw's to unexport any more.
  void line_gone() noexcept;
  /// True if evw exported the line in this process (its last use unexports it).
  bool exported() const noexcept;

 private:
  Entry* entry_ = nullptr;
  std::uint64_t generation_ = 0;  // the entry's export count when this use began
};

struct GpioTrampoline;
template <class W>
class EdgeAwaitable;  // defined in <evw/coro/edge.hpp>

}  // namespace detail

/// Calls back on the selected edges of a sysfs GPIO input: revents Event::Pri, with
/// value() already updated; Event::Error once if `value` can no longer be read (the
/// watcher has then stopped itself; error() says why); never Event::Hup.
class Gpio final : public detail::ExceptWatcher<Gpio> {
 public:
  /// @brief Sets up `line` under config.sysfs_root (export, direction=in,
  ///        active_low, edge, open `value`, priming read). The watcher is stopped.
  /// @param line the global GPIO number, as written to `export`.
  /// @throws std::invalid_argument if line < 0, config.edge is not an Edge,
  ///         config.debounce is negative or not finite, sysfs_root is empty,
  ///         or cb is empty;
  ///         std::system_error with the kernel's errno and a message naming the
  ///         line and the file, e.g. "evw::Gpio: line 17: write
  ///         /sys/class/gpio/gpio17/edge: Invalid argument" (EINVAL from
  ///         `export` for a line no chip has, ENOENT for a wrong sysfs_root,
  ///         EBUSY if the line is held by another consumer, EACCES, ...).
  Gpio(Loop& loop, int line, GpioConfig config, Callback cb);
  /// @brief The line with the default GpioConfig (both edges, /sys/class/gpio).
  Gpio(Loop& loop, int line, Callback cb) : Gpio(loop, line, GpioConfig{}, std::move(cb)) {}
  /// Stops, closes `value`, and unexports the line if it is the last Gpio on
  /// it in this process and evw exported it.
  ~Gpio();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// Nothing is closed or unexported: the line, its `value` fd and the
  /// duty to unexport it go along.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Gpio(Gpio&& other);
  Gpio& operator=(Gpio&& other) { return move_assign(other); }

  /// @brief In a coroutine: `int revents = co_await gpio.edge();` waits for the
  ///        next event, after this watcher's own callback has run for it.
  ///        Starts the watcher for the wait if it is stopped (and stops it
  ///        again after). Needs <evw/coro/coro.hpp>; see coro/edge.hpp.
  /// @return (at co_await) the revents: Event::Pri, value() being the new level; Event::Error
  ///         once if `value` can no longer be read.
  /// @throws (at co_await) what start() throws; std::logic_error if another
  ///         coroutine awaits edge() of this watcher.
  template <class Self = Gpio>
  [[nodiscard]] detail::EdgeAwaitable<Self> edge() noexcept {
    return detail::EdgeAwaitable<Self>(static_cast<Self&>(*this));
  }
  template <class>
  friend class detail::EdgeAwaitable;

  /// @brief Switch to another line and/or configuration; allowed while active
  ///        or pending (restarts, keeps a pending event, delivered once after).
  ///        The same line under the same root is reconfigured in place; another
  ///        one is set up first and only then replaces the old one (which is
  ///        unexported if this was its last Gpio and evw exported it).
  /// @throws as the constructor; on failure to set up another line the
  ///         watcher keeps its old line.
  void set(int line, GpioConfig config);
  /// @brief Same line, other configuration.
  void set(GpioConfig config) { set(line_, std::move(config)); }

  /// The GPIO number.
  int line() const noexcept { return line_; }
  /// The logical level (0 or 1) read at setup, at each event and by
  /// read_value(): the level at the last event, not now (with Edge::Rising or
  /// Edge::Falling an edge the other way is not read; see read_value()).
  int value() const noexcept { return value_; }
  /// @brief Reads the logical level now and returns it; value() is updated
  ///        too. `value` is opened anew for it (open, lseek, read, close), so
  ///        the watched file keeps an edge latched and not yet delivered:
  ///        the callback still runs once for it with Event::Pri, as it would
  ///        have without this call (at once if the watcher is active, after
  ///        the next start() if it is stopped). Costs a descriptor for the
  ///        duration of the call.
  /// @return 0 or 1.
  /// @throws std::system_error naming the line, the call (open, lseek, read)
  ///         and the file: ENOENT once the line was unexported, EMFILE, ...;
  ///         value() and a latched edge are left as they were.
  ///         std::logic_error if the watcher has no line (moved from).
  int read_value();
  const GpioConfig& config() const noexcept { return config_; }
  /// True if evw exported the line in this process, so the last Gpio on it
  /// unexports it; false for a line exported by someone else (or by the
  /// parent, in a forked child).
  bool exported() const noexcept { return claim_.exported(); }
  /// Edges swallowed by the debounce filter so far.
  std::uint64_t debounced() const noexcept { return debounced_; }
  /// Why the watcher stopped itself with Event::Error (reading `value` failed), else
  /// empty; cleared by the next start().
  std::error_code error() const noexcept { return error_; }
  /// The open `value` file (owned by the watcher).
  int fd() const noexcept { return value_file_.fd(); }

 private:
  friend struct detail::GpioTrampoline;
  struct Setup;

  // start() @throws std::system_error (EMFILE for the loop's queue, EPERM, ...).
  void start_impl() override;
  void adopt(Setup&& setup) noexcept;
  void release_line() noexcept;
  void on_condition(int revents) noexcept;

  detail::EvStorage<32> ev_;  // never started in libev: the loop's EPOLLPRI table drives it
  GpioConfig config_;
  int line_ = -1;
  detail::GpioClaim claim_;  // this watcher's use of the line (declared first: released after value_file_ closes)
  detail::AttrFile value_file_;  // `value`: the priming read and the reread at each edge are AttrFile's
  std::string text_;             // the text of the last read of `value` (kept for its capacity)
  int value_ = 0;
  bool delivered_once_ = false;
  double last_delivered_ = 0;  // CLOCK_MONOTONIC seconds of the last delivered edge
  std::uint64_t debounced_ = 0;
  std::error_code error_;
};

}  // namespace evw
