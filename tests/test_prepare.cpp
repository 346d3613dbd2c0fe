// Prepare: runs before the loop blocks, may start watchers for the same
// iteration; set_priority on pending prepares, destruction in callbacks,
// detaching.
#include <evw/watchers/prepare.hpp>
#include <evw/core/loop.hpp>
#include <evw/watchers/check.hpp>
#include <evw/watchers/io.hpp>
#include <evw/watchers/timer.hpp>

#include <doctest/doctest.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "support.hpp"

TEST_CASE("Prepare runs before the wait, Check after it, then the events") {
  // Plain references, not a structured binding: a lambda captures them (clang < 16 refuses a binding).
  auto sockets = evw_test::socket_pair();
  auto& a = sockets.first;
  auto& b = sockets.second;
  evw::Loop loop;
  std::vector<std::string> log;
  int last = 0;
  evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    log.push_back("io");
    char c;
    CHECK(::recv(a.get(), &c, 1, 0) == 1);
    w.stop();
  });
  evw::Prepare prepare(loop, [&](evw::Prepare&, int revents) {
    last = revents;
    log.push_back("prepare");
    // What the iteration's wait will find.
    if (log.size() == 1) CHECK(::send(b.get(), "x", 1, 0) == 1);
  });
  evw::Check check(loop, [&](evw::Check&, int) { log.push_back("check"); });
  prepare.start();
  check.start();
  io.start();
  loop.run(evw::Run::Once);
  CHECK(last == evw::Event::Prepare);
  CHECK(log == std::vector<std::string>{"prepare", "check", "io"});
  prepare.stop();
  check.stop();
}

TEST_CASE("a Prepare may start watchers that count for this very iteration") {
  evw::Loop loop;
  std::vector<std::string> log;
  evw::Timer timer(loop, 0.0, 0.0, [&](evw::Timer&, int) { log.push_back("timer"); });
  evw::Prepare prepare(loop, [&](evw::Prepare& w, int) {
    log.push_back("prepare");
    timer.start();  // the wait takes it into account: no 60 s block
    w.stop();
  });
  prepare.start();
  loop.run();
  CHECK(log == std::vector<std::string>{"prepare", "timer"});
}

TEST_CASE("Prepare set_priority on a pending prepare delivers it once") {
  evw::Loop loop;
  int calls = 0;
  evw::Prepare prepare(loop, [&](evw::Prepare&, int) { ++calls; });
  prepare.start();
  prepare.feed(evw::Event::Prepare);
  prepare.set_priority(1);
  CHECK(prepare.is_pending());
  CHECK(prepare.is_active());
  prepare.stop();  // stop clears pending (libev semantics)
  loop.run(evw::Run::NoWait);
  CHECK(calls == 0);
  prepare.feed(evw::Event::Prepare);
  prepare.set_priority(-1);
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
}

TEST_CASE("Prepare priorities order its events among other watcher types") {
  evw::Loop loop;
  std::vector<int> order;
  evw::Prepare p(loop, [&](evw::Prepare&, int) { order.push_back(0); });
  evw::Timer t(loop, 10.0, 0.0, [&](evw::Timer&, int) { order.push_back(1); });
  evw::Check c(loop, [&](evw::Check&, int) { order.push_back(2); });
  p.set_priority(2);
  c.set_priority(-2);
  t.feed(evw::Event::Timer);
  c.feed(evw::Event::Check);
  p.feed(evw::Event::Prepare);
  loop.run(evw::Run::NoWait);
  CHECK(order == std::vector<int>{0, 1, 2});
}

TEST_CASE("Prepare user data and destruction inside its own callback") {
  evw::Loop loop;
  int seen = 0;
  std::unique_ptr<evw::Prepare> self;
  self = std::make_unique<evw::Prepare>(loop, [&](evw::Prepare& w, int) {
    seen = std::any_cast<int>(w.data());
    self.reset();
  });
  self->data() = 3;
  self->start();
  CHECK_FALSE(loop.run());
  CHECK(seen == 3);
  CHECK(loop.watcher_count() == 0);
  auto& owned = loop.add<evw::Prepare>([](evw::Prepare& w, int) { w.loop().remove(w); });
  owned.start();
  CHECK_FALSE(loop.run());
  CHECK(loop.watcher_count() == 0);
}

TEST_CASE("a Prepare whose loop is destroyed while active becomes detached") {
  auto loop = std::make_unique<evw::Loop>();
  evw::Prepare prepare(*loop, [](evw::Prepare&, int) {});
  prepare.start();
  loop.reset();
  CHECK_FALSE(prepare.is_attached());
  CHECK_FALSE(prepare.is_active());
  CHECK_THROWS_AS(prepare.start(), std::logic_error);
  CHECK_THROWS_AS(prepare.feed(evw::Event::Prepare), std::logic_error);
}

TEST_CASE("a loop-owned Prepare active when its loop is destroyed is destroyed with it") {
  auto loop = std::make_unique<evw::Loop>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> alive = token;
  auto& owned = loop->add<evw::Prepare>([token](evw::Prepare&, int) {});
  owned.start();
  owned.feed(evw::Event::Prepare);  // active and pending
  token.reset();
  REQUIRE_FALSE(alive.expired());  // held by the watcher's callback
  loop.reset();
  CHECK(alive.expired());
}
