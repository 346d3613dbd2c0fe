// The API contract of ../shared/DESIGN.md, written the way its snippet spells
// it: a rename or a changed signature fails this file's build, and each call
// is checked for what the contract says it does.
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <any>
#include <chrono>
#include <stdexcept>

#include "../tools/gpio-sim/gpio_sim.hpp"
#include "support.hpp"

using namespace std::chrono_literals;

TEST_CASE("contract: Loop, Io, Timer, Signal, Priority and loop-owned watchers as DESIGN.md spells them") {
  evw::Loop loop;
  evw::Loop& def = evw::Loop::default_loop();
  CHECK(def.is_default());
  CHECK_FALSE(loop.is_default());

  auto [a, b] = evw_test::socket_pair();
  auto [c, d] = evw_test::socket_pair();
  const int fd = a.get(), fd2 = c.get();
  int io_calls = 0;
  evw::Io io(loop, fd, evw::Event::Read, [&](evw::Io& w, int revents) {
    ++io_calls;
    CHECK(&w.loop() == &loop);
    CHECK((revents & (evw::Event::Read | evw::Event::Write)) != 0);
  });
  CHECK_FALSE(io.is_active());  // constructed stopped
  io.start();
  CHECK(io.is_active());
  io.set(fd2, evw::Event::Read | evw::Event::Write);  // while active
  CHECK(io.fd() == fd2);
  CHECK(io.events() == (evw::Event::Read | evw::Event::Write));
  io.set_priority(2);
  CHECK(io.priority() == 2);
  CHECK_THROWS_AS(io.set_priority(evw::max_priority + 1), std::out_of_range);
  io.data() = 42;
  CHECK(std::any_cast<int>(io.data()) == 42);
  io.feed(evw::Event::Read);
  CHECK(io.is_pending());
  io.set_priority(1);  // while pending: the event stays
  CHECK(io.is_pending());
  CHECK(loop.run(evw::Run::NoWait));
  CHECK(io_calls >= 1);
  io.stop();
  CHECK_FALSE(io.is_active());
  CHECK_FALSE(io.is_pending());

  int timer_calls = 0;
  evw::Timer t(loop, 1.5, 0.0, [&](evw::Timer&, int) { ++timer_calls; });
  evw::Timer t2(loop, 1500ms, 0s, [&](evw::Timer&, int) { ++timer_calls; });
  t.start();
  CHECK(t.remaining() > 0.0);
  t.set(0.0, 0.5);
  CHECK(t.repeat() == 0.5);
  t.again();
  CHECK(t.is_active());
  t.stop();
  CHECK_FALSE(t2.is_active());

  evw::Signal s(loop, SIGUSR1, [](evw::Signal&, int) {});
  CHECK(s.signum() == SIGUSR1);
  s.set(SIGUSR2);
  CHECK(s.signum() == SIGUSR2);

  auto [client, server] = evw_test::tcp_pair();
  auto [client2, server2] = evw_test::tcp_pair();
  evw::Priority p(loop, server.get(), [](evw::Priority&, int) {});
  p.set(server2.get());
  CHECK(p.fd() == server2.get());

  int owned_calls = 0;
  auto& owned = loop.add<evw::Timer>(0.0, 0.0, [&](evw::Timer&, int) { ++owned_calls; });
  owned.start();
  CHECK(loop.run() == false);  // the owned timer fires once; nothing stays active
  CHECK(owned_calls == 1);
  loop.remove(owned);

  evw::Timer stopper(loop, 0.0, 0.0, [&](evw::Timer&, int) { loop.stop(); });
  stopper.start();
  loop.run();
  loop.stop(evw::Break::All);
  CHECK(loop.now() > 0.0);
  loop.update_now();
  CHECK(loop.iteration() > 0);
  CHECK(loop.depth() == 0);
  CHECK(loop.backend() != 0);
  CHECK(loop.raw() != nullptr);
  loop.fork();  // in the parent too: harmless
}

TEST_CASE("contract: Gpio as DESIGN.md spells it, on the simulator") {
  if (auto why = evw::sim::GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  auto sim = evw::sim::GpioSim::in_temp_dir();
  evw::Loop loop;
  int level = -1;
  evw::GpioConfig config{.edge = evw::Edge::Both};
  config.sysfs_root = sim->root();
  evw::Gpio g(loop, 17, config, [&](evw::Gpio& w, int) {
    level = w.value();
    loop.stop();
  });
  g.start();
  sim->set_input(17, 1);
  CHECK(evw_test::run_until(loop, [&] { return level == 1; }));
}
