// co_await gpio.edge() on plain watchers: a Gpio on gpio-sim and a GpioLine
// fed through a pipe. The watcher's own callback still runs first, the active
// state is restored after the wait, a second await from inside the resumption
// works, a cancelled wait leaves the watcher as it was (callback included),
// and two coroutines cannot wait at once.
#include <evw/coro/coro.hpp>
#include <evw/evw.hpp>
#include <evw/watchers/gpio.hpp>
#include <evw/watchers/gpio_line.hpp>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../tools/gpio-sim/gpio_sim.hpp"
#include "support.hpp"

using namespace std::chrono_literals;

namespace {

gpio_v2_line_event record(evw::Edge edge, std::uint32_t line_seqno) {
  gpio_v2_line_event e{};
  e.timestamp_ns = 1'000'000'000ull + line_seqno;
  e.id = edge == evw::Edge::Rising ? GPIO_V2_LINE_EVENT_RISING_EDGE : GPIO_V2_LINE_EVENT_FALLING_EDGE;
  e.offset = 4;
  e.seqno = line_seqno + 100;
  e.line_seqno = line_seqno;
  return e;
}

void put(int fd, const gpio_v2_line_event& e) {
  REQUIRE(::write(fd, &e, sizeof e) == static_cast<ssize_t>(sizeof e));
}

struct Pipe {
  evw_test::Fd read_end, write_end;
  Pipe() {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    read_end.reset(p[0]);
    write_end.reset(p[1]);
  }
};

// Do `action` from the loop, `after` seconds from now.
template <class F>
evw::Task<void> later(evw::Loop& loop, evw::Seconds after, F action) {
  co_await evw::sleep(loop, after);
  action();
}

}  // namespace

TEST_CASE("coro: gpio.edge() on a plain Gpio (gpio-sim): callback first, state restored, again from the resumption") {
  if (auto why = evw::sim::GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  auto sim = evw::sim::GpioSim::in_temp_dir();
  evw::Loop loop;
  constexpr int line = 6;
  std::vector<int> seen_by_callback;
  evw::Gpio button(loop, line, evw::GpioConfig{.sysfs_root = sim->root()},
                   [&](evw::Gpio& g, int) { seen_by_callback.push_back(g.value()); });
  auto body = [&]() -> evw::Task<std::vector<int>> {
    std::vector<int> levels;
    for (int level : {1, 0, 1}) {
      // The first wait starts the stopped watcher; the next ones start from
      // inside the resumption of the previous wait (the relay is running).
      auto [revents, pressed] =
          co_await evw::when_all(button.edge(), later(loop, 0.002, [&, level] { sim->set_input(line, level); }));
      (void)pressed;
      CHECK(revents == evw::Event::Pri);
      CHECK(seen_by_callback.size() == levels.size() + 1);  // the callback ran first
      levels.push_back(button.value());
      CHECK_FALSE(button.is_active());  // stopped again, as it was
    }
    co_return levels;
  };
  CHECK(evw::sync_wait(loop, body()) == std::vector<int>{1, 0, 1});
  CHECK(seen_by_callback == std::vector<int>{1, 0, 1});

  // An active watcher stays active; an edge while nobody awaits only calls back.
  button.start();
  sim->set_input(line, 0);
  CHECK(evw_test::run_until(loop, [&] { return seen_by_callback.size() == 4; }));
  auto once = [&]() -> evw::Task<int> {
    auto [revents, pressed] =
        co_await evw::when_all(button.edge(), later(loop, 0.002, [&] { sim->set_input(line, 1); }));
    (void)pressed;
    co_return revents;
  };
  CHECK(evw::sync_wait(loop, once()) == evw::Event::Pri);
  CHECK(button.is_active());
  CHECK(seen_by_callback == std::vector<int>{1, 0, 1, 0, 1});
  button.stop();
}

TEST_CASE("coro: gpio.edge() cancelled at its suspension point leaves the Gpio as it was") {
  if (auto why = evw::sim::GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  auto sim = evw::sim::GpioSim::in_temp_dir();
  evw::Loop loop;
  constexpr int line = 7;
  int calls = 0;
  evw::Gpio button(loop, line, evw::GpioConfig{.sysfs_root = sim->root()}, [&](evw::Gpio&, int) { ++calls; });
  // Timed out: the awaitable is destroyed while suspended.
  auto timed_out = [&]() -> evw::Task<bool> { co_return co_await evw::with_timeout(loop, 5ms, button.edge()); };
  CHECK_FALSE(evw::sync_wait(loop, timed_out()));
  CHECK_FALSE(button.is_active());
  CHECK(calls == 0);
  // The Task destroyed at its suspension point (sync_wait gives up on an
  // exception), with an edge latched but not delivered yet.
  bool resumed = false;
  auto waiting = [&]() -> evw::Task<void> {
    co_await button.edge();
    resumed = true;
  };
  evw::Timer boom(loop, 0.002, 0.0, [&](evw::Timer&, int) {
    CHECK(button.is_active());  // started for the wait
    sim->set_input(line, 1);
    throw std::runtime_error("boom");
  });
  boom.set_priority(evw::max_priority);
  boom.start();
  CHECK_THROWS_AS(evw::sync_wait(loop, waiting()), std::runtime_error);
  CHECK_FALSE(button.is_active());
  // The edge stayed latched; the plain callback gets it, nothing is resumed.
  button.start();
  CHECK(evw_test::run_until(loop, [&] { return calls == 1; }));
  CHECK_FALSE(resumed);
  sim->set_input(line, 0);
  CHECK(evw_test::run_until(loop, [&] { return calls == 2; }));
  button.stop();
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("coro: gpio.edge() on a GpioLine fed through a pipe, cancellation and a second waiter") {
  evw::Loop loop;
  Pipe pipe;
  std::vector<std::uint32_t> seqnos;
  evw::GpioLine line(loop, evw::GpioLine::RequestFd{pipe.read_end.release()}, [&](evw::GpioLine& l, int) {
    for (const evw::GpioEvent& e : l.last_events()) seqnos.push_back(e.line_seqno);
  });
  const int in = pipe.write_end.get();

  // Two waits in a row, the second from inside the resumption of the first.
  auto reader = [&]() -> evw::Task<std::vector<std::uint32_t>> {
    std::vector<std::uint32_t> got;
    for (std::uint32_t n = 1; n <= 2; ++n) {
      auto [revents, fed] =
          co_await evw::when_all(line.edge(), later(loop, 0.001, [&, n] { put(in, record(evw::Edge::Rising, n)); }));
      (void)fed;
      CHECK(revents == evw::Event::Read);
      for (const evw::GpioEvent& e : line.last_events()) got.push_back(e.line_seqno);
    }
    co_return got;
  };
  CHECK(evw::sync_wait(loop, reader()) == std::vector<std::uint32_t>{1, 2});
  CHECK(seqnos == std::vector<std::uint32_t>{1, 2});
  CHECK_FALSE(line.is_active());

  // Two coroutines at once: the second throws at its co_await.
  auto both = [&]() -> evw::Task<void> {
    co_await evw::when_all(line.edge(), line.edge());
  };
  CHECK_THROWS_AS(evw::sync_wait(loop, both()), std::logic_error);
  CHECK_FALSE(line.is_active());

  // Cancelled while its event is ready but not yet delivered: never resumed,
  // and the event goes to the callback alone once the watcher runs again.
  bool resumed = false;
  auto waiting = [&]() -> evw::Task<void> {
    co_await line.edge();
    resumed = true;
  };
  evw::Timer boom(loop, 0.001, 0.0, [&](evw::Timer&, int) {
    CHECK(line.is_active());  // started for the wait
    put(in, record(evw::Edge::Falling, 3));
    throw std::runtime_error("boom");
  });
  boom.set_priority(evw::max_priority);
  boom.start();
  CHECK_THROWS_AS(evw::sync_wait(loop, waiting()), std::runtime_error);
  CHECK_FALSE(line.is_active());
  line.start();
  CHECK(evw_test::run_until(loop, [&] { return seqnos.size() == 3; }));
  CHECK(seqnos == std::vector<std::uint32_t>{1, 2, 3});
  CHECK_FALSE(resumed);
  line.stop();
  CHECK(loop.run(evw::Run::NoWait) == false);
}

TEST_CASE("coro: gpio.edge() whose watcher is destroyed during the wait: never resumed, cancelled safely") {
  evw::Loop loop;
  Pipe pipe;
  int calls = 0;
  auto line = std::make_unique<evw::GpioLine>(loop, evw::GpioLine::RequestFd{pipe.read_end.release()},
                                              [&](evw::GpioLine&, int) { ++calls; });
  bool resumed = false;
  auto waiting = [&]() -> evw::Task<void> {
    co_await line->edge();
    resumed = true;
  };
  evw::Timer boom(loop, 0.001, 0.0, [&](evw::Timer&, int) {
    put(pipe.write_end.get(), record(evw::Edge::Rising, 1));
    line.reset();  // the relay goes with it
    throw std::runtime_error("boom");
  });
  boom.start();
  CHECK_THROWS_AS(evw::sync_wait(loop, waiting()), std::runtime_error);  // the task is destroyed
  CHECK_FALSE(resumed);
  CHECK(calls == 0);
  CHECK(loop.watcher_count() == 1);  // boom
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}
