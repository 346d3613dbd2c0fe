// Gpio (sysfs): setup, edges, value(), debounce, errors, and the per-watcher
// musts, all against gpio-sim (a FUSE /sys/class/gpio) driven from this thread.
#include <evw/watchers/gpio.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "../core/sys.hpp"
#include "../tools/gpio-sim/gpio_sim.hpp"
#include "support.hpp"

using namespace std::chrono_literals;

#define REQUIRE_GPIO_SIM()                                                            \
  if (auto why = evw::sim::GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why); \
  auto sim_ptr = evw::sim::GpioSim::in_temp_dir();                                     \
  evw::sim::GpioSim& sim = *sim_ptr

namespace {

// Runs the loop until pred() holds or `timeout` seconds pass; a missing event
// fails the check instead of hanging the suite.
template <class Pred>
bool run_until(evw::Loop& loop, Pred pred, double timeout = 2.0) {
  bool expired = false;
  evw::Timer guard(loop, timeout, 0.0, [&](evw::Timer&, int) { expired = true; });
  guard.start();
  while (!pred() && !expired) loop.run(evw::Run::Once);
  return pred();
}

// Runs the loop for `seconds`, so that an event that should not come has its chance.
unsigned settle(evw::Loop& loop, double seconds = 0.03) {
  bool done = false;
  evw::Timer t(loop, seconds, 0.0, [&](evw::Timer&, int) { done = true; });
  t.start();
  const unsigned before = loop.iteration();
  while (!done) loop.run(evw::Run::Once);
  return loop.iteration() - before;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  return text;
}

void write_text(const std::string& path, const std::string& text) {
  evw_test::Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  REQUIRE(fd.get() >= 0);
  REQUIRE(::write(fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
}

std::string gpio_dir(const evw::sim::GpioSim& sim, int line) {
  return sim.root() + "/gpio" + std::to_string(line);
}

evw::GpioConfig config_for(const evw::sim::GpioSim& sim, evw::Edge edge, bool active_low = false) {
  evw::GpioConfig c;
  c.sysfs_root = sim.root();
  c.edge = edge;
  c.active_low = active_low;
  return c;
}

// True once the kernel has latched an edge on fd that nobody has read yet.
bool edge_latched(int fd) {
  pollfd p{fd, POLLPRI, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLPRI) != 0;
}

// Waits (bounded) until gpio-sim's notification has reached fd.
bool wait_latched(int fd) {
  for (int i = 0; i < 2000 && !edge_latched(fd); ++i) ::usleep(1000);
  return edge_latched(fd);
}

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

}  // namespace

TEST_CASE("Gpio: setup exports and configures the line, reads its level; the destructor unexports") {
  REQUIRE_GPIO_SIM();
  sim.set_input(3, 1);
  const int fds_before = evw_test::open_fd_count();
  {
    evw::Loop loop;
    evw::Gpio g(loop, 3, evw::GpioConfig{.sysfs_root = sim.root(), .edge = evw::Edge::Rising},
                [](evw::Gpio&, int) {});
    CHECK(g.line() == 3);
    CHECK(g.exported());
    CHECK(g.value() == 1);
    CHECK(g.fd() >= 0);
    CHECK(g.config().edge == evw::Edge::Rising);
    CHECK(g.config().sysfs_root == sim.root());
    CHECK_FALSE(g.is_active());  // constructed stopped, like every watcher
    CHECK(slurp(gpio_dir(sim, 3) + "/direction") == "in");
    CHECK(slurp(gpio_dir(sim, 3) + "/edge") == "rising");
    CHECK(slurp(gpio_dir(sim, 3) + "/active_low") == "0");
    g.start();
    CHECK(g.is_active());
  }
  CHECK_FALSE(exists(gpio_dir(sim, 3)));
  CHECK(evw_test::open_fd_count() == fds_before);  // value fd and the loop's queue closed
}

TEST_CASE("Gpio: each edge setting delivers exactly the matching transitions, with value()") {
  REQUIRE_GPIO_SIM();
  struct Case {
    evw::Edge edge;
    const char* name;
    int expected;  // callbacks for 0->1->0->1
  };
  for (const Case& c : {Case{evw::Edge::Rising, "rising", 2}, Case{evw::Edge::Falling, "falling", 1},
                        Case{evw::Edge::Both, "both", 3}, Case{evw::Edge::None, "none", 0}}) {
    const std::string name = c.name;
    CAPTURE(name);
    sim.set_input(5, 0);
    evw::Loop loop;
    Seen seen;
    evw::Gpio g(loop, 5, config_for(sim, c.edge), seen.callback());
    g.start();
    std::vector<int> want_values;
    for (int level : {1, 0, 1}) {
      sim.set_input(5, level);
      const bool match = c.edge == evw::Edge::Both || (c.edge == evw::Edge::Rising && level == 1) ||
                         (c.edge == evw::Edge::Falling && level == 0);
      if (match) {
        want_values.push_back(level);
        CHECK(run_until(loop, [&] { return seen.calls == static_cast<int>(want_values.size()); }));
      } else {
        settle(loop);
      }
      CHECK(seen.calls == static_cast<int>(want_values.size()));
    }
    settle(loop);
    CHECK(seen.calls == c.expected);
    CHECK(seen.values == want_values);
    if (seen.calls > 0) CHECK(seen.revents == evw::Event::Pri);
    // value() is read at setup and at each delivered edge, not at the others.
    CHECK(g.value() == (want_values.empty() ? 0 : want_values.back()));
  }
}

TEST_CASE("Gpio: active_low inverts value() and the sense of rising and falling") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  sim.set_input(7, 0);
  Seen seen;
  evw::Gpio g(loop, 7, config_for(sim, evw::Edge::Rising, true), seen.callback());
  CHECK(g.value() == 1);  // pin low = logically active
  CHECK(slurp(gpio_dir(sim, 7) + "/active_low") == "1");
  g.start();
  sim.set_input(7, 1);  // logical 1 -> 0: falling, not watched
  settle(loop);
  CHECK(seen.calls == 0);
  sim.set_input(7, 0);  // logical 0 -> 1: rising
  CHECK(run_until(loop, [&] { return seen.calls == 1; }));
  CHECK(seen.values == std::vector<int>{1});
}

TEST_CASE("Gpio: no spurious event at start, whatever the level") {
  REQUIRE_GPIO_SIM();
  for (int level : {0, 1}) {
    CAPTURE(level);
    sim.set_input(9, level);
    evw::Loop loop;
    Seen seen;
    evw::Gpio g(loop, 9, config_for(sim, evw::Edge::Both), seen.callback());
    g.start();
    settle(loop, 0.05);
    CHECK(seen.calls == 0);
    CHECK(g.value() == level);
  }
}

namespace {

// Through evw's system-call seam: the first read of `fd` after arming drives
// the next edge right after it returned, before the watcher could read again.
struct EdgeAfterRead {
  static inline evw::sim::GpioSim* sim = nullptr;
  static inline int fd = -1;
  static inline int level = 0;
  static inline evw::detail::sys::Table saved{};
  static ssize_t read(int f, void* buf, std::size_t n) {
    const ssize_t r = saved.read(f, buf, n);
    if (f == fd && r > 0 && sim != nullptr) std::exchange(sim, nullptr)->set_input(9, level);
    return r;
  }
};

}  // namespace

// gpiolib's `value` is a preallocated sysfs attribute: every read, also one
// at EOF that returns nothing, marks the latest edge seen. The watcher reads
// once per edge (AttrFile::End::ShortRead): a second read at EOF would take
// an edge that came between the two without showing its level, and the
// watcher would stay silent with value() stale.
TEST_CASE("Gpio: an edge right after the read of the previous one is delivered, with its level") {
  REQUIRE_GPIO_SIM();
  sim.set_input(9, 0);
  evw::Loop loop;
  Seen seen;
  evw::Gpio g(loop, 9, config_for(sim, evw::Edge::Both), seen.callback());
  g.start();
  EdgeAfterRead::saved = evw::detail::sys::table;
  EdgeAfterRead::fd = g.fd();
  EdgeAfterRead::level = 0;
  evw::detail::sys::table.read = EdgeAfterRead::read;
  EdgeAfterRead::sim = &sim;  // armed: the read of the first edge drives the second
  sim.set_input(9, 1);
  const bool both = run_until(loop, [&] { return seen.calls == 2; });
  evw::detail::sys::table = EdgeAfterRead::saved;
  CHECK(EdgeAfterRead::sim == nullptr);  // the hook ran
  CHECK(both);
  CHECK(seen.values == std::vector<int>{1, 0});
  CHECK(g.value() == 0);
  g.stop();
}

TEST_CASE("Gpio: 1,000 toggles give exactly 1,000 callbacks and the loop does not spin") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  sim.set_input(11, 0);
  Seen seen;
  evw::Gpio g(loop, 11, config_for(sim, evw::Edge::Both), seen.callback());
  g.start();
  bool exact = true;
  for (int i = 0; i < 1000 && exact; ++i) {
    const int level = i % 2 == 0 ? 1 : 0;
    sim.set_input(11, level);
    exact = run_until(loop, [&] { return seen.calls >= i + 1; }) && seen.calls == i + 1 &&
            seen.values.back() == level;
  }
  CHECK(exact);
  const unsigned iterations = settle(loop, 0.05);
  CHECK(seen.calls == 1000);
  CHECK(iterations < 5);  // a condition left uncleared would make it spin
}

TEST_CASE("Gpio: two lines and an Io in one loop stay independent") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  Seen one, two;
  int io_calls = 0;
  evw::Gpio g1(loop, 1, config_for(sim, evw::Edge::Both), one.callback());
  evw::Gpio g2(loop, 2, config_for(sim, evw::Edge::Both), two.callback());
  evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    char c;
    while (::read(w.fd(), &c, 1) == 1) {}
    ++io_calls;
  });
  g1.start(); g2.start(); io.start();
  sim.set_input(1, 1);
  CHECK(run_until(loop, [&] { return one.calls == 1; }));
  settle(loop);
  CHECK((one.calls == 1 && two.calls == 0 && io_calls == 0));
  REQUIRE(::write(b.get(), "x", 1) == 1);
  CHECK(run_until(loop, [&] { return io_calls == 1; }));
  settle(loop);
  CHECK((one.calls == 1 && two.calls == 0 && io_calls == 1));
  sim.set_input(2, 1);
  CHECK(run_until(loop, [&] { return two.calls == 1; }));
  settle(loop);
  CHECK((one.calls == 1 && two.calls == 1 && io_calls == 1));
  CHECK(g1.value() == 1);
  CHECK(g2.value() == 1);
  // Both lines and the socket at once: one call each.
  sim.set_input(1, 0);
  sim.set_input(2, 0);
  REQUIRE(::write(b.get(), "y", 1) == 1);
  CHECK(run_until(loop, [&] { return one.calls == 2 && two.calls == 2 && io_calls == 2; }));
  settle(loop);
  CHECK((one.calls == 2 && two.calls == 2 && io_calls == 2));
}

TEST_CASE("Gpio: bad arguments throw std::invalid_argument") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  auto cb = [](evw::Gpio&, int) {};
  CHECK_THROWS_AS(evw::Gpio(loop, -1, config_for(sim, evw::Edge::Both), cb), std::invalid_argument);
  auto negative = config_for(sim, evw::Edge::Both);
  negative.debounce = -0.1;
  CHECK_THROWS_AS(evw::Gpio(loop, 1, negative, cb), std::invalid_argument);
  auto odd_edge = config_for(sim, static_cast<evw::Edge>(9));
  CHECK_THROWS_AS(evw::Gpio(loop, 1, odd_edge, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Gpio(loop, 1, evw::GpioConfig{.sysfs_root = ""}, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Gpio(loop, 1, config_for(sim, evw::Edge::Both), nullptr), std::invalid_argument);
  CHECK(loop.watcher_count() == 0);
  CHECK_FALSE(exists(gpio_dir(sim, 1)));  // nothing was exported before the checks
}

TEST_CASE("Gpio: kernel errors are std::system_error naming the line and the file; the loop goes on") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  auto cb = [](evw::Gpio&, int) {};
  const int fds_before = evw_test::open_fd_count();

  // A line no chip has: the kernel's export says EINVAL.
  try {
    evw::Gpio g(loop, 1000, config_for(sim, evw::Edge::Both), cb);
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == EINVAL);
    CHECK(std::string(e.what()).find("evw::Gpio: line 1000: write " + sim.root() + "/export") == 0);
  }
  // A sysfs root that is not there.
  try {
    evw::Gpio g(loop, 4, evw::GpioConfig{.sysfs_root = "/nonexistent/evw-gpio"}, cb);
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == ENOENT);
    CHECK(std::string(e.what()).find("/nonexistent/evw-gpio/export") != std::string::npos);
  }
  // A directory that is not a GPIO tree at all (export is missing).
  try {
    evw::Gpio g(loop, 4, evw::GpioConfig{.sysfs_root = "/proc/self"}, cb);
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(std::string(e.what()).find("/proc/self/export") != std::string::npos);
  }
  CHECK(loop.watcher_count() == 0);
  CHECK(evw_test::open_fd_count() == fds_before);

  Seen seen;
  evw::Gpio g(loop, 4, config_for(sim, evw::Edge::Rising), seen.callback());
  g.start();
  sim.set_input(4, 1);
  CHECK(run_until(loop, [&] { return seen.calls == 1; }));
}

TEST_CASE("Gpio: a line exported by someone else (EBUSY) is used and left exported") {
  REQUIRE_GPIO_SIM();
  write_text(sim.root() + "/export", "12");
  {
    evw::Loop loop;
    Seen seen;
    evw::Gpio g(loop, 12, config_for(sim, evw::Edge::Falling), seen.callback());
    CHECK_FALSE(g.exported());
    CHECK(slurp(gpio_dir(sim, 12) + "/edge") == "falling");
    g.start();
    sim.set_input(12, 1);
    settle(loop);
    sim.set_input(12, 0);
    CHECK(run_until(loop, [&] { return seen.calls == 1; }));
    CHECK(seen.values == std::vector<int>{0});
  }
  CHECK(exists(gpio_dir(sim, 12)));  // not ours to unexport
  write_text(sim.root() + "/unexport", "12");
}

TEST_CASE("Gpio: when the line is unexported underneath, it goes silent; restarted, it stops with Event::Error (ENODEV)") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  Seen seen;
  evw::Gpio user(loop, 13, config_for(sim, evw::Edge::Both), seen.callback());
  CHECK(user.exported());
  user.start();
  write_text(sim.root() + "/unexport", "13");  // another process, behind evw's back
  // As on the kernel (tests/kernel/): removing gpioN wakes no poller, so
  // nothing comes, not even for an edge...
  sim.set_input(13, 1);
  settle(loop);
  CHECK(seen.calls == 0);
  CHECK(user.is_active());
  // ...until the file is polled afresh: a restart registers it again, and its read fails.
  user.stop();
  user.start();
  CHECK(run_until(loop, [&] { return seen.calls == 1; }));
  CHECK(seen.revents == evw::Event::Error);
  CHECK(user.error() == std::errc::no_such_device);
  CHECK_FALSE(user.is_active());
  settle(loop);
  CHECK(seen.calls == 1);  // stopped: the gone file does not make it spin
  CHECK_FALSE(user.exported());  // the line evw exported is gone: a new export is not evw's
}

TEST_CASE("Gpio: start/stop; an edge while stopped is latched and reported once by start()") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  Seen seen;
  evw::Gpio g(loop, 6, config_for(sim, evw::Edge::Both), seen.callback());
  g.start();
  g.start();  // a second start does nothing
  sim.set_input(6, 1);
  CHECK(run_until(loop, [&] { return seen.calls == 1; }));
  g.stop();
  CHECK_FALSE(g.is_active());
  sim.set_input(6, 0);
  sim.set_input(6, 1);
  settle(loop);
  CHECK(seen.calls == 1);
  CHECK_FALSE(loop.run(evw::Run::NoWait));  // nothing active: run() returns
  g.start();
  CHECK(run_until(loop, [&] { return seen.calls == 2; }));
  settle(loop);
  CHECK(seen.calls == 2);
  CHECK(seen.values.back() == 1);

  // Stop inside the callback.
  evw::Gpio h(loop, 8, config_for(sim, evw::Edge::Both), [&](evw::Gpio& w, int) {
    ++seen.calls;
    w.stop();
  });
  h.start();
  sim.set_input(8, 1);
  CHECK(run_until(loop, [&] { return seen.calls == 3; }));
  CHECK_FALSE(h.is_active());
  g.stop();
}

TEST_CASE("Gpio: set() while active moves to another line or changes the configuration") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  Seen seen;
  evw::Gpio g(loop, 20, config_for(sim, evw::Edge::Rising), seen.callback());
  g.start();
  sim.set_input(21, 1);
  g.set(21, config_for(sim, evw::Edge::Falling));
  CHECK(g.is_active());
  CHECK(g.line() == 21);
  CHECK(g.value() == 1);
  CHECK_FALSE(exists(gpio_dir(sim, 20)));  // the old line was ours: unexported
  CHECK(exists(gpio_dir(sim, 21)));
  sim.set_input(20, 1);  // the old line: nothing
  settle(loop);
  CHECK(seen.calls == 0);
  sim.set_input(21, 0);
  CHECK(run_until(loop, [&] { return seen.calls == 1; }));

  // Same line, other configuration, in place.
  g.set(config_for(sim, evw::Edge::Rising, true));
  CHECK(g.is_active());
  CHECK(g.value() == 1);  // active_low: pin low reads 1
  CHECK(slurp(gpio_dir(sim, 21) + "/edge") == "rising");
  sim.set_input(21, 1);  // logical falling: nothing
  settle(loop);
  CHECK(seen.calls == 1);
  sim.set_input(21, 0);
  CHECK(run_until(loop, [&] { return seen.calls == 2; }));
  CHECK(seen.values.back() == 1);

  // A failing set() keeps the old line working.
  CHECK_THROWS_AS(g.set(5000, config_for(sim, evw::Edge::Both)), std::system_error);
  CHECK(g.line() == 21);
  CHECK(g.is_active());
  sim.set_input(21, 1);
  sim.set_input(21, 0);
  CHECK(run_until(loop, [&] { return seen.calls == 3; }));
}

TEST_CASE("Gpio: set() while pending keeps the event, delivered exactly once after") {
  REQUIRE_GPIO_SIM();
  auto [a, b] = evw_test::socket_pair();
  for (bool other_line : {false, true}) {
    CAPTURE(other_line);
    evw::Loop loop;
    sim.set_input(30, 0);
    sim.set_input(31, 1);
    Seen seen;
    evw::Gpio g(loop, 30, config_for(sim, evw::Edge::Both), seen.callback());
    bool was_pending = false;
    // The Io runs first (priority 1 > 0) and reconfigures g while g's event waits.
    evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
      char c;
      while (::read(w.fd(), &c, 1) == 1) {}
      was_pending = g.is_pending();
      if (other_line) g.set(31, config_for(sim, evw::Edge::Both));
      else g.set(config_for(sim, evw::Edge::Falling));
      w.stop();
    });
    io.set_priority(1);
    g.start();
    io.start();
    sim.set_input(30, 1);
    REQUIRE(::write(b.get(), "x", 1) == 1);
    CHECK(run_until(loop, [&] { return seen.calls >= 1; }));
    settle(loop);
    CHECK(was_pending);
    CHECK(seen.calls == 1);
    CHECK(seen.values == std::vector<int>{1});
    CHECK(g.is_active());
  }
}

TEST_CASE("Gpio: priorities order it against an Io in the same iteration") {
  REQUIRE_GPIO_SIM();
  auto [a, b] = evw_test::socket_pair();
  for (int gpio_pri : {2, -1}) {
    CAPTURE(gpio_pri);
    evw::Loop loop;
    sim.set_input(40, 0);
    std::vector<char> order;
    evw::Gpio g(loop, 40, config_for(sim, evw::Edge::Both), [&](evw::Gpio&, int) { order.push_back('g'); });
    evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
      char c;
      while (::read(w.fd(), &c, 1) == 1) {}
      order.push_back('i');
    });
    g.set_priority(gpio_pri);
    io.set_priority(1);
    CHECK(g.priority() == gpio_pri);
    g.start();
    io.start();
    sim.set_input(40, 1);
    REQUIRE(::write(b.get(), "x", 1) == 1);
    CHECK(run_until(loop, [&] { return order.size() >= 2; }));
    CHECK(order == (gpio_pri == 2 ? std::vector<char>{'g', 'i'} : std::vector<char>{'i', 'g'}));
  }
}

TEST_CASE("Gpio: user data, and loop-owned Gpio watchers") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  int seen_data = 0;
  auto& g = loop.add<evw::Gpio>(14, config_for(sim, evw::Edge::Rising),
                                [&](evw::Gpio& w, int) { seen_data = std::any_cast<int>(w.data()); });
  g.data() = 42;
  g.start();
  sim.set_input(14, 1);
  CHECK(run_until(loop, [&] { return seen_data == 42; }));
  loop.remove(g);
  CHECK_FALSE(exists(gpio_dir(sim, 14)));
}

TEST_CASE("Gpio: destroying the watcher inside its own callback is safe and unexports") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  int calls = 0;
  std::unique_ptr<evw::Gpio> g;
  g = std::make_unique<evw::Gpio>(loop, 15, config_for(sim, evw::Edge::Both), [&](evw::Gpio&, int) {
    ++calls;
    g.reset();
  });
  g->start();
  sim.set_input(15, 1);
  CHECK(run_until(loop, [&] { return calls == 1; }));
  CHECK(g == nullptr);
  CHECK_FALSE(exists(gpio_dir(sim, 15)));
  sim.set_input(15, 0);
  settle(loop);
  CHECK(calls == 1);
  CHECK(loop.watcher_count() == 0);
}

TEST_CASE("Gpio: destroying the loop while active detaches it; its destructor still unexports") {
  REQUIRE_GPIO_SIM();
  const int fds_before = evw_test::open_fd_count();
  {
    auto loop = std::make_unique<evw::Loop>();
    evw::Gpio g(*loop, 16, config_for(sim, evw::Edge::Both), [](evw::Gpio&, int) {});
    g.start();
    sim.set_input(16, 1);
    loop->run(evw::Run::NoWait);
    loop.reset();
    CHECK_FALSE(g.is_attached());
    CHECK_FALSE(g.is_active());
    CHECK_THROWS_AS(g.start(), std::logic_error);
    CHECK(exists(gpio_dir(sim, 16)));
    g.set(config_for(sim, evw::Edge::Rising));  // configuration still works
    CHECK(slurp(gpio_dir(sim, 16) + "/edge") == "rising");
  }
  CHECK_FALSE(exists(gpio_dir(sim, 16)));
  CHECK(evw_test::open_fd_count() == fds_before);
}

TEST_CASE("Gpio: debounce swallows edges within the window; value() follows the level") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  sim.set_input(17, 0);
  auto config = config_for(sim, evw::Edge::Both);
  config.debounce = 500ms;  // wide: a slow machine must still bounce inside it
  Seen seen;
  evw::Gpio g(loop, 17, config, seen.callback());
  CHECK(g.config().debounce == doctest::Approx(0.5));
  g.start();
  sim.set_input(17, 1);
  CHECK(run_until(loop, [&] { return seen.calls == 1; }));
  sim.set_input(17, 0);  // a bounce: read, but swallowed
  CHECK(run_until(loop, [&] { return g.debounced() == 1; }));
  CHECK(g.value() == 0);
  sim.set_input(17, 1);
  CHECK(run_until(loop, [&] { return g.debounced() == 2; }));
  CHECK(g.value() == 1);
  CHECK(seen.calls == 1);
  std::this_thread::sleep_for(550ms);
  sim.set_input(17, 0);  // after the window: delivered
  CHECK(run_until(loop, [&] { return seen.calls == 2; }));
  CHECK(seen.values == std::vector<int>{1, 0});
}

TEST_CASE("Gpio: an event deferred by another callback's exception is delivered once by the next run()") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  sim.set_input(18, 0);
  Seen seen;
  evw::Gpio g(loop, 18, config_for(sim, evw::Edge::Both), seen.callback());
  evw::Timer thrower(loop, 0.0, 0.0, [](evw::Timer&, int) { throw std::runtime_error("boom"); });
  thrower.set_priority(2);
  g.start();
  sim.set_input(18, 1);
  thrower.start();
  bool threw = false;
  for (int i = 0; i < 5 && !threw; ++i) {  // the throw comes in the iteration that sees the edge
    try {
      loop.run(evw::Run::Once);
    } catch (const std::runtime_error&) {
      threw = true;
    }
  }
  CHECK(threw);
  CHECK(seen.calls == 0);
  CHECK(run_until(loop, [&] { return seen.calls == 1; }));
  settle(loop);
  CHECK(seen.calls == 1);
  CHECK(seen.values == std::vector<int>{1});
}

TEST_CASE("Gpio: a loop-owned Gpio active when its loop is destroyed is destroyed with it and unexports") {
  REQUIRE_GPIO_SIM();
  const int fds_before = evw_test::open_fd_count();
  auto loop = std::make_unique<evw::Loop>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> alive = token;
  loop->add<evw::Gpio>(19, config_for(sim, evw::Edge::Both), [token](evw::Gpio&, int) {}).start();
  CHECK(exists(gpio_dir(sim, 19)));
  sim.set_input(19, 1);  // an edge waiting
  token.reset();
  REQUIRE_FALSE(alive.expired());  // held by the watcher's callback
  loop.reset();
  CHECK(alive.expired());
  CHECK_FALSE(exists(gpio_dir(sim, 19)));  // it had exported the line: unexported
  CHECK(evw_test::open_fd_count() == fds_before);
}

// ---- lines shared in one process, and read_value() (issue 12 item 5) -------

TEST_CASE("Gpio: two watchers on one line; the exporter destroyed first leaves it to the other, the last unexports") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  sim.set_input(22, 0);
  {
    auto first = std::make_unique<evw::Gpio>(loop, 22, config_for(sim, evw::Edge::Both), [](evw::Gpio&, int) {});
    // The same root spelled otherwise is the same line.
    auto other_spelling = config_for(sim, evw::Edge::Both);
    other_spelling.sysfs_root = sim.root() + "//./";
    Seen seen;
    evw::Gpio second(loop, 22, other_spelling, seen.callback());
    CHECK(second.config().sysfs_root == sim.root());
    CHECK(first->exported());
    CHECK(second.exported());  // evw exported it: the last of the two unexports it
    second.start();
    first.reset();
    CHECK(exists(gpio_dir(sim, 22)));
    int expected = 0;
    for (int level : {1, 0, 1}) {
      sim.set_input(22, level);
      ++expected;
      CHECK(run_until(loop, [&] { return seen.calls == expected; }));
      CHECK(seen.values.back() == level);
    }
    CHECK(seen.calls == 3);
    CHECK(seen.revents == evw::Event::Pri);
    CHECK(second.is_active());
    CHECK(second.error() == std::error_code());
    CHECK(exists(gpio_dir(sim, 22)));
  }
  CHECK_FALSE(exists(gpio_dir(sim, 22)));  // the last one went
}

TEST_CASE("Gpio: one line shared by watchers of two loops on two threads") {
  REQUIRE_GPIO_SIM();
  for (bool exporter_in_thread : {false, true}) {
    CAPTURE(exporter_in_thread);
    const int line = exporter_in_thread ? 33 : 32;
    sim.set_input(static_cast<unsigned>(line), 0);
    evw::Loop loop;
    std::unique_ptr<evw::Gpio> here;
    Seen seen;  // of `here`
    if (!exporter_in_thread) here = std::make_unique<evw::Gpio>(loop, line, config_for(sim, evw::Edge::Both), seen.callback());
    std::atomic<int> there_calls{0}, there_level{-1};
    std::atomic<bool> ready{false}, stop_there{false}, there_exported{false};
    std::atomic<bool> there_failed{false};
    std::thread thread([&] {
      try {
        evw::Loop there_loop;
        evw::Gpio there(there_loop, line, config_for(sim, evw::Edge::Both), [&](evw::Gpio& g, int rev) {
          if (rev != evw::Event::Pri) there_failed = true;
          ++there_calls;  // before the level, which the test waits for
          there_level = g.value();
        });
        there_exported = there.exported();
        there.start();
        evw::Timer tick(there_loop, 0.005, 0.005, [](evw::Timer&, int) {});  // looks at stop_there
        tick.start();
        ready = true;
        while (!stop_there) there_loop.run(evw::Run::Once);
      } catch (...) {
        there_failed = true;
        ready = true;
      }
    });
    while (!ready) std::this_thread::sleep_for(1ms);
    REQUIRE_FALSE(there_failed.load());
    CHECK(there_exported.load());
    if (exporter_in_thread) {
      here = std::make_unique<evw::Gpio>(loop, line, config_for(sim, evw::Edge::Both), seen.callback());
      CHECK(here->exported());
      here->start();
      // The thread's watcher exported the line: it goes first.
      stop_there = true;
      thread.join();
      CHECK(exists(gpio_dir(sim, line)));
      sim.set_input(static_cast<unsigned>(line), 1);
      CHECK(run_until(loop, [&] { return seen.calls == 1; }));
      CHECK(seen.revents == evw::Event::Pri);
      CHECK(here->is_active());
      here.reset();
    } else {
      here.reset();  // the exporter goes first; the thread's watcher keeps the line
      CHECK(exists(gpio_dir(sim, line)));
      for (int level : {1, 0}) {
        sim.set_input(static_cast<unsigned>(line), level);
        for (int i = 0; i < 2000 && there_level != level; ++i) std::this_thread::sleep_for(1ms);
        CHECK(there_level.load() == level);
      }
      CHECK(there_calls.load() == 2);
      CHECK(exists(gpio_dir(sim, line)));
      stop_there = true;
      thread.join();
    }
    CHECK_FALSE(there_failed.load());
    CHECK_FALSE(exists(gpio_dir(sim, line)));  // the last one, in either loop, unexported it
  }
}

TEST_CASE("Gpio: a line exported outside evw before use is never unexported, whichever watcher goes last") {
  REQUIRE_GPIO_SIM();
  write_text(sim.root() + "/export", "34");
  {
    evw::Loop loop;
    auto a = std::make_unique<evw::Gpio>(loop, 34, config_for(sim, evw::Edge::Both), [](evw::Gpio&, int) {});
    Seen seen;
    evw::Gpio b(loop, 34, config_for(sim, evw::Edge::Both), seen.callback());
    CHECK_FALSE(a->exported());
    CHECK_FALSE(b.exported());
    b.start();
    a.reset();
    sim.set_input(34, 1);
    CHECK(run_until(loop, [&] { return seen.calls == 1; }));
  }
  CHECK(exists(gpio_dir(sim, 34)));
  write_text(sim.root() + "/unexport", "34");
}

TEST_CASE("Gpio: a line evw exported, unexported behind its back and re-exported, belongs to whoever exported it again") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  // Someone else exports it again: evw leaves it exported.
  {
    Seen seen;
    auto a = std::make_unique<evw::Gpio>(loop, 35, config_for(sim, evw::Edge::Both), seen.callback());
    CHECK(a->exported());
    a->start();
    write_text(sim.root() + "/unexport", "35");
    // As on the kernel, the removal wakes no poller: a restart polls afresh.
    a->stop();
    a->start();
    CHECK(run_until(loop, [&] { return seen.calls == 1; }));  // a reads ENODEV: the line is gone
    CHECK(seen.revents == evw::Event::Error);
    write_text(sim.root() + "/export", "35");
    evw::Gpio b(loop, 35, config_for(sim, evw::Edge::Both), [](evw::Gpio&, int) {});
    CHECK_FALSE(b.exported());
    CHECK_FALSE(a->exported());
    a.reset();
  }
  CHECK(exists(gpio_dir(sim, 35)));
  write_text(sim.root() + "/unexport", "35");
  // evw exports it again: the last watcher unexports it, the first one's stale use included.
  {
    Seen seen;
    auto a = std::make_unique<evw::Gpio>(loop, 36, config_for(sim, evw::Edge::Both), seen.callback());
    a->start();
    write_text(sim.root() + "/unexport", "36");
    a->stop();  // the removal wakes no poller: poll afresh
    a->start();
    CHECK(run_until(loop, [&] { return seen.calls == 1; }));
    evw::Gpio c(loop, 36, config_for(sim, evw::Edge::Both), [](evw::Gpio&, int) {});
    CHECK(c.exported());
    CHECK(a->exported());  // the line is evw's again, for every watcher on it
    a.reset();
    CHECK(exists(gpio_dir(sim, 36)));
  }
  CHECK_FALSE(exists(gpio_dir(sim, 36)));
}

TEST_CASE("Gpio: set() to another line releases the old one, which stays exported while others use it") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  sim.set_input(37, 0);
  Seen seen_a, seen_b;
  evw::Gpio a(loop, 37, config_for(sim, evw::Edge::Both), seen_a.callback());  // exports 37
  evw::Gpio b(loop, 37, config_for(sim, evw::Edge::Both), seen_b.callback());
  a.start();
  b.start();
  a.set(38, config_for(sim, evw::Edge::Both));
  CHECK(exists(gpio_dir(sim, 37)));  // b still uses it
  CHECK(exists(gpio_dir(sim, 38)));
  sim.set_input(37, 1);
  CHECK(run_until(loop, [&] { return seen_b.calls == 1; }));
  CHECK(b.is_active());
  // b moves to a's line: 37 has no user left and goes; 38 has two.
  b.set(38, config_for(sim, evw::Edge::Both));
  CHECK_FALSE(exists(gpio_dir(sim, 37)));
  a.set(39, config_for(sim, evw::Edge::Both));
  CHECK(exists(gpio_dir(sim, 38)));
  sim.set_input(38, 1);
  CHECK(run_until(loop, [&] { return seen_b.calls == 2; }));
  CHECK(seen_b.revents == evw::Event::Pri);
  CHECK(seen_a.calls == 0);
  b.set(39, config_for(sim, evw::Edge::Both));
  CHECK_FALSE(exists(gpio_dir(sim, 38)));
  CHECK(exists(gpio_dir(sim, 39)));
  a.stop();
  b.stop();
}

TEST_CASE("Gpio: a forked child never unexports a line its parent exported; its own lines it does") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  sim.set_input(40, 0);
  Seen seen;
  auto parents = std::make_unique<evw::Gpio>(loop, 40, config_for(sim, evw::Edge::Both), seen.callback());
  // Stopped across the fork: the child shares the loop's EPOLLPRI set until Loop::fork().
  const std::string root = sim.root();
  CHECK(evw_test::passes_in_child([&] {
    bool ok = parents->exported() == false;  // the parent's, not the child's
    parents.reset();  // the child's copy: the parent still uses the line
    ok = ok && exists(root + "/gpio40");
    {
      evw::Gpio own(loop, 41, evw::GpioConfig{.sysfs_root = root, .edge = evw::Edge::Both}, [](evw::Gpio&, int) {});
      ok = ok && own.exported();
      evw::Gpio shared(loop, 40, evw::GpioConfig{.sysfs_root = root, .edge = evw::Edge::Both}, [](evw::Gpio&, int) {});
      ok = ok && !shared.exported();
    }
    return ok && !exists(root + "/gpio41") && exists(root + "/gpio40");
  }));
  CHECK(exists(gpio_dir(sim, 40)));
  CHECK(parents->exported());
  parents->start();
  sim.set_input(40, 1);
  CHECK(run_until(loop, [&] { return seen.calls == 1; }));
  parents.reset();
  CHECK_FALSE(exists(gpio_dir(sim, 40)));
}

TEST_CASE("Gpio: read_value() reads the level an undelivered Rising-only edge left; value() follows") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  sim.set_input(42, 0);
  Seen seen;
  evw::Gpio g(loop, 42, config_for(sim, evw::Edge::Rising), seen.callback());
  g.start();
  sim.set_input(42, 1);
  CHECK(run_until(loop, [&] { return seen.calls == 1; }));
  sim.set_input(42, 0);  // falling: not watched, not read
  settle(loop);
  CHECK(seen.calls == 1);
  CHECK(g.value() == 1);  // stale
  CHECK(g.read_value() == 0);
  CHECK(g.value() == 0);
  settle(loop);
  CHECK(seen.calls == 1);  // nothing was latched: no callback
  g.stop();
  // active_low: the logical level.
  g.set(config_for(sim, evw::Edge::Rising, true));
  sim.set_input(42, 1);
  CHECK(g.read_value() == 0);
  sim.set_input(42, 0);
  CHECK(g.read_value() == 1);
}

TEST_CASE("Gpio: read_value() with an edge latched and undelivered: the callback still runs exactly once") {
  REQUIRE_GPIO_SIM();
  auto [a, b] = evw_test::socket_pair();
  // idle: the loop has not looked yet; pending: it has, and a higher-priority
  // callback calls read_value() before the edge's callback runs.
  for (bool pending : {false, true}) {
    CAPTURE(pending);
    evw::Loop loop;
    sim.set_input(43, 0);
    Seen seen;
    evw::Gpio g(loop, 43, config_for(sim, evw::Edge::Both), seen.callback());
    int read = -1;
    bool was_pending = false;
    evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
      char c;
      while (::read(w.fd(), &c, 1) == 1) {}
      was_pending = g.is_pending();
      read = g.read_value();
      w.stop();
    });
    io.set_priority(1);
    g.start();
    sim.set_input(43, 1);
    REQUIRE(wait_latched(g.fd()));
    if (pending) {
      io.start();
      REQUIRE(::write(b.get(), "x", 1) == 1);
    } else {
      read = g.read_value();
      CHECK(edge_latched(g.fd()));  // the watched file still has it
    }
    CHECK(read == (pending ? -1 : 1));
    CHECK(run_until(loop, [&] { return seen.calls == 1; }));
    settle(loop);
    CHECK(read == 1);
    if (pending) CHECK(was_pending);
    CHECK(seen.calls == 1);
    CHECK(seen.revents == evw::Event::Pri);
    CHECK(seen.values == std::vector<int>{1});
    // And the next edge as usual.
    sim.set_input(43, 0);
    CHECK(run_until(loop, [&] { return seen.calls == 2; }));
    settle(loop);
    CHECK(seen.values == std::vector<int>{1, 0});
  }
}

TEST_CASE("Gpio: read_value() on a stopped watcher keeps a latched edge for start(), delivered once") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  sim.set_input(44, 0);
  Seen seen;
  evw::Gpio g(loop, 44, config_for(sim, evw::Edge::Both), seen.callback());
  sim.set_input(44, 1);  // never started: latched since the priming read
  REQUIRE(wait_latched(g.fd()));
  CHECK(g.read_value() == 1);
  CHECK_FALSE(g.is_pending());
  settle(loop);
  CHECK(seen.calls == 0);
  g.start();
  CHECK(run_until(loop, [&] { return seen.calls == 1; }));
  settle(loop);
  CHECK(seen.calls == 1);
  CHECK(seen.revents == evw::Event::Pri);
  CHECK(seen.values == std::vector<int>{1});

  // Read while active, then stop() before the loop ran: kept for the next start().
  sim.set_input(44, 0);
  REQUIRE(wait_latched(g.fd()));
  CHECK(g.read_value() == 0);
  g.stop();
  settle(loop);
  CHECK(seen.calls == 1);
  g.start();
  CHECK(run_until(loop, [&] { return seen.calls == 2; }));
  settle(loop);
  CHECK(seen.calls == 2);
  CHECK(seen.values == std::vector<int>{1, 0});

  // A second read_value() finds nothing new: still one callback.
  g.stop();
  sim.set_input(44, 1);
  REQUIRE(wait_latched(g.fd()));
  CHECK(g.read_value() == 1);
  CHECK(g.read_value() == 1);
  g.start();
  CHECK(run_until(loop, [&] { return seen.calls == 3; }));
  settle(loop);
  CHECK(seen.calls == 3);

  g.stop();
}

TEST_CASE("Gpio: revents is Event::Pri or Event::Error (stopped), never Event::Hup, whatever the loop or feed() brings") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  sim.set_input(46, 0);
  Seen seen;
  evw::Gpio g(loop, 46, config_for(sim, evw::Edge::Both), seen.callback());
  g.start();
  // EPOLLERR alone or EPOLLHUP (a FUSE file whose poll request failed), as
  // the EPOLLPRI table would deliver them: `value` reads fine, so an edge.
  for (int bits : {evw::Event::Error, evw::Event::Hup, evw::Event::Error | evw::Event::Hup, evw::Event::Read}) {
    CAPTURE(bits);
    const int before = seen.calls;
    // Fed from a callback: libev runs an event fed from outside only after
    // its next poll returns.
    evw::Timer kick(loop, 0.0, 0.0, [&](evw::Timer&, int) { g.feed(bits); });
    kick.start();
    CHECK(run_until(loop, [&] { return seen.calls == before + 1; }));
    CHECK(seen.revents == evw::Event::Pri);
    CHECK(g.is_active());
    CHECK(g.error() == std::error_code());
  }
  // Event::Error only with the watcher stopped and error() set.
  write_text(sim.root() + "/unexport", "46");
  g.stop();  // the removal wakes no poller (as on the kernel): poll afresh
  g.start();
  CHECK(run_until(loop, [&] { return seen.revents == evw::Event::Error; }));
  CHECK_FALSE(g.is_active());
  CHECK(g.error() == std::errc::no_such_device);
}
