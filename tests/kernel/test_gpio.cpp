// evw::Gpio (sysfs) on the real kernel: Linux's gpio-sim chip in the QEMU guest of
// tools/kernel-gpio/run, lines driven through the simulator's `pull` attribute.
// The same behaviours tests/test_gpio.cpp checks on evw's FUSE simulator, plus what only
// the kernel can say: its errnos, its notifications, its interplay with the chardev.
#include <evw/watchers/gpio.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "kernel_gpio.hpp"

namespace {

// Counts callbacks and remembers value() and revents at each one.
struct Seen {
  int calls = 0;
  std::vector<int> values;
  int revents = 0;
  auto callback() {
    return [this](evw::Gpio& g, int rev) {
      ++calls;
      values.push_back(g.value());
      revents = rev;
    };
  }
};

evw::GpioConfig with_edge(evw::Edge edge, bool active_low = false) {
  evw::GpioConfig c;
  c.edge = edge;
  c.active_low = active_low;
  return c;
}

int errno_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    MESSAGE("threw: " << std::string(e.what()));
    return e.code().value();
  }
  return 0;
}

}  // namespace

TEST_CASE("kernel Gpio: setup exports and configures the line and reads its level; the destructor unexports") {
  KERNEL_CHIP();
  const int line = 3;
  kgpio::pull(chip, line, 1);
  {
    evw::Loop loop;
    evw::Gpio g(loop, chip.number(line), with_edge(evw::Edge::Rising), [](evw::Gpio&, int) {});
    CHECK(g.exported());
    CHECK(g.value() == 1);
    CHECK_FALSE(g.is_active());
    CHECK(kgpio::read_file(chip.gpio_dir(line) + "/direction") == "in");
    CHECK(kgpio::read_file(chip.gpio_dir(line) + "/edge") == "rising");
    CHECK(kgpio::read_file(chip.gpio_dir(line) + "/active_low") == "0");
    // The kernel's own account: the sysfs export is a consumer named "sysfs".
    const gpio_v2_line_info info = kgpio::line_info(chip, line);
    CHECK((info.flags & GPIO_V2_LINE_FLAG_USED) != 0);
    CHECK((info.flags & GPIO_V2_LINE_FLAG_INPUT) != 0);
    CHECK(std::string(info.consumer) == "sysfs");
    g.start();
    CHECK(g.is_active());
  }
  CHECK_FALSE(kgpio::exists(chip.gpio_dir(line)));
  CHECK((kgpio::line_info(chip, line).flags & GPIO_V2_LINE_FLAG_USED) == 0);
}

TEST_CASE("kernel Gpio: each edge setting delivers exactly the matching transitions, with value()") {
  KERNEL_CHIP();
  struct Case {
    evw::Edge edge;
    const char* name;
  };
  for (const Case& c : {Case{evw::Edge::Rising, "rising"}, Case{evw::Edge::Falling, "falling"},
                        Case{evw::Edge::Both, "both"}, Case{evw::Edge::None, "none"}}) {
    const std::string name = c.name;
    CAPTURE(name);
    evw::Loop loop;
    Seen seen;
    evw::Gpio g(loop, chip.number(5), with_edge(c.edge), seen.callback());
    CHECK(kgpio::read_file(chip.gpio_dir(5) + "/edge") == name);
    g.start();
    std::vector<int> want;
    for (int level : {1, 0, 1, 0}) {
      kgpio::pull(chip, 5, level);
      const bool match = c.edge == evw::Edge::Both || (c.edge == evw::Edge::Rising && level == 1) ||
                         (c.edge == evw::Edge::Falling && level == 0);
      if (match) {
        want.push_back(level);
        CHECK(kgpio::run_until(loop, [&] { return seen.calls == static_cast<int>(want.size()); }));
      } else {
        kgpio::settle(loop);
      }
    }
    kgpio::settle(loop);
    CHECK(seen.values == want);
    if (seen.calls > 0) CHECK(seen.revents == evw::Event::Pri);
  }
}

TEST_CASE("kernel Gpio: active_low inverts value() and which transitions are rising") {
  KERNEL_CHIP();
  kgpio::pull(chip, 2, 1);
  evw::Loop loop;
  Seen seen;
  evw::Gpio g(loop, chip.number(2), with_edge(evw::Edge::Rising, true), seen.callback());
  CHECK(kgpio::read_file(chip.gpio_dir(2) + "/active_low") == "1");
  CHECK(g.value() == 0);  // pulled up, read inverted
  g.start();
  kgpio::pull(chip, 2, 0);  // physical falling = logical rising
  CHECK(kgpio::run_until(loop, [&] { return seen.calls == 1; }));
  CHECK(g.value() == 1);
  kgpio::pull(chip, 2, 1);  // logical falling: not selected
  kgpio::settle(loop);
  CHECK(seen.calls == 1);
  CHECK(g.value() == 1);  // not re-read without an event
}

TEST_CASE("kernel Gpio: nothing without an edge, no event for a pull to the same level, no spinning") {
  KERNEL_CHIP();
  evw::Loop loop;
  Seen seen;
  evw::Gpio g(loop, chip.number(0), with_edge(evw::Edge::Both), seen.callback());
  g.start();
  // A sysfs value file reports a condition until its first read: the setup's priming
  // read must have cleared it, or the loop would call back (and spin) at once.
  const unsigned idle_iterations = kgpio::settle(loop, 0.3);
  CHECK(seen.calls == 0);
  CHECK(idle_iterations < 5);
  kgpio::pull(chip, 0, 0);  // already down
  kgpio::settle(loop, 0.2);
  CHECK(seen.calls == 0);
  kgpio::pull(chip, 0, 1);
  CHECK(kgpio::run_until(loop, [&] { return seen.calls == 1; }));
  // Level-triggered in the kernel until read: the watcher's lseek+read cleared it.
  CHECK(kgpio::settle(loop, 0.3) < 5);
  CHECK(seen.calls == 1);
}

TEST_CASE("kernel Gpio: an edge while stopped stays latched and comes once after start()") {
  KERNEL_CHIP();
  evw::Loop loop;
  Seen seen;
  evw::Gpio g(loop, chip.number(4), with_edge(evw::Edge::Both), seen.callback());
  g.start();
  g.stop();
  kgpio::pull(chip, 4, 1);
  kgpio::settle(loop);
  CHECK(seen.calls == 0);
  g.start();
  CHECK(kgpio::run_until(loop, [&] { return seen.calls == 1; }));
  CHECK(g.value() == 1);
  kgpio::settle(loop);
  CHECK(seen.calls == 1);
}

TEST_CASE("kernel Gpio: set() while active changes edge and active_low in place; an edge not yet seen survives it") {
  KERNEL_CHIP();
  evw::Loop loop;
  Seen seen;
  evw::Gpio g(loop, chip.number(6), with_edge(evw::Edge::Rising), seen.callback());
  g.start();

  g.set(with_edge(evw::Edge::Falling));
  CHECK(g.is_active());
  CHECK(kgpio::read_file(chip.gpio_dir(6) + "/edge") == "falling");
  kgpio::pull(chip, 6, 1);  // rising: no longer selected
  kgpio::settle(loop);
  CHECK(seen.calls == 0);
  kgpio::pull(chip, 6, 0);
  CHECK(kgpio::run_until(loop, [&] { return seen.calls == 1; }));

  // active_low flips the level at once (set() re-reads it when no edge is waiting).
  g.set(with_edge(evw::Edge::Both, true));
  CHECK(g.value() == 1);
  CHECK(kgpio::read_file(chip.gpio_dir(6) + "/active_low") == "1");

  // An edge the loop has not seen yet, then set(): the kernel keeps it latched in the
  // value file while edge is rewritten, and it is delivered once, after the change.
  kgpio::pull(chip, 6, 1);
  g.set(with_edge(evw::Edge::Rising, true));
  CHECK(kgpio::run_until(loop, [&] { return seen.calls == 2; }));
  CHECK(seen.values.back() == 0);
  kgpio::settle(loop);
  CHECK(seen.calls == 2);
  CHECK(g.exported());
}

TEST_CASE("kernel Gpio: set() to another line while active moves the export") {
  KERNEL_CHIP();
  evw::Loop loop;
  Seen seen;
  evw::Gpio g(loop, chip.number(7), with_edge(evw::Edge::Both), seen.callback());
  g.start();
  g.set(chip.number(8), with_edge(evw::Edge::Both));
  CHECK(g.is_active());
  CHECK(g.line() == chip.number(8));
  CHECK_FALSE(kgpio::exists(chip.gpio_dir(7)));  // this watcher had exported it
  CHECK(kgpio::exists(chip.gpio_dir(8)));
  kgpio::pull(chip, 7, 1);
  kgpio::settle(loop);
  CHECK(seen.calls == 0);
  kgpio::pull(chip, 8, 1);
  CHECK(kgpio::run_until(loop, [&] { return seen.calls == 1; }));
  CHECK(g.value() == 1);

  // A line that cannot be had (held through the chardev): set() throws EBUSY and the
  // watcher keeps its old line, still working.
  evw::GpioLine holder(loop, chip.device, 9, [](evw::GpioLine&, int) {});
  CHECK(errno_of([&] { g.set(chip.number(9), with_edge(evw::Edge::Both)); }) == EBUSY);
  CHECK(g.line() == chip.number(8));
  CHECK(g.is_active());
  kgpio::pull(chip, 8, 0);
  CHECK(kgpio::run_until(loop, [&] { return seen.calls == 2; }));
}

TEST_CASE("kernel Gpio: destroyed inside its own callback: line unexported, nothing left active") {
  KERNEL_CHIP();
  evw::Loop loop;
  int calls = 0;
  std::unique_ptr<evw::Gpio> g;
  g = std::make_unique<evw::Gpio>(loop, chip.number(10), with_edge(evw::Edge::Both), [&](evw::Gpio&, int) {
    ++calls;
    g.reset();
  });
  g->start();
  kgpio::pull(chip, 10, 1);
  CHECK(kgpio::run_until(loop, [&] { return calls == 1; }));
  CHECK_FALSE(g);
  CHECK_FALSE(kgpio::exists(chip.gpio_dir(10)));
  kgpio::pull(chip, 10, 0);
  CHECK_FALSE(loop.run(evw::Run::NoWait));  // no active watcher left
  CHECK(calls == 1);
}

TEST_CASE("kernel Gpio: a line exported by someone else is used as it is and left exported") {
  KERNEL_CHIP();
  REQUIRE(kgpio::sysfs_export(chip, 11) == 0);
  REQUIRE(kgpio::write_file(chip.gpio_dir(11) + "/edge", "falling") == 0);
  {
    evw::Loop loop;
    Seen seen;
    evw::Gpio g(loop, chip.number(11), with_edge(evw::Edge::Rising), seen.callback());
    CHECK_FALSE(g.exported());
    CHECK(kgpio::read_file(chip.gpio_dir(11) + "/edge") == "rising");  // configured as asked
    g.start();
    kgpio::pull(chip, 11, 1);
    CHECK(kgpio::run_until(loop, [&] { return seen.calls == 1; }));
  }
  CHECK(kgpio::exists(chip.gpio_dir(11)));
  // The kernel's own rules around it, which evw relies on: exporting twice is EBUSY,
  // unexporting twice EINVAL.
  CHECK(kgpio::sysfs_export(chip, 11) == -EBUSY);
  CHECK(kgpio::sysfs_unexport(chip, 11) == 0);
  CHECK(kgpio::sysfs_unexport(chip, 11) == -EINVAL);
}

TEST_CASE("kernel Gpio: sysfs and the character device exclude each other (EBUSY both ways)") {
  KERNEL_CHIP();
  evw::Loop loop;
  {
    evw::GpioLine held(loop, chip.device, 12, [](evw::GpioLine&, int) {});
    CHECK(errno_of([&] { evw::Gpio g(loop, chip.number(12), [](evw::Gpio&, int) {}); }) == EBUSY);
    CHECK_FALSE(kgpio::exists(chip.gpio_dir(12)));
  }
  {
    evw::Gpio g(loop, chip.number(12), [](evw::Gpio&, int) {});
    CHECK(errno_of([&] { evw::GpioLine l(loop, chip.device, 12, [](evw::GpioLine&, int) {}); }) == EBUSY);
  }
  // Both released: the character device can have the line again.
  evw::GpioLine again(loop, chip.device, 12, [](evw::GpioLine&, int) {});
  CHECK(again.fd() >= 0);
}

TEST_CASE("kernel Gpio: errors are the kernel's errnos, naming the file") {
  KERNEL_CHIP();
  evw::Loop loop;
  // A number no chip has: the kernel's export says EINVAL.
  int unused = chip.base > 0 ? chip.base - 1 : chip.number(chip.lines);
  try {
    evw::Gpio g(loop, unused, [](evw::Gpio&, int) {});
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == EINVAL);
    CHECK(std::string(e.what()).find("/sys/class/gpio/export") != std::string::npos);
  }
  evw::GpioConfig nowhere;
  nowhere.sysfs_root = "/sys/class/no-such-gpio";
  CHECK(errno_of([&] { evw::Gpio g(loop, chip.number(0), nowhere, [](evw::Gpio&, int) {}); }) == ENOENT);
  CHECK_FALSE(kgpio::exists(chip.gpio_dir(0)));
}

TEST_CASE("kernel Gpio: a burst of edges while the loop is busy is one callback with the last level") {
  KERNEL_CHIP();
  evw::Loop loop;
  Seen seen;
  evw::Gpio g(loop, chip.number(13), with_edge(evw::Edge::Both), seen.callback());
  g.start();
  for (int i = 0; i < 51; ++i) kgpio::pull(chip, 13, (i + 1) % 2);  // ends high
  CHECK(kgpio::run_until(loop, [&] { return seen.calls >= 1; }));
  kgpio::settle(loop, 0.2);
  // sysfs says that an edge happened, not how many: they coalesce.
  CHECK(seen.calls == 1);
  CHECK(g.value() == 1);
  MESSAGE("51 edges while the loop was busy: " << seen.calls << " callback(s)");
}

TEST_CASE("kernel Gpio: software debounce swallows kernel edges inside the window") {
  KERNEL_CHIP();
  evw::Loop loop;
  Seen seen;
  evw::GpioConfig config = with_edge(evw::Edge::Both);
  config.debounce = 10.0;  // far longer than the test: every edge after the first is inside
  evw::Gpio g(loop, chip.number(14), config, seen.callback());
  g.start();
  kgpio::pull(chip, 14, 1);
  CHECK(kgpio::run_until(loop, [&] { return seen.calls == 1; }));
  kgpio::pull(chip, 14, 0);
  CHECK(kgpio::run_until(loop, [&] { return g.debounced() == 1; }));
  CHECK(g.value() == 0);  // swallowed, but read
  kgpio::pull(chip, 14, 1);
  CHECK(kgpio::run_until(loop, [&] { return g.debounced() == 2; }));
  CHECK(seen.calls == 1);
  CHECK(g.value() == 1);
}

TEST_CASE("kernel Gpio: the line unexported behind the watcher's back") {
  KERNEL_CHIP();
  evw::Loop loop;
  Seen seen;
  auto g = std::make_unique<evw::Gpio>(loop, chip.number(15), with_edge(evw::Edge::Both), seen.callback());
  g->start();
  REQUIRE(kgpio::sysfs_unexport(chip, 15) == 0);
  // The kernel removes gpioN/value without waking its pollers (kernfs drains open files
  // only of attributes with mmap or release), and the open value fd goes quiet for good:
  // no callback, no Event::Error, not even after an edge on the line. The "next event"
  // that gpio.hpp counts on to report the loss never comes.
  kgpio::settle(loop, 0.2);
  CHECK(seen.calls == 0);
  kgpio::pull(chip, 15, 1);
  kgpio::settle(loop, 0.2);
  CHECK(seen.calls == 0);
  CHECK(g->is_active());
  CHECK_FALSE(g->error());
  // Reconfiguring in place writes to the gone directory: the kernel's ENOENT.
  CHECK(errno_of([&] { g->set(with_edge(evw::Edge::Rising)); }) == ENOENT);
  // A fresh registration polls the file again, and a removed kernfs file answers every
  // poll with POLLPRI|POLLERR: restarting the watcher is what surfaces the loss.
  g->stop();
  g->start();
  CHECK(kgpio::run_until(loop, [&] { return seen.calls == 1; }));
  CHECK(seen.revents == evw::Event::Error);
  CHECK(g->error() == std::errc::no_such_device);
  CHECK_FALSE(g->is_active());
  g.reset();  // its unexport of a line no longer exported fails quietly
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("kernel Gpio: a watcher per line on 16 lines at once, each sees only its own edges") {
  KERNEL_CHIP();
  const int n = std::min(16, chip.lines);
  evw::Loop loop;
  std::vector<Seen> seen(static_cast<std::size_t>(n));
  std::vector<std::unique_ptr<evw::Gpio>> gpios;
  for (int i = 0; i < n; ++i) {
    gpios.push_back(std::make_unique<evw::Gpio>(loop, chip.number(i), with_edge(evw::Edge::Both),
                                                seen[static_cast<std::size_t>(i)].callback()));
    gpios.back()->start();
  }
  // Raise every odd line, then every line: each watcher counts its own transitions.
  for (int i = 1; i < n; i += 2) kgpio::pull(chip, i, 1);
  auto total = [&] {
    int t = 0;
    for (const Seen& s : seen) t += s.calls;
    return t;
  };
  CHECK(kgpio::run_until(loop, [&] { return total() == n / 2; }));
  for (int i = 0; i < n; ++i) kgpio::pull(chip, i, 1);
  CHECK(kgpio::run_until(loop, [&] { return total() == n; }));
  kgpio::settle(loop);
  for (int i = 0; i < n; ++i) {
    CAPTURE(i);
    CHECK(seen[static_cast<std::size_t>(i)].calls == 1);
    CHECK(gpios[static_cast<std::size_t>(i)]->value() == 1);
  }
  gpios.clear();
  for (int i = 0; i < n; ++i) CHECK_FALSE(kgpio::exists(chip.gpio_dir(i)));
}
