// Idle: runs only when nothing of its priority or higher is pending, keeps
// the loop from blocking; set_priority on pending idles, destruction in
// callbacks, detaching.
#include <evw/watchers/idle.hpp>
#include <evw/core/loop.hpp>
#include <evw/watchers/io.hpp>
#include <evw/watchers/timer.hpp>

#include <doctest/doctest.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "support.hpp"

TEST_CASE("Idle runs while the loop is otherwise idle, without letting it block") {
  evw::Loop loop;
  int calls = 0, last = 0;
  evw::Timer far(loop, 30.0, 0.0, [](evw::Timer&, int) {});
  evw::Idle idle(loop, [&](evw::Idle& w, int revents) {
    last = revents;
    if (++calls == 3) {
      w.stop();
      far.stop();
    }
  });
  CHECK_FALSE(idle.is_active());
  far.start();
  idle.start();
  auto begin = std::chrono::steady_clock::now();
  CHECK_FALSE(loop.run());
  CHECK(std::chrono::steady_clock::now() - begin < std::chrono::seconds(5));
  CHECK(calls == 3);
  CHECK(last == evw::Event::Idle);
}

TEST_CASE("Idle is starved by pending events of its priority or higher, not lower") {
  auto [a, b] = evw_test::socket_pair();
  REQUIRE(::send(b.get(), "x", 1, 0) == 1);
  evw::Loop loop;
  std::vector<std::string> log;
  int busy = 0;
  // Level-triggered: readable until read, so it is pending every iteration.
  evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    log.push_back("io");
    if (++busy == 3) {
      char c;
      CHECK(::recv(w.fd(), &c, 1, 0) == 1);
    }
  });
  evw::Idle low(loop, [&](evw::Idle& w, int) {
    log.push_back("idle0");
    w.stop();
    io.stop();
  });
  evw::Idle high(loop, [&](evw::Idle& w, int) {
    log.push_back("idle1");
    w.stop();
  });
  high.set_priority(1);
  io.start();
  low.start();
  high.start();
  loop.run();
  CHECK(log == std::vector<std::string>{"idle1", "io", "io", "io", "idle0"});
}

TEST_CASE("Idle set_priority on a pending idle delivers it once") {
  evw::Loop loop;
  int calls = 0;
  evw::Idle idle(loop, [&](evw::Idle& w, int) {
    ++calls;
    w.stop();
  });
  idle.feed(evw::Event::Idle);  // pending without being active
  idle.set_priority(-2);
  CHECK(idle.is_pending());
  CHECK_FALSE(idle.is_active());
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  idle.start();
  idle.feed(evw::Event::Idle);
  idle.set_priority(2);
  CHECK(idle.is_active());
  loop.run(evw::Run::NoWait);  // the fed event; the stop in the callback ends it
  CHECK(calls == 2);
  CHECK_FALSE(idle.is_active());
}

TEST_CASE("Idle priorities order its events among other watcher types") {
  evw::Loop loop;
  std::vector<int> order;
  evw::Idle i(loop, [&](evw::Idle&, int) { order.push_back(0); });
  evw::Timer t(loop, 10.0, 0.0, [&](evw::Timer&, int) { order.push_back(1); });
  i.set_priority(-1);
  t.set_priority(1);
  i.feed(evw::Event::Idle);
  t.feed(evw::Event::Timer);
  loop.run(evw::Run::NoWait);
  CHECK(order == std::vector<int>{1, 0});
}

TEST_CASE("Idle user data and destruction inside its own callback") {
  evw::Loop loop;
  int seen = 0;
  std::unique_ptr<evw::Idle> self;
  self = std::make_unique<evw::Idle>(loop, [&](evw::Idle& w, int) {
    seen = std::any_cast<int>(w.data());
    self.reset();
  });
  self->data() = 5;
  self->start();
  CHECK_FALSE(loop.run());
  CHECK(seen == 5);
  CHECK(loop.watcher_count() == 0);
  auto& owned = loop.add<evw::Idle>([](evw::Idle& w, int) { w.loop().remove(w); });
  owned.start();
  CHECK_FALSE(loop.run());
  CHECK(loop.watcher_count() == 0);
}

TEST_CASE("an Idle whose loop is destroyed while active becomes detached") {
  auto loop = std::make_unique<evw::Loop>();
  evw::Idle idle(*loop, [](evw::Idle&, int) {});
  idle.start();
  idle.feed(evw::Event::Idle);
  loop.reset();
  CHECK_FALSE(idle.is_attached());
  CHECK_FALSE(idle.is_active());
  CHECK_FALSE(idle.is_pending());
  CHECK_THROWS_AS(idle.start(), std::logic_error);
  idle.stop();
}

TEST_CASE("a loop-owned Idle active when its loop is destroyed is destroyed with it") {
  auto loop = std::make_unique<evw::Loop>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> alive = token;
  auto& owned = loop->add<evw::Idle>([token](evw::Idle&, int) {});
  owned.start();
  owned.feed(evw::Event::Idle);  // active and pending
  token.reset();
  REQUIRE_FALSE(alive.expired());  // held by the watcher's callback
  loop.reset();
  CHECK(alive.expired());
}
