#include "gpio_line.hpp"

#include <fcntl.h>
#include <linux/gpio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "../core/access.hpp"
#include "../core/sys.hpp"
#include "../coro/edge.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<48>) >= sizeof(ev_io));
static_assert(sizeof(gpio_v2_line_event) == GpioEventDecoder::kRecordSize);

namespace {

constexpr std::size_t kBatch = 16;  // records per read(); more stay readable for the next iteration
constexpr double kMaxDebounce = 4294.967295;  // debounce_period_us is a __u32

}  // namespace

// ---- the decoder ---------------------------------------------------------------------

GpioEvent GpioEventDecoder::decode_record(const unsigned char* record) {
  gpio_v2_line_event raw;
  std::memcpy(&raw, record, sizeof raw);
  GpioEvent event;
  event.edge = raw.id == GPIO_V2_LINE_EVENT_RISING_EDGE    ? Edge::Rising
               : raw.id == GPIO_V2_LINE_EVENT_FALLING_EDGE ? Edge::Falling
                                                           : Edge::None;
  event.timestamp_ns = raw.timestamp_ns;
  event.seqno = raw.seqno;
  event.line_seqno = raw.line_seqno;
  event.line = raw.offset;
  // The kernel numbers each line's events from 1 and drops the oldest when its
  // queue is full, so a jump in line_seqno is exactly the number dropped.
  std::uint32_t expected = 1;
  auto it = last_seqno_.begin();
  while (it != last_seqno_.end() && it->first != raw.offset) ++it;
  if (it != last_seqno_.end()) expected = it->second + 1;
  else it = last_seqno_.insert(last_seqno_.end(), {raw.offset, 0});
  const std::uint32_t gap = raw.line_seqno - expected;  // modulo 2^32: wraps cleanly
  if (gap != 0 && gap < 0x80000000u) {
    event.lost = gap;
    lost_ += gap;
  }
  it->second = raw.line_seqno;
  return event;
}

void GpioEventDecoder::decode(const void* bytes, std::size_t size, std::vector<GpioEvent>& out) {
  const auto* p = static_cast<const unsigned char*>(bytes);
  if (size == 0) return;  // bytes may be null then (an empty vector's data()): keep it from memcpy
  if (partial_size_ != 0) {
    const std::size_t take = std::min(size, kRecordSize - partial_size_);
    std::memcpy(partial_ + partial_size_, p, take);
    partial_size_ += take;
    p += take;
    size -= take;
    if (partial_size_ < kRecordSize) return;
    out.push_back(decode_record(partial_));
    partial_size_ = 0;
  }
  for (; size >= kRecordSize; p += kRecordSize, size -= kRecordSize) out.push_back(decode_record(p));
  std::memcpy(partial_, p, size);
  partial_size_ = size;
}

// ---- the watcher -----------------------------------------------------------------------

namespace {

// ioctl(2) through the seam, retried on EINTR.
int gpio_ioctl(int fd, unsigned long request, void* arg) {
  return detail::sys::retry_eintr([&] { return detail::sys::ioctl(fd, request, arg); });
}

void check(int line, const GpioLineConfig& config) {
  if (line < 0) detail::throw_invalid("GpioLine", "line", std::to_string(line) + " is negative");
  switch (config.edge) {
    case Edge::None: case Edge::Rising: case Edge::Falling: case Edge::Both: break;
    default:
      detail::throw_invalid("GpioLine", "edge", std::to_string(static_cast<int>(config.edge)) +
                                                    " is not an evw::Edge");
  }
  switch (config.bias) {
    case Bias::AsIs: case Bias::Disabled: case Bias::PullUp: case Bias::PullDown: break;
    default:
      detail::throw_invalid("GpioLine", "bias", std::to_string(static_cast<int>(config.bias)) +
                                                    " is not an evw::Bias");
  }
  if (config.clock != EventClock::Monotonic && config.clock != EventClock::Realtime)
    detail::throw_invalid("GpioLine", "clock", std::to_string(static_cast<int>(config.clock)) +
                                                   " is not an evw::EventClock");
  const double debounce = config.debounce;
  if (!std::isfinite(debounce) || debounce < 0 || debounce > kMaxDebounce)
    detail::throw_invalid("GpioLine", "debounce", std::to_string(debounce) +
                                                      " must be within [0, 4294.967295] seconds");
  // The kernel's queue is a kfifo, rounded up to a power of two and allocated only when
  // edges are asked for; a kfifo of one record is refused there with EINVAL (__kfifo_alloc).
  if (config.edge != Edge::None && config.event_buffer_size == 1)
    detail::throw_invalid("GpioLine", "event_buffer_size",
                          "1 is too small: the kernel's event queue holds at least 2 events "
                          "(0 asks for its default, 16)");
  if (config.consumer.size() >= GPIO_MAX_NAME_SIZE)
    detail::throw_invalid("GpioLine", "consumer", "\"" + config.consumer + "\" is longer than " +
                                                      std::to_string(GPIO_MAX_NAME_SIZE - 1) +
                                                      " characters");
}

std::uint64_t flags_of(const GpioLineConfig& config) {
  std::uint64_t flags = GPIO_V2_LINE_FLAG_INPUT;
  if (config.edge == Edge::Rising || config.edge == Edge::Both) flags |= GPIO_V2_LINE_FLAG_EDGE_RISING;
  if (config.edge == Edge::Falling || config.edge == Edge::Both) flags |= GPIO_V2_LINE_FLAG_EDGE_FALLING;
  if (config.bias == Bias::Disabled) flags |= GPIO_V2_LINE_FLAG_BIAS_DISABLED;
  if (config.bias == Bias::PullUp) flags |= GPIO_V2_LINE_FLAG_BIAS_PULL_UP;
  if (config.bias == Bias::PullDown) flags |= GPIO_V2_LINE_FLAG_BIAS_PULL_DOWN;
  if (config.active_low) flags |= GPIO_V2_LINE_FLAG_ACTIVE_LOW;
  if (config.clock == EventClock::Realtime) flags |= GPIO_V2_LINE_FLAG_EVENT_CLOCK_REALTIME;
  return flags;
}

// Opens the chip, checks the line, requests it. @return the request fd.
int request_line(const std::string& chip, int line, const GpioLineConfig& config) {
  const std::string who = "evw::GpioLine: " + chip + " line " + std::to_string(line) + ": ";
  detail::OwnedFd chip_fd(
      detail::sys::retry_eintr([&] { return detail::sys::open(chip.c_str(), O_RDWR | O_CLOEXEC); }));
  if (chip_fd.get() < 0) detail::throw_system(errno, who + "open " + chip);
  gpiochip_info info{};
  if (gpio_ioctl(chip_fd.get(), GPIO_GET_CHIPINFO_IOCTL, &info) != 0)
    detail::throw_system(errno, who + "GPIO_GET_CHIPINFO_IOCTL (is it a GPIO chip?)");
  if (static_cast<unsigned>(line) >= info.lines)
    detail::throw_invalid("GpioLine", "line", std::to_string(line) + " is out of range: " + chip +
                                                  " has " + std::to_string(info.lines) + " lines");
  gpio_v2_line_request request{};
  request.offsets[0] = static_cast<std::uint32_t>(line);
  request.num_lines = 1;
  request.event_buffer_size = config.event_buffer_size;
  std::strncpy(request.consumer, config.consumer.c_str(), sizeof request.consumer - 1);
  request.config.flags = flags_of(config);
  if (const double debounce = config.debounce; debounce > 0) {
    auto us = static_cast<std::uint32_t>(std::llround(debounce * 1e6));
    gpio_v2_line_config_attribute& attr = request.config.attrs[request.config.num_attrs++];
    attr.attr.id = GPIO_V2_LINE_ATTR_ID_DEBOUNCE;
    attr.attr.debounce_period_us = us != 0 ? us : 1;
    attr.mask = 1;  // bit 0: the request's first (only) line
  }
  if (gpio_ioctl(chip_fd.get(), GPIO_V2_GET_LINE_IOCTL, &request) != 0)
    detail::throw_system(errno, who + "GPIO_V2_GET_LINE_IOCTL");
  return request.fd;
}

// One read per callback, and a spurious wakeup must not block the loop: a
// descriptor that cannot be made nonblocking is refused, not watched.
void set_nonblocking(int fd) {
  const int flags = detail::sys::retry_eintr([&] { return detail::sys::fcntl(fd, F_GETFL); });
  const char* op = "fcntl(F_GETFL)";
  if (flags >= 0) {
    if (flags & O_NONBLOCK) return;
    op = "fcntl(F_SETFL, O_NONBLOCK)";
    if (detail::sys::retry_eintr(
            [&] { return detail::sys::fcntl(fd, F_SETFL, flags | O_NONBLOCK); }) == 0)
      return;
  }
  const int err = errno;
  detail::throw_system(err, "evw::GpioLine: fd " + std::to_string(fd) + ": " + op);
}

// The constructor's base is built before any member can own the fd: close it
// here when the callback is empty, so that "takes ownership" holds on failure.
detail::Watcher<GpioLine>::Callback close_on_empty(int fd, detail::Watcher<GpioLine>::Callback cb) {
  if (!cb && fd >= 0) detail::sys::close(fd);
  return cb;
}

}  // namespace

struct detail::GpioLineTrampoline {
  static void on_event(struct ev_loop*, ev_io* w, int revents) noexcept {
    static_cast<GpioLine*>(w->data)->on_readable(revents);
  }
};

GpioLine::GpioLine(Loop& loop, std::string chip, int line, GpioLineConfig config, Callback cb)
    : Watcher(loop, &ev_, "GpioLine", std::move(cb)) {
  check(line, config);
  if (chip.empty()) detail::throw_invalid("GpioLine", "chip", "is empty");
  fd_.reset(request_line(chip, line, config));
  set_nonblocking(fd_.get());
  chip_ = std::move(chip);
  line_ = line;
  config_ = std::move(config);
  auto* w = detail::ev_of<ev_io>(*this);
  ev_io_set(w, fd_.get(), EV_READ);
  ev_set_cb(w, detail::GpioLineTrampoline::on_event);
}

GpioLine::GpioLine(Loop& loop, RequestFd fd, Callback cb)
    : Watcher(loop, &ev_, "GpioLine", close_on_empty(fd.fd, std::move(cb))), fd_(fd.fd) {
  if (fd.fd < 0) detail::throw_invalid("GpioLine", "fd", std::to_string(fd.fd) + " is negative");
  set_nonblocking(fd_.get());
  auto* w = detail::ev_of<ev_io>(*this);
  ev_io_set(w, fd_.get(), EV_READ);
  ev_set_cb(w, detail::GpioLineTrampoline::on_event);
}

GpioLine::~GpioLine() { stop(); }

GpioLine::GpioLine(GpioLine&& other)
    : Watcher(std::move(other), &ev_),
      fd_(std::move(other.fd_)),
      chip_(std::move(other.chip_)),
      line_(std::exchange(other.line_, -1)),
      config_(std::move(other.config_)),
      decoder_(std::move(other.decoder_)),
      events_(std::move(other.events_)),
      error_(other.error_) {
  finish_move(other, sizeof ev_);
  detail::EdgeHook<GpioLine>::moved(other, *this);  // a coroutine awaiting edge() follows
}

// Without start_impl's fcntl check: the request fd is the watcher's own.
void GpioLine::rehome_start_impl(WatcherBase&, bool active) noexcept {
  if (active) ev_io_start(raw_loop(), detail::ev_of<ev_io>(*this));
}

int GpioLine::read_value() const {
  gpio_v2_line_values values{};
  values.mask = 1;
  if (gpio_ioctl(fd_.get(), GPIO_V2_LINE_GET_VALUES_IOCTL, &values) != 0)
    detail::throw_system(errno, "evw::GpioLine: " + chip_ + " line " + std::to_string(line_) +
                                    ": GPIO_V2_LINE_GET_VALUES_IOCTL");
  return static_cast<int>(values.bits & 1);
}

void GpioLine::start_impl() {
  if (detail::sys::retry_eintr([&] { return detail::sys::fcntl(fd_.get(), F_GETFD); }) < 0) {
    const int err = errno;
    detail::throw_system(err, "evw::GpioLine::start: fd " + std::to_string(fd_.get()) +
                                  (err == EBADF ? " is not open" : ": fcntl(F_GETFD)"));
  }
  ev_io_start(raw_loop(), detail::ev_of<ev_io>(*this));
  error_.clear();
}

void GpioLine::stop_impl() noexcept { ev_io_stop(raw_loop(), detail::ev_of<ev_io>(*this)); }

void GpioLine::on_readable(int revents) noexcept {
  // After a callback threw, the event is deferred untouched: the records stay
  // in the kernel until run() feeds it back.
  if (detail::Access::failed(*detail::Access::loop(*this)) || !(revents & EV_READ)) {
    detail::dispatch(*this, revents);  // EV_ERROR from libev: it has stopped the watcher
    return;
  }
  unsigned char buf[kBatch * GpioEventDecoder::kRecordSize];
  const ssize_t n =
      detail::sys::retry_eintr([&] { return detail::sys::read(fd_.get(), buf, sizeof buf); });
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    error_ = std::error_code(errno, std::generic_category());
    stop();  // a failing fd stays readable: do not spin on it
    detail::dispatch(*this, Event::Error);
    return;
  }
  if (n == 0) {
    stop();  // end of file (only an fd that is not a request has one) stays readable
    detail::dispatch(*this, Event::Hup);
    return;
  }
  events_.clear();
  decoder_.decode(buf, static_cast<std::size_t>(n), events_);
  if (events_.empty()) return;  // only part of a record so far
  detail::dispatch(*this, revents);  // may destroy *this: touch nothing after
}

}  // namespace evw
