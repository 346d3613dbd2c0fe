#include "chip_sim.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace evw::sim {
namespace {

constexpr std::size_t kDefaultQueue = 16;  // the kernel's: 16 per line of the request
constexpr std::size_t kMaxQueue = 1024;    // GPIO_V2_LINES_MAX * 16
constexpr unsigned kMaxLines = 65535;

[[noreturn]] void invalid(const std::string& what) {
  throw std::invalid_argument("evw::sim::GpioChipSim: " + what);
}

[[noreturn]] void system_error(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), "evw::sim::GpioChipSim: " + what);
}

// How many open fds of this process refer to the pipe whose inode is `ino`: the simulator
// holds two, so a third is the caller's request fd, still open.
int fds_on_pipe(ino_t ino) {
  int count = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return 3;  // cannot tell: assume still held, as the safe answer for EBUSY
  const std::string want = "pipe:[" + std::to_string(ino) + "]";
  char target[64];
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    const ssize_t n = ::readlinkat(::dirfd(dir), entry->d_name, target, sizeof target - 1);
    if (n > 0 && std::string(target, static_cast<std::size_t>(n)) == want) ++count;
  }
  ::closedir(dir);
  return count;
}

ino_t inode_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

}  // namespace

GpioChipSim::GpioChipSim(unsigned lines, std::string label) : label_(std::move(label)) {
  if (lines < 1 || lines > kMaxLines)
    invalid("lines: " + std::to_string(lines) + " is not within 1.." + std::to_string(kMaxLines));
  levels_.assign(lines, 0);
}

GpioChipSim::~GpioChipSim() {
  for (Request& r : requests_) {
    ::close(r.write_end);
    ::close(r.read_end);
  }
}

std::size_t GpioChipSim::queue_capacity(unsigned event_buffer_size) noexcept {
  if (event_buffer_size == 0) return kDefaultQueue;
  // The kernel caps the size, then kfifo_alloc rounds it up to a power of two.
  std::size_t size = event_buffer_size < kMaxQueue ? event_buffer_size : kMaxQueue;
  std::size_t capacity = 1;
  while (capacity < size) capacity <<= 1;
  return capacity;
}

void GpioChipSim::check_line(unsigned line, const char* what) const {
  if (line >= levels_.size())
    throw std::out_of_range("evw::sim::GpioChipSim::" + std::string(what) + ": line " +
                            std::to_string(line) + " is out of range: the chip has " +
                            std::to_string(levels_.size()) + " lines");
}

void GpioChipSim::release_closed() const {
  for (auto it = requests_.begin(); it != requests_.end();) {
    if (fds_on_pipe(inode_of(it->write_end)) <= 2) {
      ::close(it->write_end);
      ::close(it->read_end);
      it = requests_.erase(it);
    } else {
      ++it;
    }
  }
}

const GpioChipSim::Request* GpioChipSim::live_request(unsigned line) const {
  for (const Request& r : requests_)
    if (r.line == line) return &r;
  return nullptr;
}

int GpioChipSim::request(unsigned line, const GpioLineConfig& config) {
  if (line >= levels_.size())
    invalid("line " + std::to_string(line) + " is out of range: the chip has " +
            std::to_string(levels_.size()) + " lines");
  switch (config.edge) {
    case Edge::None: case Edge::Rising: case Edge::Falling: case Edge::Both: break;
    default: invalid("edge: " + std::to_string(static_cast<int>(config.edge)) + " is not an evw::Edge");
  }
  if (config.clock != EventClock::Monotonic && config.clock != EventClock::Realtime)
    invalid("clock: " + std::to_string(static_cast<int>(config.clock)) + " is not an evw::EventClock");
  if (config.edge != Edge::None && config.event_buffer_size == 1)
    invalid("event_buffer_size: 1 is too small: the kernel's event queue holds at least 2 events");
  if (config.debounce != 0.0)
    invalid("debounce: " + std::to_string(config.debounce) + " s asked for, but debounce is not simulated");
  release_closed();
  if (live_request(line))
    system_error(EBUSY, "line " + std::to_string(line) + " is requested already");

  int ends[2];
  if (::pipe2(ends, O_NONBLOCK | O_CLOEXEC) != 0) system_error(errno, "pipe2");
  const int own_read = ::fcntl(ends[0], F_DUPFD_CLOEXEC, 0);
  if (own_read < 0) {
    const int err = errno;
    ::close(ends[0]);
    ::close(ends[1]);
    system_error(err, "fcntl(F_DUPFD_CLOEXEC)");
  }
  Request r;
  r.line = line;
  r.config = config;
  r.capacity = queue_capacity(config.event_buffer_size);
  r.write_end = ends[1];
  r.read_end = own_read;
  requests_.push_back(std::move(r));
  return ends[0];
}

void GpioChipSim::set_input(unsigned line, int level) {
  check_line(line, "set_input");
  if (level != 0 && level != 1)
    throw std::invalid_argument("evw::sim::GpioChipSim::set_input: level " + std::to_string(level) +
                                " is not 0 or 1");
  if (levels_[line] == level) return;  // no change, no edge
  levels_[line] = level;
  for (Request& r : requests_) {
    if (r.line != line) continue;
    const bool rising = (level != 0) != r.config.active_low;  // of the logical level
    const Edge edge = r.config.edge;
    if (edge == Edge::Both || edge == (rising ? Edge::Rising : Edge::Falling)) push(r, rising);
  }
}

void GpioChipSim::push(Request& r, bool rising) {
  gpio_v2_line_event event{};
  timespec now{};
  ::clock_gettime(r.config.clock == EventClock::Realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC, &now);
  event.timestamp_ns = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000u +
                       static_cast<std::uint64_t>(now.tv_nsec);
  event.id = rising ? GPIO_V2_LINE_EVENT_RISING_EDGE : GPIO_V2_LINE_EVENT_FALLING_EDGE;
  event.offset = r.line;
  // Both count every edge detected, also the ones the full queue drops; a request of one
  // line numbers seqno as line_seqno.
  event.line_seqno = ++r.line_seqno;
  event.seqno = event.line_seqno;
  // The kernel's linereq_put_event: a full kfifo skips its oldest record for the new one.
  // The pipe is the queue, FIONREAD its fill level.
  int bytes = 0;
  if (::ioctl(r.write_end, FIONREAD, &bytes) == 0 &&
      static_cast<std::size_t>(bytes) >= r.capacity * sizeof event) {
    gpio_v2_line_event oldest;
    if (::read(r.read_end, &oldest, sizeof oldest) == static_cast<ssize_t>(sizeof oldest)) ++r.dropped;
  }
  // At most 1024 records of 48 bytes: the pipe (64 KiB) never fills, so this never blocks.
  if (::write(r.write_end, &event, sizeof event) != static_cast<ssize_t>(sizeof event))
    system_error(errno, "write to the request pipe of line " + std::to_string(r.line));
}

int GpioChipSim::input(unsigned line) const {
  check_line(line, "input");
  return levels_[line];
}

std::size_t GpioChipSim::queued(unsigned line) const {
  check_line(line, "queued");
  release_closed();
  const Request* r = live_request(line);
  int bytes = 0;
  if (!r || ::ioctl(r->write_end, FIONREAD, &bytes) != 0) return 0;
  return static_cast<std::size_t>(bytes) / sizeof(gpio_v2_line_event);
}

std::uint64_t GpioChipSim::dropped(unsigned line) const {
  check_line(line, "dropped");
  release_closed();
  const Request* r = live_request(line);
  return r ? r->dropped : 0;
}

}  // namespace evw::sim
