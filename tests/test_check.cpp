// Check: runs after the wait, first among its priority, after higher
// priorities; with Prepare it hands a foreign library its events;
// set_priority on pending checks, destruction in callbacks, detaching.
#include <evw/watchers/check.hpp>
#include <evw/core/loop.hpp>
#include <evw/watchers/io.hpp>
#include <evw/watchers/prepare.hpp>
#include <evw/watchers/timer.hpp>

#include <doctest/doctest.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "support.hpp"

TEST_CASE("Check runs after higher-priority events and before those of its own priority") {
  auto [a, b] = evw_test::socket_pair();
  REQUIRE(::send(b.get(), "x", 1, 0) == 1);
  evw::Loop loop;
  std::vector<std::string> log;
  int last = 0;
  evw::Io high(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    log.push_back("io1");
    w.stop();
  });
  evw::Io same(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    log.push_back("io0");
    w.stop();
  });
  evw::Check check(loop, [&](evw::Check& w, int revents) {
    last = revents;
    log.push_back("check");
    w.stop();
  });
  high.set_priority(1);
  high.start();
  same.start();
  check.start();
  loop.run(evw::Run::Once);
  CHECK(last == evw::Event::Check);
  CHECK(log == std::vector<std::string>{"io1", "check", "io0"});
}

TEST_CASE("Prepare and Check hand a poll()-style library its events via clear_pending") {
  // Plain references, not a structured binding: a lambda captures them (clang < 16 refuses a binding).
  auto sockets = evw_test::socket_pair();
  auto& a = sockets.first;
  auto& b = sockets.second;
  evw::Loop loop;
  std::unique_ptr<evw::Io> io;
  int io_callbacks = 0, library_saw = 0;
  evw::Prepare prepare(loop, [&](evw::Prepare&, int) {
    io = std::make_unique<evw::Io>(loop, a.get(), evw::Event::Read, [&](evw::Io&, int) { ++io_callbacks; });
    io->start();
  });
  evw::Check check(loop, [&](evw::Check&, int) {
    library_saw |= io->clear_pending();  // the Io's own callback never runs
    io.reset();
    if (library_saw) loop.stop();
  });
  prepare.start();
  check.start();
  REQUIRE(::send(b.get(), "x", 1, 0) == 1);
  CHECK(evw_test::run_until(loop, [&] { return library_saw != 0; }));
  CHECK(library_saw == evw::Event::Read);
  CHECK(io_callbacks == 0);
  prepare.stop();
  check.stop();
}

TEST_CASE("Check set_priority on a pending check delivers it once") {
  evw::Loop loop;
  int calls = 0;
  evw::Check check(loop, [&](evw::Check& w, int) {
    ++calls;
    w.stop();
  });
  check.start();
  check.feed(evw::Event::Check);
  check.set_priority(-2);
  CHECK(check.is_pending());
  CHECK(check.is_active());
  CHECK(check.priority() == -2);
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  CHECK_FALSE(check.is_active());
}

TEST_CASE("Check priorities order its events among other watcher types") {
  evw::Loop loop;
  std::vector<int> order;
  evw::Check c(loop, [&](evw::Check&, int) { order.push_back(0); });
  evw::Timer t(loop, 10.0, 0.0, [&](evw::Timer&, int) { order.push_back(1); });
  c.set_priority(1);
  t.feed(evw::Event::Timer);
  c.feed(evw::Event::Check);
  loop.run(evw::Run::NoWait);
  CHECK(order == std::vector<int>{0, 1});
}

TEST_CASE("Check user data and destruction inside its own callback") {
  evw::Loop loop;
  int seen = 0;
  std::unique_ptr<evw::Check> self;
  self = std::make_unique<evw::Check>(loop, [&](evw::Check& w, int) {
    seen = std::any_cast<int>(w.data());
    self.reset();
  });
  self->data() = 4;
  self->start();
  CHECK_FALSE(loop.run(evw::Run::NoWait));  // a lone Check would block: nothing wakes the loop
  CHECK(seen == 4);
  CHECK(loop.watcher_count() == 0);
  auto& owned = loop.add<evw::Check>([](evw::Check& w, int) { w.loop().remove(w); });
  owned.start();
  CHECK_FALSE(loop.run(evw::Run::NoWait));
  CHECK(loop.watcher_count() == 0);
}

TEST_CASE("a Check whose loop is destroyed while active becomes detached") {
  auto loop = std::make_unique<evw::Loop>();
  evw::Check check(*loop, [](evw::Check&, int) {});
  check.start();
  check.feed(evw::Event::Check);
  loop.reset();
  CHECK_FALSE(check.is_attached());
  CHECK_FALSE(check.is_active());
  CHECK_FALSE(check.is_pending());
  CHECK_THROWS_AS(check.start(), std::logic_error);
}

TEST_CASE("a loop-owned Check active when its loop is destroyed is destroyed with it") {
  auto loop = std::make_unique<evw::Loop>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> alive = token;
  auto& owned = loop->add<evw::Check>([token](evw::Check&, int) {});
  owned.start();
  owned.feed(evw::Event::Check);  // active and pending
  token.reset();
  REQUIRE_FALSE(alive.expired());  // held by the watcher's callback
  loop.reset();
  CHECK(alive.expired());
}
