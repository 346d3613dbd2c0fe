// evw::sim::GpioChipSim: a GpioLine on its request fd gets the records the kernel would make
// (edge ids, CLOCK_MONOTONIC timestamps, seqno and line_seqno, the bounded queue that drops
// the oldest), and the simulator refuses what the kernel refuses. What it is checked against
// on the real kernel: tests/kernel/differential/line_scenarios.cpp.
#include <evw/sim/chip_sim.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <time.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "support.hpp"

namespace {

std::uint64_t now_ns(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// Every event a watcher got, and how many batches they came in.
struct Events {
  std::vector<evw::GpioEvent> all;
  int batches = 0;
  int revents = 0;
  auto callback() {
    return [this](evw::GpioLine& l, int rev) {
      revents = rev;
      if (!(rev & evw::Event::Read)) return;  // Hup or Error: no new batch
      ++batches;
      all.insert(all.end(), l.last_events().begin(), l.last_events().end());
    };
  }
};

evw::GpioLineConfig with_edge(evw::Edge edge) {
  evw::GpioLineConfig c;
  c.edge = edge;
  return c;
}

int errno_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    return e.code().value();
  }
  return 0;
}

}  // namespace

TEST_CASE("GpioChipSim: both edges: kernel-shaped records through GpioLine::from_fd") {
  evw::Loop loop;
  evw::sim::GpioChipSim chip(8);
  Events seen;
  auto line = evw::GpioLine::from_fd(loop, chip.request(5), seen.callback());
  line.start();
  const std::uint64_t before = now_ns(CLOCK_MONOTONIC);
  chip.set_input(5, 1);
  chip.set_input(5, 1);  // no change, no edge
  chip.set_input(5, 0);
  chip.set_input(5, 1);
  chip.set_input(4, 1);  // another line: not this request's
  const std::uint64_t after = now_ns(CLOCK_MONOTONIC);
  CHECK(chip.queued(5) == 3);
  REQUIRE(evw_test::run_until(loop, [&] { return seen.all.size() >= 3; }));
  CHECK(seen.revents == evw::Event::Read);
  CHECK(seen.batches == 1);  // written before the loop ran: read in one batch, as the kernel's are
  REQUIRE(seen.all.size() == 3);
  const evw::Edge want[] = {evw::Edge::Rising, evw::Edge::Falling, evw::Edge::Rising};
  for (std::size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    const evw::GpioEvent& e = seen.all[i];
    CHECK(e.edge == want[i]);
    CHECK(e.line == 5);
    CHECK(e.line_seqno == i + 1);
    CHECK(e.seqno == e.line_seqno);  // a request of one line: the kernel copies line_seqno
    CHECK(e.lost == 0);
    CHECK(e.timestamp_ns >= before);
    CHECK(e.timestamp_ns <= after);
    if (i > 0) CHECK(e.timestamp_ns >= seen.all[i - 1].timestamp_ns);
  }
  CHECK(chip.queued(5) == 0);
  CHECK(line.lost() == 0);
  CHECK(chip.input(5) == 1);
  CHECK(chip.input(4) == 1);
}

TEST_CASE("GpioChipSim: one edge, active-low, no edge, the realtime clock") {
  evw::Loop loop;
  evw::sim::GpioChipSim chip(5);
  Events rising, falling, inverted, none, realtime;
  evw::GpioLineConfig low = with_edge(evw::Edge::Rising);
  low.active_low = true;
  evw::GpioLineConfig rt = with_edge(evw::Edge::Both);
  rt.clock = evw::EventClock::Realtime;
  auto r = evw::GpioLine::from_fd(loop, chip.request(0, with_edge(evw::Edge::Rising)), rising.callback());
  auto f = evw::GpioLine::from_fd(loop, chip.request(1, with_edge(evw::Edge::Falling)), falling.callback());
  auto i = evw::GpioLine::from_fd(loop, chip.request(2, low), inverted.callback());
  auto n = evw::GpioLine::from_fd(loop, chip.request(3, with_edge(evw::Edge::None)), none.callback());
  r.start(); f.start(); i.start(); n.start();
  for (unsigned line = 0; line < 4; ++line)
    for (int level : {1, 0, 1, 0}) chip.set_input(line, level);
  REQUIRE(evw_test::run_until(loop, [&] {
    return rising.all.size() >= 2 && falling.all.size() >= 2 && inverted.all.size() >= 2;
  }));
  for (const Events* e : {&rising, &falling, &inverted}) {
    REQUIRE(e->all.size() == 2);
    CHECK(e->all[0].line_seqno == 1);  // only the selected edges are counted
    CHECK(e->all[1].line_seqno == 2);
  }
  CHECK(rising.all[0].edge == evw::Edge::Rising);
  CHECK(falling.all[1].edge == evw::Edge::Falling);
  CHECK(inverted.all[0].edge == evw::Edge::Rising);  // the physical 1 -> 0, logical 0 -> 1
  CHECK(none.all.empty());
  CHECK(chip.queued(3) == 0);

  {
    const std::uint64_t before = now_ns(CLOCK_REALTIME);
    auto t = evw::GpioLine::from_fd(loop, chip.request(4, rt), realtime.callback());
    t.start();
    chip.set_input(4, 1);
    REQUIRE(evw_test::run_until(loop, [&] { return !realtime.all.empty(); }));
    CHECK(realtime.all[0].timestamp_ns >= before);
    CHECK(realtime.all[0].timestamp_ns <= now_ns(CLOCK_REALTIME));
  }
}

TEST_CASE("GpioChipSim: a burst the loop does not read: the newest kept, the gap counted as lost") {
  struct Case {
    unsigned buffer;   // event_buffer_size asked for
    std::size_t kept;  // the kernel's kfifo: 16 by default, else a power of two, at most 1024
  };
  for (const Case& c : {Case{0, 16}, Case{2, 2}, Case{4, 4}, Case{5, 8}, Case{3000, 1024}}) {
    CAPTURE(c.buffer);
    CHECK(evw::sim::GpioChipSim::queue_capacity(c.buffer) == c.kept);
    evw::Loop loop;
    evw::sim::GpioChipSim chip(1);
    Events seen;
    evw::GpioLineConfig config;
    config.event_buffer_size = c.buffer;
    auto l = evw::GpioLine::from_fd(loop, chip.request(0, config), seen.callback());
    l.start();
    const std::size_t edges = c.kept + 24;
    for (std::size_t i = 0; i < edges; ++i) chip.set_input(0, static_cast<int>((i + 1) % 2));
    CHECK(chip.queued(0) == c.kept);
    CHECK(chip.dropped(0) == edges - c.kept);
    REQUIRE(evw_test::run_until(loop, [&] { return seen.all.size() + l.lost() >= edges; }));
    CHECK(seen.all.size() == c.kept);
    CHECK(l.lost() == edges - c.kept);
    REQUIRE_FALSE(seen.all.empty());
    CHECK(seen.all.front().lost == edges - c.kept);     // the oldest were dropped...
    CHECK(seen.all.front().line_seqno == edges - c.kept + 1);
    CHECK(seen.all.back().line_seqno == edges);         // ...the newest kept
    CHECK(seen.all.back().edge == (edges % 2 == 1 ? evw::Edge::Rising : evw::Edge::Falling));
  }
}

TEST_CASE("GpioChipSim: refuses what the kernel refuses; a line is busy until its fd is closed") {
  evw::Loop loop;
  evw::sim::GpioChipSim chip(4);
  auto nothing = [](evw::GpioLine&, int) {};
  CHECK_THROWS_AS(evw::sim::GpioChipSim(0), std::invalid_argument);
  CHECK_THROWS_AS(chip.request(4), std::invalid_argument);
  evw::GpioLineConfig one;
  one.event_buffer_size = 1;
  CHECK_THROWS_WITH_AS(chip.request(0, one), doctest::Contains("event_buffer_size"), std::invalid_argument);
  evw::GpioLineConfig debounced;
  debounced.debounce = 0.005;
  CHECK_THROWS_WITH_AS(chip.request(0, debounced), doctest::Contains("not simulated"), std::invalid_argument);
  CHECK_THROWS_AS(chip.set_input(4, 1), std::out_of_range);
  CHECK_THROWS_AS(chip.set_input(0, 2), std::invalid_argument);
  CHECK_THROWS_AS(chip.input(9), std::out_of_range);

  one.edge = evw::Edge::None;  // no edges, no queue: the kernel takes a buffer of 1 then
  const int fds_before = evw_test::open_fd_count();
  {
    auto l = evw::GpioLine::from_fd(loop, chip.request(0, one), nothing);
    CHECK(errno_of([&] { chip.request(0); }) == EBUSY);
    CHECK(errno_of([&] { (void)l.read_value(); }) == ENOTTY);  // a pipe: no line ioctls
  }
  // The watcher closed its fd: the line is free again, and the new request counts from 1.
  Events seen;
  {
    auto l = evw::GpioLine::from_fd(loop, chip.request(0), seen.callback());
    l.start();
    chip.set_input(0, 1);
    REQUIRE(evw_test::run_until(loop, [&] { return !seen.all.empty(); }));
    CHECK(seen.all[0].line_seqno == 1);
  }
  CHECK(chip.queued(0) == 0);  // lets the closed request go
  CHECK(evw_test::open_fd_count() == fds_before);
}

TEST_CASE("GpioChipSim: destroyed under a running GpioLine: the watcher gets Event::Hup once") {
  evw::Loop loop;
  auto chip = std::make_unique<evw::sim::GpioChipSim>(2);
  Events seen;
  auto l = evw::GpioLine::from_fd(loop, chip->request(1), seen.callback());
  l.start();
  chip->set_input(1, 1);
  chip.reset();  // the record written before stays readable
  REQUIRE(evw_test::run_until(loop, [&] { return seen.revents == evw::Event::Hup; }));
  REQUIRE(seen.all.size() == 1);
  CHECK(seen.all[0].edge == evw::Edge::Rising);
  CHECK_FALSE(l.is_active());
}
