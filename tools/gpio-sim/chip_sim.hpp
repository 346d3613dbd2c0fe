// evw::sim::GpioChipSim — an in-process stand-in for a GPIO character device
// (/dev/gpiochipN, uAPI v2) for testing GpioLine code without a board and without
// privileges: request() hands out an fd that GpioLine::from_fd accepts, set_input() drives a
// line, and each edge the request asked for arrives on the fd as a gpio_v2_line_event record
// shaped as the kernel makes it (gpiolib-cdev.c):
// - id GPIO_V2_LINE_EVENT_RISING_EDGE / _FALLING_EDGE of the logical level (active_low
//   inverts), only for the edges the request's GpioLineConfig::edge selects;
// - timestamp_ns on CLOCK_MONOTONIC (CLOCK_REALTIME with EventClock::Realtime), taken when
//   the level is driven;
// - line_seqno counting this request's events on the line from 1, and seqno equal to it (the
//   kernel's rule for a request of one line);
// - a queue of GpioLineConfig::event_buffer_size records (0: the kernel's 16; rounded up to
//   a power of two and capped at 1024, as the kernel's kfifo is) that drops the oldest record
//   when full: the gap shows in line_seqno, so GpioLine::lost() counts it.
//
// Caveats:
// - The fd is a pipe, not a character device: reads and poll/epoll behave as the kernel's
//   request fd, but its ioctls do not exist (GpioLine::read_value() fails with ENOTTY; use
//   input()). Destroying the simulator closes the pipe's other end: a GpioLine still
//   reading it gets Event::Hup (the kernel reports a removed chip as ENODEV/POLLHUP).
// - Debounce is not simulated: a request with GpioLineConfig::debounce > 0 is refused.
//   Bias is accepted and changes nothing: the level driven is the level read.
// - Not thread-safe: drive lines from the thread that runs the GpioLine's loop, or
//   synchronise. Dropping the oldest record reads it from the pipe, which races with a
//   reader on another thread.
// - A line stays requested (EBUSY for another request) while the request fd is open in this
//   process; a request fd handed to another process is not seen.
#pragma once

#include <evw/watchers/gpio_line.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace evw::sim {

/// A simulated GPIO chip whose lines are requested as the character device's are.
class GpioChipSim {
 public:
  /// @brief A chip of `lines` input lines, all at level 0.
  /// @throws std::invalid_argument unless 1 <= lines <= 65535.
  explicit GpioChipSim(unsigned lines = 64, std::string label = "evw-gpio-sim");
  /// Closes the simulator's ends of every request pipe (their readers see end of file).
  ~GpioChipSim();
  GpioChipSim(const GpioChipSim&) = delete;
  GpioChipSim& operator=(const GpioChipSim&) = delete;

  /// @brief Requests a line, as GPIO_V2_GET_LINE_IOCTL does, and returns the request fd
  ///        (O_NONBLOCK, O_CLOEXEC), which the caller owns: hand it to GpioLine::from_fd.
  ///        Closing it releases the line.
  /// @throws std::invalid_argument as the kernel's EINVAL and as GpioLine's own checks (line
  ///         out of range, event_buffer_size 1 with an edge, a bad enum value), and for a
  ///         debounce, which is not simulated; std::system_error EBUSY if the line is held by
  ///         another request; std::system_error for a failed pipe().
  int request(unsigned line, const GpioLineConfig& config = {});

  /// @brief Drives the physical level of a line. A change is an edge: every live request of
  ///        the line that selected it gets a record (readable on its fd before this returns).
  /// @throws std::out_of_range for an unknown line; std::invalid_argument unless level is 0 or 1.
  void set_input(unsigned line, int level);

  /// @brief The physical level last driven on a line (0 at start).
  /// @throws std::out_of_range for an unknown line.
  int input(unsigned line) const;

  /// Number of lines; valid lines are 0..line_count()-1.
  unsigned line_count() const noexcept { return static_cast<unsigned>(levels_.size()); }
  /// The chip's label, as GPIO_GET_CHIPINFO_IOCTL would report it.
  const std::string& label() const noexcept { return label_; }

  /// @brief Records waiting in the queue of the line's request (0 if it is not requested).
  /// @throws std::out_of_range for an unknown line.
  std::size_t queued(unsigned line) const;
  /// @brief Records the line's request has dropped because its queue was full (0 if it is
  ///        not requested).
  /// @throws std::out_of_range for an unknown line.
  std::uint64_t dropped(unsigned line) const;

  /// @brief The queue size the kernel gives a request of one line with this
  ///        event_buffer_size: 16 for 0, else rounded up to a power of two, at most 1024.
  static std::size_t queue_capacity(unsigned event_buffer_size) noexcept;

 private:
  struct Request {
    unsigned line = 0;
    GpioLineConfig config;
    std::size_t capacity = 0;
    int write_end = -1;  // the simulator's: records go in here
    int read_end = -1;   // a duplicate of the caller's fd: the oldest record is dropped from it
    std::uint32_t line_seqno = 0;
    std::uint64_t dropped = 0;
  };

  void check_line(unsigned line, const char* what) const;
  const Request* live_request(unsigned line) const;
  void release_closed() const;
  void push(Request& request, bool rising);

  std::string label_;
  std::vector<int> levels_;
  // Mutable: a request whose fd the caller has closed is let go by whichever call notices.
  mutable std::vector<Request> requests_;
};

}  // namespace evw::sim
