// line_scenarios — one script of GPIO character-device requests and drive sequences, run
// against the kernel's gpiolib-cdev (in the tools/kernel-gpio guest, lines driven through
// gpio-sim's sim_gpioN/pull) or against evw::sim::GpioChipSim (--sim, on any host). It prints
// the records each request yields (edge id, seqno, line_seqno) and the errnos of refused
// requests; timestamps only as whether they rise and lie on the asked clock between the drive's
// start and the read. tests/kernel/differential/run.sh compares the two transcripts.
//
//   line_scenarios          in the guest: the EVW_KGPIO_* chip
//   line_scenarios --sim    GpioChipSim, with as many lines as the guest's chip (32)
//
// Plain reads of the request fd, no evw watcher: this checks the records GpioLine decodes.
#include <evw/sim/chip_sim.hpp>

#include <fcntl.h>
#include <linux/gpio.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

constexpr unsigned kLines = 32;

/// Where requests go and how lines are driven: the kernel's chip or the simulator.
struct Target {
  std::string device;  // kernel: /dev/gpiochipN
  std::string sim;     // kernel: .../gpiochipN, whose sim_gpioK/pull drives line K
  std::unique_ptr<evw::sim::GpioChipSim> chip;  // --sim

  /// The request fd, or -errno.
  int request(unsigned line, evw::Edge edge, bool active_low, unsigned buffer, bool realtime = false) {
    if (chip) {
      evw::GpioLineConfig config;
      config.edge = edge;
      config.active_low = active_low;
      config.event_buffer_size = buffer;
      config.clock = realtime ? evw::EventClock::Realtime : evw::EventClock::Monotonic;
      try {
        return chip->request(line, config);
      } catch (const std::invalid_argument&) {
        return -EINVAL;  // the kernel's answer to the same request
      } catch (const std::system_error& e) {
        return -e.code().value();
      }
    }
    gpio_v2_line_request r{};
    r.offsets[0] = line;
    r.num_lines = 1;
    r.event_buffer_size = buffer;
    std::strcpy(r.consumer, "line_scenarios");
    r.config.flags = GPIO_V2_LINE_FLAG_INPUT;
    if (edge == evw::Edge::Rising || edge == evw::Edge::Both) r.config.flags |= GPIO_V2_LINE_FLAG_EDGE_RISING;
    if (edge == evw::Edge::Falling || edge == evw::Edge::Both) r.config.flags |= GPIO_V2_LINE_FLAG_EDGE_FALLING;
    if (active_low) r.config.flags |= GPIO_V2_LINE_FLAG_ACTIVE_LOW;
    if (realtime) r.config.flags |= GPIO_V2_LINE_FLAG_EVENT_CLOCK_REALTIME;
    const int chip_fd = ::open(device.c_str(), O_RDWR | O_CLOEXEC);
    if (chip_fd < 0) return -errno;
    const int rc = ::ioctl(chip_fd, GPIO_V2_GET_LINE_IOCTL, &r);
    const int err = errno;
    ::close(chip_fd);
    if (rc != 0) return -err;
    ::fcntl(r.fd, F_SETFL, O_NONBLOCK);
    return r.fd;
  }

  void drive(unsigned line, int level) {
    if (chip) return chip->set_input(line, level);
    const std::string path = sim + "/sim_gpio" + std::to_string(line) + "/pull";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    const char* text = level ? "pull-up" : "pull-down";
    if (fd < 0 || ::write(fd, text, std::strlen(text)) < 0) {
      std::fprintf(stderr, "line_scenarios: write %s: %s\n", path.c_str(), std::strerror(errno));
      std::exit(1);
    }
    ::close(fd);
  }
};

Target target;

std::uint64_t now_ns(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::string error_name(int err) {
  const char* name = ::strerrorname_np(err);
  return name ? name : "errno " + std::to_string(err);
}

/// Reads records until the one with line_seqno `last` (the last edge driven) has come, or
/// 5 s pass (under TCG the guest is slow; the wait is for the kernel's irq thread, and
/// nothing is asserted about time).
std::vector<gpio_v2_line_event> read_until(int fd, std::uint32_t last) {
  std::vector<gpio_v2_line_event> got;
  const std::uint64_t give_up = now_ns(CLOCK_MONOTONIC) + 5'000'000'000u;
  while ((got.empty() || got.back().line_seqno < last) && now_ns(CLOCK_MONOTONIC) < give_up) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    gpio_v2_line_event batch[64];
    const ssize_t n = ::read(fd, batch, sizeof batch);
    if (n <= 0) continue;
    got.insert(got.end(), batch, batch + static_cast<std::size_t>(n) / sizeof batch[0]);
  }
  return got;
}

/// Prints the records as "R seqno line_seqno", one per line, with runs of consecutive
/// records of alternating edges folded ("R 25 25 .. F 40 40 (16 records)") so that long
/// bursts stay short; then whether the timestamps rose and lay in [from, to] on `clock`.
void show(const std::vector<gpio_v2_line_event>& got, std::uint64_t from, clockid_t clock, unsigned line) {
  auto text = [](const gpio_v2_line_event& e) {
    const char* id = e.id == GPIO_V2_LINE_EVENT_RISING_EDGE    ? "R"
                     : e.id == GPIO_V2_LINE_EVENT_FALLING_EDGE ? "F"
                                                               : "?";
    return std::string(id) + " " + std::to_string(e.seqno) + " " + std::to_string(e.line_seqno);
  };
  const std::uint64_t to = now_ns(clock);
  bool rising = true, within = true, offsets = true;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (i > 0 && got[i].timestamp_ns < got[i - 1].timestamp_ns) rising = false;
    if (got[i].timestamp_ns < from || got[i].timestamp_ns > to) within = false;
    if (got[i].offset != line) offsets = false;
  }
  if (got.size() <= 6) {
    for (const auto& e : got) std::printf("  %s\n", text(e).c_str());
  } else {
    std::printf("  %s\n  %s\n  ..\n  %s\n  (%zu records)\n", text(got[0]).c_str(), text(got[1]).c_str(),
                text(got.back()).c_str(), got.size());
  }
  if (got.empty()) std::printf("  no records\n");
  std::printf("  timestamps %s, %s the drive; offsets %s\n", rising ? "rise" : "DO NOT RISE",
              within ? "within" : "NOT WITHIN", offsets ? "right" : "WRONG");
}

/// Requests `line`, drives `levels` (after setting `initial` before the request), then
/// reads every record and shows them. `edges` is how many records the drive makes.
void drive_and_show(unsigned line, evw::Edge edge, bool active_low, unsigned buffer,
                    const std::vector<int>& levels, std::uint32_t edges, bool realtime = false,
                    int initial = 0) {
  target.drive(line, initial);
  const int fd = target.request(line, edge, active_low, buffer, realtime);
  if (fd < 0) {
    std::printf("  request: %s\n", error_name(-fd).c_str());
    target.drive(line, 0);
    return;
  }
  const clockid_t clock = realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC;
  const std::uint64_t from = now_ns(clock);
  for (int level : levels) target.drive(line, level);
  show(edges ? read_until(fd, edges) : std::vector<gpio_v2_line_event>{}, from, clock, line);
  pollfd p{fd, POLLIN, 0};
  std::printf("  then readable: %s\n", ::poll(&p, 1, 0) == 1 ? "yes" : "no");
  ::close(fd);
  target.drive(line, 0);
}

std::vector<int> toggles(int n) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) v.push_back((i + 1) % 2);
  return v;
}

struct Scenario {
  const char* name;
  void (*run)();
};

const Scenario scenarios[] = {
    {"both-edges", [] { drive_and_show(1, evw::Edge::Both, false, 0, {1, 0, 1, 0}, 4); }},
    {"rising-only", [] { drive_and_show(2, evw::Edge::Rising, false, 0, {1, 0, 1, 0}, 2); }},
    {"falling-only", [] { drive_and_show(3, evw::Edge::Falling, false, 0, {1, 0, 1, 0}, 2); }},
    {"active-low-both", [] { drive_and_show(4, evw::Edge::Both, true, 0, {1, 0}, 2); }},
    {"active-low-rising", [] { drive_and_show(5, evw::Edge::Rising, true, 0, {1, 0, 1}, 1); }},
    {"same-level-twice", [] { drive_and_show(6, evw::Edge::Both, false, 0, {1, 1, 1, 0, 0}, 2); }},
    {"high-before-request", [] { drive_and_show(7, evw::Edge::Both, false, 0, {0, 1}, 2, false, 1); }},
    {"realtime-clock", [] { drive_and_show(8, evw::Edge::Both, false, 0, {1, 0}, 2, true); }},
    {"no-edges-buffer-1", [] { drive_and_show(9, evw::Edge::None, false, 1, {1, 0}, 0); }},
    {"buffer-1", [] { drive_and_show(10, evw::Edge::Both, false, 1, {1, 0}, 2); }},
    {"overflow-default", [] { drive_and_show(11, evw::Edge::Both, false, 0, toggles(40), 40); }},
    {"overflow-buffer-2", [] { drive_and_show(12, evw::Edge::Both, false, 2, toggles(9), 9); }},
    {"overflow-buffer-5", [] { drive_and_show(13, evw::Edge::Both, false, 5, toggles(20), 20); }},
    {"overflow-buffer-3000", [] { drive_and_show(14, evw::Edge::Both, false, 3000, toggles(1030), 1030); }},
    {"busy-and-released",
     [] {
       const int first = target.request(15, evw::Edge::Both, false, 0);
       const int second = target.request(15, evw::Edge::Both, false, 0);
       std::printf("  second request while held: %s\n", second < 0 ? error_name(-second).c_str() : "granted");
       if (second >= 0) ::close(second);
       target.drive(15, 1);
       if (first >= 0) ::close(first);  // released with a record unread
       drive_and_show(15, evw::Edge::Both, false, 0, {1, 0}, 2);  // counts from 1 again
     }},
    {"out-of-range",
     [] {
       const int fd = target.request(kLines, evw::Edge::Both, false, 0);
       std::printf("  request: %s\n", fd < 0 ? error_name(-fd).c_str() : "granted");
       if (fd >= 0) ::close(fd);
     }},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string_view(argv[1]) == "--sim") {
    target.chip = std::make_unique<evw::sim::GpioChipSim>(kLines);
  } else if (argc == 1) {
    const char* device = std::getenv("EVW_KGPIO_CHIP");
    const char* sim = std::getenv("EVW_KGPIO_SIM");
    const char* lines = std::getenv("EVW_KGPIO_LINES");
    if (!device || !sim || !lines) {
      std::fprintf(stderr, "line_scenarios: no EVW_KGPIO_* (not in the guest): give --sim\n");
      return 2;
    }
    if (static_cast<unsigned>(std::atoi(lines)) != kLines) {
      std::fprintf(stderr, "line_scenarios: the guest's chip has %s lines, the script needs %u\n", lines, kLines);
      return 2;
    }
    target.device = device;
    target.sim = sim;
  } else {
    std::fprintf(stderr, "usage: %s [--sim]\n", argv[0]);
    return 2;
  }
  for (const Scenario& s : scenarios) {
    std::printf("== %s\n", s.name);
    std::fflush(stdout);
    s.run();
  }
  std::printf("== end\n");
  return 0;
}
