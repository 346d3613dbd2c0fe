// The kernel's gpio-sim chip, as tests on the real kernel see it: where it is (from the
// EVW_KGPIO_* variables that tools/kernel-gpio/init exports), how a line is driven (the
// simulator's sim_gpioK/pull attribute), and a reset that gives every test case the chip
// as the guest made it (all lines pulled down, nothing exported).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <evw/evw.hpp>
#include <string>

#include "../support.hpp"

namespace kgpio {

struct Chip {
  std::string device;  ///< /dev/gpiochipN
  std::string sim;     ///< /sys/devices/platform/gpio-sim.K/gpiochipN: sim_gpioL/{pull,value}
  int base = -1;       ///< sysfs GPIO number of line 0 (the legacy interface), -1 if none
  int lines = 0;

  /// The sysfs GPIO number of a line, as evw::Gpio takes it.
  int number(int line) const { return base + line; }
  std::string gpio_dir(int line) const { return "/sys/class/gpio/gpio" + std::to_string(number(line)); }
};

/// The chip of the guest; nullptr (and why) outside it.
inline const Chip* chip(std::string& why) {
  static Chip found;
  static bool looked = false;
  if (!looked) {
    looked = true;
    const char* device = std::getenv("EVW_KGPIO_CHIP");
    const char* sim = std::getenv("EVW_KGPIO_SIM");
    const char* base = std::getenv("EVW_KGPIO_BASE");
    const char* lines = std::getenv("EVW_KGPIO_LINES");
    if (device && sim && base && lines) found = Chip{device, sim, std::atoi(base), std::atoi(lines)};
  }
  if (found.device.empty()) {
    why = "no kernel gpio-sim chip here (EVW_KGPIO_CHIP unset): run through tools/kernel-gpio/run";
    return nullptr;
  }
  return &found;
}

/// 0 or -errno of writing text to path.
inline int write_file(const std::string& path, const std::string& text) {
  evw_test::Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0) return -errno;
  if (::write(fd.get(), text.data(), text.size()) < 0) return -errno;
  return 0;
}

/// The first line of a file without its newline; "" if it cannot be read.
inline std::string read_file(const std::string& path) {
  evw_test::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  char buf[256] = {};
  if (fd.get() < 0 || ::read(fd.get(), buf, sizeof buf - 1) < 0) return "";
  std::string text = buf;
  return text.substr(0, text.find('\n'));
}

inline bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

/// Drives line's input level: gpio-sim's pull is the level an input line reads (and the
/// edge it raises) unless something drives it.
inline void pull(const Chip& c, int line, int level) {
  const std::string path = c.sim + "/sim_gpio" + std::to_string(line) + "/pull";
  const int r = write_file(path, level ? "pull-up" : "pull-down");
  INFO("write " << path);
  REQUIRE(r == 0);
}

inline std::string pull_of(const Chip& c, int line) {
  return read_file(c.sim + "/sim_gpio" + std::to_string(line) + "/pull");
}

/// 0 or -errno of writing the number to /sys/class/gpio/{export,unexport}.
inline int sysfs_export(const Chip& c, int line) {
  return write_file("/sys/class/gpio/export", std::to_string(c.number(line)));
}
inline int sysfs_unexport(const Chip& c, int line) {
  return write_file("/sys/class/gpio/unexport", std::to_string(c.number(line)));
}

/// The kernel's view of a line (GPIO_V2_GET_LINEINFO_IOCTL).
inline gpio_v2_line_info line_info(const Chip& c, int line) {
  gpio_v2_line_info info{};
  info.offset = static_cast<unsigned>(line);
  evw_test::Fd fd(::open(c.device.c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(fd.get() >= 0);
  REQUIRE(::ioctl(fd.get(), GPIO_V2_GET_LINEINFO_IOCTL, &info) == 0);
  return info;
}

/// The chip as the guest made it: nothing exported, every line pulled down. Done when a
/// test case starts and again when it ends, so a failed case cannot spill into the next.
class Reset {
 public:
  explicit Reset(const Chip& c) : chip_(c) { reset(); }
  ~Reset() { reset(); }
  Reset(const Reset&) = delete;
  Reset& operator=(const Reset&) = delete;

 private:
  void reset() {
    for (int line = 0; line < chip_.lines; ++line) {
      if (exists(chip_.gpio_dir(line))) sysfs_unexport(chip_, line);
      write_file(chip_.sim + "/sim_gpio" + std::to_string(line) + "/pull", "pull-down");
    }
  }
  const Chip& chip_;
};

/// Runs the loop until pred() holds or `timeout` seconds pass (under TCG a guest is
/// 10-50x slower than the host: timeouts are generous, waits for silence short).
template <class Pred>
bool run_until(evw::Loop& loop, Pred pred, double timeout = 5.0) {
  bool expired = false;
  evw::Timer guard(loop, timeout, 0.0, [&](evw::Timer&, int) { expired = true; });
  guard.start();
  while (!pred() && !expired) loop.run(evw::Run::Once);
  return pred();
}

/// Runs the loop for `seconds`, so that an event that should not come has its chance.
/// @return loop iterations meanwhile (a watcher that spins shows as hundreds).
inline unsigned settle(evw::Loop& loop, double seconds = 0.1) {
  bool done = false;
  evw::Timer t(loop, seconds, 0.0, [&](evw::Timer&, int) { done = true; });
  t.start();
  const unsigned before = loop.iteration();
  while (!done) loop.run(evw::Run::Once);
  return loop.iteration() - before;
}

inline void sleep_ms(int ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1'000'000L};
  ::nanosleep(&ts, nullptr);
}

}  // namespace kgpio

/// The guest's chip as `chip`, reset for this test case; skips the case outside the guest.
#define KERNEL_CHIP()                                              \
  std::string kgpio_why;                                           \
  const kgpio::Chip* kgpio_chip = kgpio::chip(kgpio_why);          \
  if (!kgpio_chip) EVW_SKIP(kgpio_why);                            \
  const kgpio::Chip& chip = *kgpio_chip;                           \
  kgpio::Reset kgpio_reset(chip)
