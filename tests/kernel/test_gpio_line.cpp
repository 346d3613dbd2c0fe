// evw::GpioLine (character device, uAPI v2) on the real kernel: Linux's gpio-sim chip in
// the QEMU guest of tools/kernel-gpio/run, lines driven through the simulator's `pull`.
// What tests/test_gpio_line.cpp can only feed through a pipe: the kernel's own records,
// its queue overflow, bias, active-low and debounce as the kernel applies them.
#include <evw/watchers/gpio_line.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "kernel_gpio.hpp"

namespace {

// Every event a watcher got, and how many batches they came in.
struct Events {
  std::vector<evw::GpioEvent> all;
  int batches = 0;
  int revents = 0;
  auto callback() {
    return [this](evw::GpioLine& l, int rev) {
      ++batches;
      revents = rev;
      all.insert(all.end(), l.last_events().begin(), l.last_events().end());
    };
  }
  std::size_t size() const { return all.size(); }
};

evw::GpioLineConfig with_edge(evw::Edge edge) {
  evw::GpioLineConfig c;
  c.edge = edge;
  c.consumer = "evw-kernel-test";
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

std::uint64_t clock_ns(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace

TEST_CASE("kernel GpioLine: the request as the kernel sees it (consumer, input, edges, bias, active-low, debounce)") {
  KERNEL_CHIP();
  evw::Loop loop;
  evw::GpioLineConfig config = with_edge(evw::Edge::Both);
  config.bias = evw::Bias::PullDown;
  config.active_low = true;
  config.debounce = 0.005;
  {
    evw::GpioLine l(loop, chip.device, 1, config, [](evw::GpioLine&, int) {});
    const gpio_v2_line_info info = kgpio::line_info(chip, 1);
    CHECK(std::string(info.consumer) == "evw-kernel-test");
    CHECK((info.flags & GPIO_V2_LINE_FLAG_USED) != 0);
    CHECK((info.flags & GPIO_V2_LINE_FLAG_INPUT) != 0);
    CHECK((info.flags & GPIO_V2_LINE_FLAG_EDGE_RISING) != 0);
    CHECK((info.flags & GPIO_V2_LINE_FLAG_EDGE_FALLING) != 0);
    CHECK((info.flags & GPIO_V2_LINE_FLAG_BIAS_PULL_DOWN) != 0);
    CHECK((info.flags & GPIO_V2_LINE_FLAG_ACTIVE_LOW) != 0);
    std::uint32_t debounce_us = 0;
    for (unsigned i = 0; i < info.num_attrs; ++i)
      if (info.attrs[i].id == GPIO_V2_LINE_ATTR_ID_DEBOUNCE) debounce_us = info.attrs[i].debounce_period_us;
    CHECK(debounce_us == 5000);
  }
  CHECK((kgpio::line_info(chip, 1).flags & GPIO_V2_LINE_FLAG_USED) == 0);  // released
}

TEST_CASE("kernel GpioLine: each edge setting gets exactly its edges, with the kernel's fields") {
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
    Events seen;
    evw::GpioLine l(loop, chip.device, 5, with_edge(c.edge), seen.callback());
    l.start();
    std::vector<evw::Edge> want;
    const std::uint64_t before = clock_ns(CLOCK_MONOTONIC);
    for (int level : {1, 0, 1, 0}) {
      kgpio::pull(chip, 5, level);
      const evw::Edge edge = level ? evw::Edge::Rising : evw::Edge::Falling;
      if (c.edge == evw::Edge::Both || c.edge == edge) {
        want.push_back(edge);
        CHECK(kgpio::run_until(loop, [&] { return seen.size() == want.size(); }));
      } else {
        kgpio::settle(loop);
      }
      CHECK(l.read_value() == level);
    }
    kgpio::settle(loop);
    REQUIRE(seen.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      CAPTURE(i);
      const evw::GpioEvent& e = seen.all[i];
      CHECK(e.edge == want[i]);
      CHECK(e.line == 5);
      CHECK(e.line_seqno == i + 1);
      CHECK(e.seqno == i + 1);
      CHECK(e.lost == 0);
      CHECK(e.timestamp_ns > before);
      CHECK(e.timestamp_ns <= clock_ns(CLOCK_MONOTONIC));
      if (i > 0) CHECK(e.timestamp_ns > seen.all[i - 1].timestamp_ns);
    }
    if (!want.empty()) CHECK(seen.revents == evw::Event::Read);
    CHECK(l.lost() == 0);
  }
}

TEST_CASE("kernel GpioLine: no event at the request, none for a pull to the level the line has") {
  KERNEL_CHIP();
  kgpio::pull(chip, 6, 1);
  evw::Loop loop;
  Events seen;
  evw::GpioLine l(loop, chip.device, 6, with_edge(evw::Edge::Both), seen.callback());
  l.start();
  CHECK(l.read_value() == 1);
  CHECK(kgpio::settle(loop, 0.3) < 5);
  kgpio::pull(chip, 6, 1);
  kgpio::settle(loop, 0.2);
  CHECK(seen.size() == 0);
  kgpio::pull(chip, 6, 0);
  CHECK(kgpio::run_until(loop, [&] { return seen.size() == 1; }));
  CHECK(seen.all[0].edge == evw::Edge::Falling);
}

TEST_CASE("kernel GpioLine: active_low makes a physical rise a Falling event and inverts read_value()") {
  KERNEL_CHIP();
  evw::Loop loop;
  Events seen;
  evw::GpioLineConfig config = with_edge(evw::Edge::Both);
  config.active_low = true;
  evw::GpioLine l(loop, chip.device, 7, config, seen.callback());
  l.start();
  CHECK(l.read_value() == 1);  // pulled down, read inverted
  kgpio::pull(chip, 7, 1);
  CHECK(kgpio::run_until(loop, [&] { return seen.size() == 1; }));
  CHECK(seen.all[0].edge == evw::Edge::Falling);
  CHECK(l.read_value() == 0);
  kgpio::pull(chip, 7, 0);
  CHECK(kgpio::run_until(loop, [&] { return seen.size() == 2; }));
  CHECK(seen.all[1].edge == evw::Edge::Rising);

  // Only falling (logical) edges: a physical rise.
  config.edge = evw::Edge::Falling;
  Events only;
  evw::GpioLine f(loop, chip.device, 8, config, only.callback());
  f.start();
  kgpio::pull(chip, 8, 1);
  CHECK(kgpio::run_until(loop, [&] { return only.size() == 1; }));
  kgpio::pull(chip, 8, 0);
  kgpio::settle(loop);
  CHECK(only.size() == 1);
}

TEST_CASE("kernel GpioLine: bias reaches gpio-sim, which makes it the line's pull") {
  KERNEL_CHIP();
  evw::Loop loop;
  {
    evw::GpioLineConfig config = with_edge(evw::Edge::Both);
    config.bias = evw::Bias::PullUp;
    Events seen;
    evw::GpioLine l(loop, chip.device, 9, config, seen.callback());
    l.start();
    CHECK(l.read_value() == 1);
    CHECK(kgpio::pull_of(chip, 9) == "pull-up");
    kgpio::settle(loop);
    // The bias is applied before edge detection is set up: no event for it.
    CHECK(seen.size() == 0);
    // The simulator's pull still drives the line against the requested bias.
    kgpio::pull(chip, 9, 0);
    CHECK(kgpio::run_until(loop, [&] { return seen.size() == 1; }));
    CHECK(l.read_value() == 0);
    kgpio::pull(chip, 9, 1);
  }
  // The bias a request set stays the line's pull after the release.
  CHECK(kgpio::pull_of(chip, 9) == "pull-up");
  {
    evw::GpioLineConfig config = with_edge(evw::Edge::Both);
    config.bias = evw::Bias::PullDown;
    kgpio::pull(chip, 10, 1);
    evw::GpioLine l(loop, chip.device, 10, config, [](evw::GpioLine&, int) {});
    CHECK(l.read_value() == 0);
    CHECK(kgpio::pull_of(chip, 10) == "pull-down");
  }
  // Bias::Disabled: gpio-sim cannot do it, and the kernel treats that as optional.
  for (evw::Bias bias : {evw::Bias::Disabled, evw::Bias::AsIs}) {
    evw::GpioLineConfig config = with_edge(evw::Edge::Both);
    config.bias = bias;
    kgpio::pull(chip, 11, 1);
    evw::GpioLine l(loop, chip.device, 11, config, [](evw::GpioLine&, int) {});
    CHECK(l.read_value() == 1);  // the pull as it was
  }
}

TEST_CASE("kernel GpioLine: kernel debounce: a glitch shorter than the period is no event, a settled change one") {
  KERNEL_CHIP();
  evw::Loop loop;
  Events seen;
  evw::GpioLineConfig config = with_edge(evw::Edge::Both);
  config.debounce = 0.2;  // long against the guest's few ms per pull write
  // gpio-sim has no hardware debounce: the kernel's chardev debounces in software.
  std::unique_ptr<evw::GpioLine> l;
  try {
    l = std::make_unique<evw::GpioLine>(loop, chip.device, 12, config, seen.callback());
  } catch (const std::system_error& e) {
    EVW_SKIP(std::string("this kernel refuses debounce on gpio-sim: ") + e.what());
  }
  l->start();
  kgpio::pull(chip, 12, 1);
  kgpio::pull(chip, 12, 0);  // back within the period: a glitch
  kgpio::settle(loop, 0.6);
  CHECK(seen.size() == 0);
  const std::uint64_t before = clock_ns(CLOCK_MONOTONIC);
  kgpio::pull(chip, 12, 1);
  kgpio::pull(chip, 12, 0);
  kgpio::pull(chip, 12, 1);  // bounces, then stays
  CHECK(kgpio::run_until(loop, [&] { return seen.size() == 1; }));
  kgpio::settle(loop, 0.6);
  REQUIRE(seen.size() == 1);
  CHECK(seen.all[0].edge == evw::Edge::Rising);
  MESSAGE("debounced event " << (seen.all[0].timestamp_ns - before) / 1000000 << " ms after the first bounce");
  CHECK(seen.all[0].timestamp_ns >= before);
  CHECK(l->read_value() == 1);
}

TEST_CASE("kernel GpioLine: EventClock::Realtime stamps events with wall-clock time") {
  KERNEL_CHIP();
  evw::Loop loop;
  Events seen;
  evw::GpioLineConfig config = with_edge(evw::Edge::Rising);
  config.clock = evw::EventClock::Realtime;
  evw::GpioLine l(loop, chip.device, 13, config, seen.callback());
  l.start();
  const std::uint64_t before = clock_ns(CLOCK_REALTIME);
  kgpio::pull(chip, 13, 1);
  CHECK(kgpio::run_until(loop, [&] { return seen.size() == 1; }));
  CHECK(seen.all[0].timestamp_ns >= before);
  CHECK(seen.all[0].timestamp_ns <= clock_ns(CLOCK_REALTIME));
  CHECK((kgpio::line_info(chip, 13).flags & GPIO_V2_LINE_FLAG_EVENT_CLOCK_REALTIME) != 0);
}

TEST_CASE("kernel GpioLine: a burst read as it comes: every edge, in order, none lost") {
  KERNEL_CHIP();
  evw::Loop loop;
  Events seen;
  evw::GpioLine l(loop, chip.device, 14, with_edge(evw::Edge::Both), seen.callback());
  l.start();
  const int edges = 200;
  for (int i = 0; i < edges; ++i) {
    kgpio::pull(chip, 14, (i + 1) % 2);
    loop.run(evw::Run::NoWait);
  }
  CHECK(kgpio::run_until(loop, [&] { return seen.size() + l.lost() >= edges; }));
  kgpio::settle(loop);
  CHECK(seen.size() == edges);
  CHECK(l.lost() == 0);
  for (std::size_t i = 0; i < seen.size(); ++i) {
    CAPTURE(i);
    CHECK(seen.all[i].line_seqno == i + 1);
    CHECK(seen.all[i].edge == (i % 2 == 0 ? evw::Edge::Rising : evw::Edge::Falling));
  }
}

TEST_CASE("kernel GpioLine: a burst the loop does not read: the kernel keeps the newest events, lost() counts the rest") {
  KERNEL_CHIP();
  struct Case {
    unsigned buffer;  // event_buffer_size asked for
    std::size_t kept;  // what the kernel keeps: a power-of-two queue, 16 per line by default
  };
  for (const Case& c : {Case{0, 16}, Case{4, 4}, Case{5, 8}}) {
    CAPTURE(c.buffer);
    evw::Loop loop;
    Events seen;
    evw::GpioLineConfig config = with_edge(evw::Edge::Both);
    config.event_buffer_size = c.buffer;
    evw::GpioLine l(loop, chip.device, 15, config, seen.callback());
    l.start();
    const int edges = 40;
    for (int i = 0; i < edges; ++i) kgpio::pull(chip, 15, (i + 1) % 2);  // the loop sleeps meanwhile
    CHECK(kgpio::run_until(loop, [&] { return seen.size() + l.lost() >= edges; }));
    kgpio::settle(loop);
    MESSAGE("buffer " << c.buffer << ": " << seen.size() << " events in " << seen.batches << " batch(es), "
                      << l.lost() << " lost");
    CHECK(seen.size() == c.kept);
    CHECK(seen.size() + l.lost() == edges);  // each edge either read or counted lost
    REQUIRE_FALSE(seen.all.empty());
    CHECK(seen.all.front().lost == edges - c.kept);  // the oldest were dropped...
    CHECK(seen.all.back().line_seqno == edges);      // ...the newest kept
    CHECK(seen.all.back().edge == evw::Edge::Falling);
    kgpio::pull(chip, 15, 0);
  }
}

TEST_CASE("kernel GpioLine: destroyed inside its own callback: the line is released at once") {
  KERNEL_CHIP();
  evw::Loop loop;
  int calls = 0;
  std::unique_ptr<evw::GpioLine> l;
  l = std::make_unique<evw::GpioLine>(loop, chip.device, 16 % chip.lines, with_edge(evw::Edge::Both),
                                      [&](evw::GpioLine&, int) {
                                        ++calls;
                                        l.reset();
                                      });
  l->start();
  kgpio::pull(chip, 16 % chip.lines, 1);
  CHECK(kgpio::run_until(loop, [&] { return calls == 1; }));
  CHECK_FALSE(l);
  CHECK((kgpio::line_info(chip, 16 % chip.lines).flags & GPIO_V2_LINE_FLAG_USED) == 0);
  CHECK_FALSE(loop.run(evw::Run::NoWait));
  // Several events were waiting in the kernel when it went: none is delivered to it.
  CHECK(calls == 1);
}

TEST_CASE("kernel GpioLine: reconfiguring while active means a new request (GpioLine has no set())") {
  KERNEL_CHIP();
  // GpioLine cannot be reconfigured in place (the header says so); what applies is
  // replacing it from inside the loop, e.g. from its own callback, without losing the line
  // to another consumer in between or leaving the old request behind.
  const int line = 17 % chip.lines;
  evw::Loop loop;
  Events rising, falling;
  std::unique_ptr<evw::GpioLine> l;
  l = std::make_unique<evw::GpioLine>(loop, chip.device, line, with_edge(evw::Edge::Rising),
                                      [&](evw::GpioLine& self, int rev) {
                                        rising.callback()(self, rev);
                                        // Copied first: the reset destroys this closure with its
                                        // watcher, and the old request must go before the new one
                                        // (the kernel says EBUSY to a second request of a line).
                                        auto& owner = l;
                                        evw::Loop& same_loop = loop;
                                        Events& next = falling;
                                        const std::string device = chip.device;
                                        owner.reset();
                                        owner = std::make_unique<evw::GpioLine>(
                                            same_loop, device, line, with_edge(evw::Edge::Falling), next.callback());
                                        owner->start();
                                      });
  l->start();
  kgpio::pull(chip, line, 1);
  CHECK(kgpio::run_until(loop, [&] { return rising.size() == 1; }));
  REQUIRE(l);
  CHECK(l->config().edge == evw::Edge::Falling);
  kgpio::pull(chip, line, 0);
  REQUIRE(kgpio::run_until(loop, [&] { return falling.size() == 1; }));
  CHECK(falling.all[0].edge == evw::Edge::Falling);
  CHECK(falling.all[0].line_seqno == 1);  // a new request counts from 1
  CHECK(rising.size() == 1);
}

TEST_CASE("kernel GpioLine: errors: the kernel's errnos and evw's argument checks") {
  KERNEL_CHIP();
  evw::Loop loop;
  auto nothing = [](evw::GpioLine&, int) {};
  CHECK_THROWS_AS(evw::GpioLine(loop, chip.device, chip.lines, nothing), std::invalid_argument);
  CHECK(errno_of([&] { evw::GpioLine l(loop, "/dev/gpiochip99", 0, nothing); }) == ENOENT);
  CHECK(errno_of([&] { evw::GpioLine l(loop, "/dev/null", 0, nothing); }) == ENOTTY);
  {
    evw::GpioLine first(loop, chip.device, 18 % chip.lines, nothing);
    CHECK(errno_of([&] { evw::GpioLine second(loop, chip.device, 18 % chip.lines, nothing); }) == EBUSY);
  }
  // The kernel's queue is a power-of-two kfifo of at least two records: a buffer of one
  // is refused (EINVAL), and evw refuses it first; without edges there is no queue and the
  // kernel takes it (so must evw).
  evw::GpioLineConfig one = with_edge(evw::Edge::Both);
  one.event_buffer_size = 1;
  CHECK_THROWS_AS(evw::GpioLine(loop, chip.device, 18 % chip.lines, one, nothing), std::invalid_argument);
  {
    gpio_v2_line_request raw{};
    raw.offsets[0] = static_cast<std::uint32_t>(18 % chip.lines);
    raw.num_lines = 1;
    raw.event_buffer_size = 1;
    raw.config.flags = GPIO_V2_LINE_FLAG_INPUT | GPIO_V2_LINE_FLAG_EDGE_RISING | GPIO_V2_LINE_FLAG_EDGE_FALLING;
    const int chip_fd = ::open(chip.device.c_str(), O_RDWR | O_CLOEXEC);
    REQUIRE(chip_fd >= 0);
    CHECK(::ioctl(chip_fd, GPIO_V2_GET_LINE_IOCTL, &raw) == -1);
    CHECK(errno == EINVAL);  // the kernel's own rule, which evw's check repeats
    ::close(chip_fd);
  }
  one.edge = evw::Edge::None;
  { evw::GpioLine no_edges(loop, chip.device, 18 % chip.lines, one, nothing); }
  evw::GpioLine l(loop, chip.device, 18 % chip.lines, nothing);  // the refusal left nothing held
  CHECK(l.read_value() == 0);
}

TEST_CASE("kernel GpioLine: a watcher on every line of the chip, each gets only its own edges") {
  KERNEL_CHIP();
  evw::Loop loop;
  const auto n = static_cast<std::size_t>(chip.lines);
  std::vector<Events> seen(n);
  std::vector<std::unique_ptr<evw::GpioLine>> lines;
  for (std::size_t i = 0; i < n; ++i) {
    lines.push_back(std::make_unique<evw::GpioLine>(loop, chip.device, static_cast<int>(i),
                                                    with_edge(evw::Edge::Both), seen[i].callback()));
    lines.back()->start();
  }
  auto total = [&] {
    std::size_t t = 0;
    for (const Events& e : seen) t += e.size();
    return t;
  };
  // Line i gets i % 3 + 1 edges, in an interleaved order.
  std::size_t want = 0;
  for (int round = 0; round < 3; ++round)
    for (std::size_t i = 0; i < n; ++i)
      if (static_cast<int>(i % 3) >= round) {
        kgpio::pull(chip, static_cast<int>(i), round % 2 == 0 ? 1 : 0);
        ++want;
      }
  CHECK(kgpio::run_until(loop, [&] { return total() == want; }));
  kgpio::settle(loop);
  for (std::size_t i = 0; i < n; ++i) {
    CAPTURE(i);
    CHECK(seen[i].size() == i % 3 + 1);
    for (const evw::GpioEvent& e : seen[i].all) CHECK(e.line == i);
    CHECK(lines[i]->lost() == 0);
  }
}

TEST_CASE("kernel GpioLine and Gpio on one chip in one loop") {
  KERNEL_CHIP();
  evw::Loop loop;
  int gpio_calls = 0;
  Events seen;
  evw::Gpio g(loop, chip.number(20 % chip.lines), [&](evw::Gpio&, int) { ++gpio_calls; });
  evw::GpioLine l(loop, chip.device, 21 % chip.lines, with_edge(evw::Edge::Both), seen.callback());
  g.start();
  l.start();
  int edges = 0;
  for (int level : {1, 0, 1}) {
    kgpio::pull(chip, 20 % chip.lines, level);
    kgpio::pull(chip, 21 % chip.lines, level);
    ++edges;
    CHECK(kgpio::run_until(loop, [&] { return gpio_calls == edges && seen.size() == static_cast<std::size_t>(edges); }));
  }
  kgpio::settle(loop);
  CHECK(gpio_calls == 3);
  CHECK(seen.size() == 3);
}
