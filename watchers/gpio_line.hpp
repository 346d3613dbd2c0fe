// evw::GpioLine — edge events of one GPIO line through the character device
// (/dev/gpiochipN, the kernel's uAPI v2 in <linux/gpio.h>).
//
// The constructor requests the line as an input with edge detection, bias,
// active-low and (kernel) debounce; start() watches the request fd for Event::Read.
// Each callback gets one batch of events (up to 16 per read), in
// last_events(): every edge with its kernel timestamp and sequence numbers,
// which sysfs (evw::Gpio) cannot give.
//
// Caveats:
// - The kernel keeps a bounded queue per request (16 events per line by
//   default, GpioLineConfig::event_buffer_size); when it overflows the oldest
//   events are dropped. Drops show as a gap in line_seqno: GpioEvent::lost
//   and lost() count them.
// - Debounce is done by the kernel (or the chip) and needs a kernel that
//   supports it (5.10+); an unsupported setting fails at construction.
// - The line stays requested (busy for others, EBUSY) until the watcher is
//   destroyed. Reconfiguring means destroying and constructing again.
// - A GpioLine built on an already-open fd (RequestFd) takes ownership of it
//   and decodes whatever records come from it; lost-event counting assumes
//   the fd is fresh (line_seqno starting at 1).
//
// revents: Event::Read with a batch in last_events(); Event::Error once if
// reading the request fd fails, Event::Hup once at its end of file (an fd
// that is no line request): the watcher has stopped itself in both cases. Plus whatever feed() passes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "../core/loop.hpp"
#include "../core/time.hpp"
#include "../core/watcher.hpp"
#include "gpio.hpp"

namespace evw {

/// Electrical bias of a GPIO input.
enum class Bias { AsIs, Disabled, PullUp, PullDown };

/// Clock of GpioEvent::timestamp_ns.
enum class EventClock { Monotonic, Realtime };

/// How a GPIO line is requested from the character device.
struct GpioLineConfig {
  Edge edge = Edge::Both;     ///< which edges produce events (None: no events)
  Bias bias = Bias::AsIs;     ///< pull-up/-down; AsIs leaves the hardware as it is
  bool active_low = false;    ///< Rising/Falling refer to the inverted (logical) level
  Seconds debounce = 0.0;     ///< kernel debounce period, 0 = off (microsecond resolution)
  EventClock clock = EventClock::Monotonic;
  /// Kernel queue size in events, 0 = kernel default (16). The kernel rounds it up to a
  /// power of two and caps it at 1024; 1 is refused (with edge detection on).
  unsigned event_buffer_size = 0;
  std::string consumer = "evw";    ///< label shown by gpioinfo (at most 31 characters)
};

/// One edge event, decoded from a gpio_v2_line_event record.
struct GpioEvent {
  Edge edge = Edge::None;           ///< Rising or Falling (None for an unknown record id)
  std::uint64_t timestamp_ns = 0;   ///< kernel timestamp on GpioLineConfig::clock
  std::uint32_t seqno = 0;          ///< sequence number among all lines of the request
  std::uint32_t line_seqno = 0;     ///< sequence number on this line (first event: 1)
  unsigned line = 0;                ///< the line's offset on its chip
  std::uint32_t lost = 0;           ///< events dropped on this line just before this one
};

/// Turns the bytes of a GPIO request fd into GpioEvents, whatever way the
/// bytes were split, and counts events lost (gaps in line_seqno).
class GpioEventDecoder {
 public:
  /// Size of one gpio_v2_line_event record.
  static constexpr std::size_t kRecordSize = 48;

  /// @brief Decode bytes appended to any incomplete record left by the last call.
  ///        Complete records are appended to out; an incomplete tail is kept.
  void decode(const void* bytes, std::size_t size, std::vector<GpioEvent>& out);
  /// Events lost so far, over all lines.
  std::uint64_t lost() const noexcept { return lost_; }
  /// Bytes of an incomplete record waiting for the rest.
  std::size_t partial() const noexcept { return partial_size_; }

 private:
  GpioEvent decode_record(const unsigned char* record);

  unsigned char partial_[kRecordSize] = {};
  std::size_t partial_size_ = 0;
  std::uint64_t lost_ = 0;
  std::vector<std::pair<unsigned, std::uint32_t>> last_seqno_;  // (line, last line_seqno)
};

namespace detail {
struct GpioLineTrampoline;
}

/// Calls back (revents Event::Read) with a batch of edge events of one GPIO line.
class GpioLine final : public detail::Watcher<GpioLine> {
 public:
  /// An already-open request fd (or any fd that yields gpio_v2_line_event records).
  struct RequestFd {
    int fd;
  };

  /// @brief Requests `line` of `chip` (a path such as "/dev/gpiochip0"). Stopped.
  /// @throws std::invalid_argument if line is negative or not below the chip's
  ///         number of lines, if config is invalid (negative or non-finite
  ///         debounce, or above 4294 s; a consumer longer than 31 characters;
  ///         an enum value out of range; event_buffer_size 1 with an edge), or cb is empty;
  ///         std::system_error naming the chip and the line (ENOENT: no such
  ///         chip; EBUSY: the line is requested by someone else; EACCES; ...).
  GpioLine(Loop& loop, std::string chip, int line, GpioLineConfig config, Callback cb);
  /// @brief The line with the default GpioLineConfig (both edges).
  GpioLine(Loop& loop, std::string chip, int line, Callback cb)
      : GpioLine(loop, std::move(chip), line, GpioLineConfig{}, std::move(cb)) {}
  /// @brief Watches an already-open fd and takes ownership of it (closed by
  ///        the destructor, also if this throws). line() is -1, chip() empty.
  /// @throws std::invalid_argument if fd < 0 or cb is empty.
  GpioLine(Loop& loop, RequestFd fd, Callback cb);
  /// @brief Same as GpioLine(loop, RequestFd{fd}, cb).
  static GpioLine from_fd(Loop& loop, int fd, Callback cb) {
    return GpioLine(loop, RequestFd{fd}, std::move(cb));
  }
  /// Stops and closes the request fd, which releases the line.
  ~GpioLine();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// The request fd (and the line it holds) goes along.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  GpioLine(GpioLine&& other);
  GpioLine& operator=(GpioLine&& other) { return move_assign(other); }

  /// @brief In a coroutine: `int revents = co_await line.edge();` waits for
  ///        the next batch of events, after this watcher's own callback has
  ///        run for it. Starts the watcher for the wait if it is stopped (and
  ///        stops it again after). Needs <evw/coro/coro.hpp>; see coro/edge.hpp.
  /// @return (at co_await) the revents: Event::Read, last_events() being the batch;
  ///         Event::Error or Event::Hup once if the request fd fails or closes.
  /// @throws (at co_await) what start() throws; std::logic_error if another
  ///         coroutine awaits edge() of this watcher.
  template <class Self = GpioLine>
  [[nodiscard]] detail::EdgeAwaitable<Self> edge() noexcept {
    return detail::EdgeAwaitable<Self>(static_cast<Self&>(*this));
  }
  template <class>
  friend class detail::EdgeAwaitable;

  /// @brief The events of the batch being delivered (valid in the callback
  ///        and until the next batch), oldest first.
  std::span<const GpioEvent> last_events() const noexcept { return events_; }
  /// Events lost so far (gaps in line_seqno).
  std::uint64_t lost() const noexcept { return decoder_.lost(); }
  /// @brief The line's current logical level (GPIO_V2_LINE_GET_VALUES_IOCTL).
  /// @throws std::system_error (ENOTTY if the fd is not a line request).
  int read_value() const;
  /// Why the watcher stopped itself with Event::Error (reading failed), else empty;
  /// cleared by the next start().
  std::error_code error() const noexcept { return error_; }

  int line() const noexcept { return line_; }
  const std::string& chip() const noexcept { return chip_; }
  const GpioLineConfig& config() const noexcept { return config_; }
  /// The request fd (owned by the watcher).
  int fd() const noexcept { return fd_.get(); }

 private:
  friend struct detail::GpioLineTrampoline;
  // @throws std::system_error(EBADF) if the fd is not open.
  void start_impl() override;
  void stop_impl() noexcept override;
  void rehome_start_impl(WatcherBase& from, bool active) noexcept override;
  void on_readable(int revents) noexcept;

  detail::EvStorage<48> ev_;
  detail::OwnedFd fd_;
  std::string chip_;
  int line_ = -1;
  GpioLineConfig config_;
  GpioEventDecoder decoder_;
  std::vector<GpioEvent> events_;
  std::error_code error_;
};

}  // namespace evw
