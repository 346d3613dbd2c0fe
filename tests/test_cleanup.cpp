// Cleanup: runs during ~Loop after every other watcher stopped, does not keep
// run() going, its exceptions stay inside ~Loop; set_priority on pending
// cleanups, destruction in callbacks, detaching.
#include <evw/watchers/cleanup.hpp>
#include <evw/core/loop.hpp>
#include <evw/watchers/timer.hpp>

#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "support.hpp"

TEST_CASE("Cleanup runs while its loop is destroyed, after the other watchers stopped") {
  int calls = 0, last = 0;
  bool timer_attached = true;
  auto loop = std::make_unique<evw::Loop>();
  evw::Timer timer(*loop, 10.0, 0.0, [](evw::Timer&, int) {});
  evw::Cleanup cleanup(*loop, [&](evw::Cleanup& w, int revents) {
    ++calls;
    last = revents;
    timer_attached = timer.is_attached();
    CHECK(w.is_attached());
  });
  evw::Cleanup stopped(*loop, [&](evw::Cleanup&, int) { calls += 100; });
  timer.start();
  cleanup.start();
  CHECK(cleanup.is_active());
  timer.stop();
  CHECK_FALSE(loop->run());  // an active Cleanup does not keep the loop running
  CHECK(calls == 0);
  timer.start();
  loop.reset();
  CHECK(calls == 1);
  CHECK(last == evw::Event::Cleanup);
  CHECK_FALSE(timer_attached);
  CHECK_FALSE(cleanup.is_attached());
  CHECK_FALSE(cleanup.is_active());
  CHECK_THROWS_AS(cleanup.start(), std::logic_error);
}

TEST_CASE("loop-owned Cleanup watchers run and are destroyed with the loop") {
  int calls = 0;
  {
    evw::Loop loop;
    loop.add<evw::Cleanup>([&](evw::Cleanup&, int) { ++calls; }).start();
    loop.add<evw::Cleanup>([&](evw::Cleanup&, int) { ++calls; });  // never started
    CHECK(loop.watcher_count() == 2);
  }
  CHECK(calls == 1);
}

TEST_CASE("an exception from a Cleanup during ~Loop does not escape and the others still run") {
  int calls = 0;
  {
    evw::Loop loop;
    auto& a = loop.add<evw::Cleanup>([&](evw::Cleanup&, int) {
      ++calls;
      throw std::runtime_error("cleanup a");
    });
    auto& b = loop.add<evw::Cleanup>([&](evw::Cleanup&, int) {
      ++calls;
      throw std::runtime_error("cleanup b");
    });
    a.start();
    b.start();
  }  // ~Loop must not throw (it would terminate)
  CHECK(calls == 2);
}

TEST_CASE("a Cleanup may destroy itself inside its callback during ~Loop") {
  int calls = 0;
  auto loop = std::make_unique<evw::Loop>();
  std::unique_ptr<evw::Cleanup> self;
  self = std::make_unique<evw::Cleanup>(*loop, [&](evw::Cleanup& w, int) {
    calls += std::any_cast<int>(w.data());
    self.reset();
  });
  self->data() = 1;
  self->start();
  auto& owned = loop->add<evw::Cleanup>([&](evw::Cleanup& w, int) {
    calls += 10;
    w.loop().remove(w);
  });
  owned.start();
  loop.reset();
  CHECK(calls == 11);
  CHECK(self == nullptr);
}

TEST_CASE("a fed Cleanup event is an ordinary event: its exception comes out of run()") {
  evw::Loop loop;
  int calls = 0;
  evw::Cleanup c(loop, [&](evw::Cleanup&, int) {
    if (++calls == 1) throw std::logic_error("fed");
  });
  c.start();
  c.feed(evw::Event::Cleanup);
  CHECK_THROWS_AS(loop.run(), std::logic_error);
  CHECK(calls == 1);
  c.stop();
}

TEST_CASE("Cleanup set_priority on a pending cleanup delivers it once") {
  evw::Loop loop;
  int calls = 0;
  evw::Cleanup c(loop, [&](evw::Cleanup&, int) { ++calls; });
  c.start();
  c.feed(evw::Event::Cleanup);
  c.set_priority(-1);
  CHECK(c.is_pending());
  CHECK(c.is_active());
  CHECK_FALSE(loop.run(evw::Run::NoWait));  // still not counted as keeping the loop alive
  CHECK(calls == 1);
  c.stop();
}

TEST_CASE("Cleanup priorities order its events among other watcher types") {
  evw::Loop loop;
  std::vector<int> order;
  evw::Cleanup c(loop, [&](evw::Cleanup&, int) { order.push_back(0); });
  evw::Timer t(loop, 10.0, 0.0, [&](evw::Timer&, int) { order.push_back(1); });
  c.set_priority(2);
  t.feed(evw::Event::Timer);
  c.feed(evw::Event::Cleanup);
  loop.run(evw::Run::NoWait);
  CHECK(order == std::vector<int>{0, 1});
}

TEST_CASE("a Cleanup started and stopped again does not run when its loop is destroyed") {
  int started = 0, stopped = 0;
  auto loop = std::make_unique<evw::Loop>();
  evw::Cleanup on(*loop, [&](evw::Cleanup&, int) { ++started; });
  evw::Cleanup off(*loop, [&](evw::Cleanup&, int) { ++stopped; });
  on.start();
  off.start();
  CHECK(off.is_active());
  off.stop();
  CHECK_FALSE(off.is_active());
  loop.reset();  // before the watchers: their destructors would stop them
  CHECK(started == 1);
  CHECK(stopped == 0);
}

TEST_CASE("Cleanup set_priority while active keeps it active: it runs once at ~Loop") {
  int calls = 0, pri = 0;
  auto loop = std::make_unique<evw::Loop>();
  evw::Cleanup c(*loop, [&](evw::Cleanup& w, int) {
    ++calls;
    pri = w.priority();
  });
  c.start();
  c.set_priority(2);
  CHECK(c.is_active());
  CHECK_FALSE(c.is_pending());
  CHECK_FALSE(loop->run(evw::Run::NoWait));
  CHECK(calls == 0);
  loop.reset();
  CHECK(calls == 1);
  CHECK(pri == 2);
}

TEST_CASE("a Cleanup stopping itself inside its callback is safe, at a fed event and during ~Loop") {
  int fed = 0, at_destroy = 0;
  auto loop = std::make_unique<evw::Loop>();
  evw::Cleanup c(*loop, [&](evw::Cleanup& w, int) {
    ++fed;
    w.stop();
  });
  c.start();
  c.feed(evw::Event::Cleanup);
  loop->run(evw::Run::NoWait);
  CHECK(fed == 1);
  CHECK_FALSE(c.is_active());
  evw::Cleanup d(*loop, [&](evw::Cleanup& w, int) {
    ++at_destroy;
    w.stop();
  });
  d.start();
  loop.reset();
  CHECK(fed == 1);  // stopped: not run by ~Loop
  CHECK(at_destroy == 1);
  CHECK_FALSE(d.is_active());
  CHECK_FALSE(d.is_attached());
}

TEST_CASE("a loop-owned Cleanup active when its loop is destroyed runs and is destroyed with it") {
  int calls = 0;
  auto loop = std::make_unique<evw::Loop>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> alive = token;
  loop->add<evw::Cleanup>([token, &calls](evw::Cleanup&, int) { ++calls; }).start();
  token.reset();
  REQUIRE_FALSE(alive.expired());  // held by the watcher's callback
  loop.reset();
  CHECK(calls == 1);
  CHECK(alive.expired());
}
