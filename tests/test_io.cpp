// Io: readiness on socketpairs; set/set_priority on active and pending
// watchers; priorities; destruction in callbacks; bad input.
#include <evw/watchers/io.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>

#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "support.hpp"

using evw_test::run_until;

namespace {
void put(int fd, const char* s = "x") { REQUIRE(::write(fd, s, 1) == 1); }
void drain(int fd) {
  char buf[256];
  while (::read(fd, buf, sizeof buf) > 0) {}
}
}  // namespace

TEST_CASE("Io is constructed stopped, fires on Event::Read and Event::Write, stops") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  int reads = 0, writes = 0, last = 0;
  evw::Io r(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int revents) {
    ++reads;
    last = revents;
    drain(w.fd());
  });
  evw::Io wr(loop, b.get(), evw::Event::Write, [&](evw::Io& w, int) {
    ++writes;
    w.stop();
  });
  CHECK_FALSE(r.is_active());
  CHECK(r.fd() == a.get());
  CHECK(r.events() == evw::Event::Read);
  CHECK(&r.loop() == &loop);
  r.start();
  wr.start();
  CHECK(r.is_active());
  put(b.get());
  CHECK(run_until(loop, [&] { return reads == 1 && writes == 1; }));
  CHECK(last == evw::Event::Read);
  r.stop();
  CHECK_FALSE(r.is_active());
  put(b.get());
  loop.run(evw::Run::NoWait);
  CHECK(reads == 1);
  CHECK_FALSE(loop.run(evw::Run::NoWait));  // nothing active: run() says so
}

TEST_CASE("Io rejects bad input with typed exceptions and the loop keeps working") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  auto cb = [](evw::Io&, int) {};
  CHECK_THROWS_AS(evw::Io(loop, -1, evw::Event::Read, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Io(loop, a.get(), 0, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Io(loop, a.get(), 0x80, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Io(loop, a.get(), evw::Event::Read | evw::Event::Timer, cb), std::invalid_argument);
  try {
    evw::Io(loop, a.get(), evw::Event::Pri, cb);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("evw::Priority") != std::string::npos);
  }
  evw::Io io(loop, a.get(), evw::Event::Read, cb);
  CHECK_THROWS_AS(io.set(-5, evw::Event::Read), std::invalid_argument);
  CHECK(io.fd() == a.get());  // a refused set() changes nothing
  CHECK_THROWS_AS(io.set_priority(3), std::out_of_range);
  CHECK_THROWS_AS(io.set_priority(-3), std::out_of_range);
  CHECK(io.priority() == 0);

  int closed = ::dup(a.get());
  ::close(closed);
  evw::Io dead(loop, closed, evw::Event::Read, cb);
  try {
    dead.start();
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == EBADF);
    CHECK(std::string(e.what()).find("fd " + std::to_string(closed)) != std::string::npos);
  }
  CHECK_FALSE(dead.is_active());
  CHECK(loop.watcher_count() == 2);
  int fired = 0;
  evw::Io ok(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) { ++fired; drain(w.fd()); });
  ok.start();
  put(b.get());
  CHECK(run_until(loop, [&] { return fired == 1; }));
}

TEST_CASE("Io set() while active watches the new fd and events") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  auto [c, d] = evw_test::socket_pair();
  std::vector<int> seen;
  evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int revents) {
    seen.push_back(w.fd());
    if (revents & evw::Event::Read) drain(w.fd());
    if (revents & evw::Event::Write) w.stop();
  });
  io.start();
  io.set(c.get(), evw::Event::Read);
  CHECK(io.is_active());
  put(b.get());  // the old fd: ignored now
  put(d.get());
  CHECK(run_until(loop, [&] { return !seen.empty(); }));
  loop.run(evw::Run::NoWait);
  CHECK(seen == std::vector<int>{c.get()});
  io.set_events(evw::Event::Read | evw::Event::Write);
  CHECK(io.events() == (evw::Event::Read | evw::Event::Write));
  CHECK(run_until(loop, [&] { return !io.is_active(); }));
}

TEST_CASE("Io set() and set_priority() on a pending watcher deliver the event once") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  auto [c, d] = evw_test::socket_pair();
  int calls = 0, last_fd = -1, last_rev = 0;
  evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int revents) {
    ++calls;
    last_fd = w.fd();
    last_rev = revents;
  });
  io.start();
  io.feed(evw::Event::Read);
  CHECK(io.is_pending());
  io.set(c.get(), evw::Event::Read);
  CHECK(io.is_pending());
  io.set_priority(2);
  CHECK(io.is_pending());
  CHECK(io.priority() == 2);
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  CHECK(last_fd == c.get());
  CHECK(last_rev == evw::Event::Read);
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);

  // also when the watcher is inactive but pending (fed while stopped)
  io.stop();
  io.feed(evw::Event::Write);
  io.set(a.get(), evw::Event::Write);
  CHECK_FALSE(io.is_active());
  loop.run(evw::Run::NoWait);
  CHECK(calls == 2);
  CHECK(last_rev == evw::Event::Write);
}

TEST_CASE("stop() clears a pending Io event; clear_pending() returns it") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  int calls = 0;
  evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io&, int) { ++calls; });
  io.start();
  io.feed(evw::Event::Read);
  io.stop();
  CHECK_FALSE(io.is_pending());
  loop.run(evw::Run::NoWait);
  CHECK(calls == 0);
  io.feed(evw::Event::Read | evw::Event::Write);
  CHECK(io.clear_pending() == (evw::Event::Read | evw::Event::Write));
  loop.run(evw::Run::NoWait);
  CHECK(calls == 0);
}

TEST_CASE("Io priorities order callbacks within one iteration, both ways") {
  for (int high : {0, 1}) {
    evw::Loop loop;
    auto [a, b] = evw_test::socket_pair();
    auto [c, d] = evw_test::socket_pair();
    std::vector<int> order;
    evw::Io w0(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) { order.push_back(0); drain(w.fd()); });
    evw::Io w1(loop, c.get(), evw::Event::Read, [&](evw::Io& w, int) { order.push_back(1); drain(w.fd()); });
    (high == 0 ? w0 : w1).set_priority(evw::max_priority);
    (high == 0 ? w1 : w0).set_priority(evw::min_priority);
    w0.start();
    w1.start();
    put(b.get());
    put(d.get());
    CHECK(run_until(loop, [&] { return order.size() == 2; }));
    CHECK(order == std::vector<int>{high, 1 - high});
  }
}

TEST_CASE("Io user data holds anything") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  std::string got;
  evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    got = std::any_cast<std::string>(w.data());
    w.stop();
  });
  CHECK_FALSE(io.data().has_value());
  io.data() = 42;
  CHECK(std::any_cast<int>(io.data()) == 42);
  io.data() = std::string("hello");
  io.start();
  put(b.get());
  CHECK(run_until(loop, [&] { return !got.empty(); }));
  CHECK(got == "hello");
}

TEST_CASE("an Io destroyed inside its own callback, or destroying another pending one, is safe") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  int first = 0, second = 0;
  std::unique_ptr<evw::Io> victim;
  auto self = std::make_unique<evw::Io>(loop, a.get(), evw::Event::Read, [&](evw::Io&, int) {
    ++first;
    victim.reset();  // pending in this same iteration
  });
  victim = std::make_unique<evw::Io>(loop, a.get(), evw::Event::Read, [&](evw::Io&, int) { ++second; });
  self->set_priority(1);
  self->start();
  victim->start();
  put(b.get());
  CHECK(run_until(loop, [&] { return first == 1; }));
  CHECK(second == 0);

  self->set_callback([&](evw::Io&, int) {
    ++first;
    self.reset();  // the running watcher destroys itself
  });
  CHECK(run_until(loop, [&] { return !self; }));
  CHECK(first == 2);
  CHECK(loop.watcher_count() == 0);
}

TEST_CASE("many Io watchers on one fd all fire") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  constexpr int kWatchers = 16;
  int fired = 0;
  std::vector<std::unique_ptr<evw::Io>> ios;
  for (int i = 0; i < kWatchers; ++i) {
    ios.push_back(std::make_unique<evw::Io>(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
      ++fired;
      w.stop();
    }));
    ios.back()->start();
  }
  put(b.get());
  CHECK(run_until(loop, [&] { return fired == kWatchers; }));
  loop.run(evw::Run::NoWait);
  CHECK(fired == kWatchers);
}

TEST_CASE("an Io whose loop is destroyed while it is active becomes detached") {
  auto [a, b] = evw_test::socket_pair();
  auto loop = std::make_unique<evw::Loop>();
  evw::Io io(*loop, a.get(), evw::Event::Read, [](evw::Io&, int) {});
  io.start();
  loop.reset();
  CHECK_FALSE(io.is_active());
  CHECK_THROWS_AS(io.start(), std::logic_error);
}

TEST_CASE("a loop-owned Io active when its loop is destroyed is destroyed with it") {
  auto [a, b] = evw_test::socket_pair();
  auto loop = std::make_unique<evw::Loop>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> alive = token;
  auto& owned = loop->add<evw::Io>(a.get(), evw::Event::Read, [token](evw::Io&, int) {});
  owned.start();
  owned.feed(evw::Event::Read);  // active and pending
  token.reset();
  REQUIRE_FALSE(alive.expired());  // held by the watcher's callback
  loop.reset();
  CHECK(alive.expired());
}

// ---- an fd closed before libev registered it --------------------------------
// libev hands start()/stop() changes to epoll at the start of the next
// iteration and aborts (assert) on EBADF there. Each case runs in a child, so
// that an abort fails this test and not the whole suite.


TEST_CASE("an fd closed after Io::start() but before the loop ran: the watcher stops with Event::Error") {
  CHECK(evw_test::passes_in_child([] {
    auto [a, b] = evw_test::socket_pair();
    evw::Loop loop;
    int got = 0;
    evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io&, int revents) { got = revents; });
    io.start();
    ::close(a.release());
    loop.run(evw::Run::NoWait);
    return (got & evw::Event::Error) && (got & evw::Event::Read) && !io.is_active() && !loop.run(evw::Run::NoWait);
  }));
}

TEST_CASE("an fd closed under two Io watchers, one of which then stops: the other stops with Event::Error") {
  CHECK(evw_test::passes_in_child([] {
    auto [a, b] = evw_test::socket_pair();
    evw::Loop loop;
    int reads = 0, writes = 0, errors = 0;
    evw::Io reader(loop, a.get(), evw::Event::Read, [&](evw::Io&, int r) { ++reads, errors += (r & evw::Event::Error) != 0; });
    evw::Io writer(loop, a.get(), evw::Event::Write, [&](evw::Io& w, int r) {
      ++writes;
      errors += (r & evw::Event::Error) != 0;
      if (!(r & evw::Event::Error)) w.stop();
    });
    reader.start();
    writer.start();
    loop.run(evw::Run::NoWait);  // registered; writer saw Event::Write and stopped
    if (writes != 1 || errors != 0) return false;
    writer.start();
    loop.run(evw::Run::NoWait);
    ::close(a.release());  // now closed under both: stopping one modifies the other
    writer.stop();
    loop.run(evw::Run::NoWait);
    return errors == 1 && reads == 1 && !reader.is_active() && !loop.run(evw::Run::NoWait);
  }));
}

TEST_CASE("an fd closed and reused by another file before the loop ran: the Io watches the new file") {
  CHECK(evw_test::passes_in_child([] {
    auto [a, b] = evw_test::socket_pair();
    evw::Loop loop;
    int got = 0;
    const int fd = a.get();
    evw::Io io(loop, fd, evw::Event::Read, [&](evw::Io&, int revents) { got |= revents; });
    io.start();
    ::close(a.release());
    auto [c, d] = evw_test::socket_pair();  // the lowest free number: fd again
    if (c.get() != fd) return false;
    if (::write(d.get(), "x", 1) != 1) return false;
    loop.run(evw::Run::NoWait);
    return got == evw::Event::Read && io.is_active();
  }));
}

TEST_CASE("the closed-fd check never keeps run() going") {
  auto [a, b] = evw_test::socket_pair();
  evw::Loop loop;
  evw::Io io(loop, a.get(), evw::Event::Read, [](evw::Io&, int) {});
  io.start();
  io.stop();  // both noted for the check: nothing is active, so run() returns at once
  CHECK_FALSE(loop.run());
  io.start();
  CHECK(loop.run(evw::Run::NoWait));
  io.stop();
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("after fork() a child that closes a watched fd and calls loop.fork(): the Io stops with Event::Error") {
  auto fds = evw_test::socket_pair();  // not a structured binding: the lambda below uses it
  auto& a = fds.first;
  auto& b = fds.second;
  evw::Loop loop;
  int got = 0;
  evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io&, int revents) { got = revents; });
  evw::Io other(loop, b.get(), evw::Event::Write, [](evw::Io& w, int) { w.stop(); });
  io.start();
  other.start();
  loop.run(evw::Run::NoWait);  // both registered in the parent's epoll
  // libev registers every fd again in the child's new epoll; one the child
  // closed must not reach epoll_ctl (EBADF there is a libev assert).
  CHECK(evw_test::passes_in_child([&] {
    ::close(a.release());
    loop.fork();
    loop.run(evw::Run::NoWait);
    return (got & evw::Event::Error) && !io.is_active();
  }));
  // The parent's loop is untouched.
  REQUIRE(::write(b.get(), "x", 1) == 1);
  CHECK(evw_test::run_until(loop, [&] { return got == evw::Event::Read; }));
}

TEST_CASE("with LoopFlag::ForkCheck a child that closes a watched fd and just runs: the Io stops with Event::Error") {
  auto fds = evw_test::socket_pair();  // not a structured binding: the lambda below uses it
  auto& a = fds.first;
  evw::Loop loop(evw::LoopFlag::ForkCheck);
  int got = 0;
  evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io&, int revents) { got = revents; });
  io.start();
  loop.run(evw::Run::NoWait);
  CHECK(evw_test::passes_in_child([&] {
    ::close(a.release());
    loop.run(evw::Run::NoWait);  // libev notices the new pid itself
    return (got & evw::Event::Error) && !io.is_active();
  }));
}
