// Embed: an epoll loop inside another loop (Io on the inner loop fires while
// only the outer one runs), sweep, exceptions from the inner loop, bad input
// (self, non-embeddable backend, circles), destruction order, set on
// active/pending watchers, priorities, destruction in callbacks, detaching.
#include <evw/watchers/embed.hpp>
#include <evw/core/loop.hpp>
#include <evw/watchers/io.hpp>
#include <evw/watchers/timer.hpp>

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "support.hpp"

using evw_test::run_until;

namespace {

struct Boom : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void drain(int fd) {
  char buf[64];
  while (::recv(fd, buf, sizeof buf, 0) > 0) {
  }
}

}  // namespace

TEST_CASE("an Io on an embedded epoll loop fires while only the outer loop runs") {
  auto [a, b] = evw_test::socket_pair();
  evw::Loop outer(evw::Backend::Poll);  // any backend may embed
  evw::Loop inner(evw::Backend::Epoll);
  int reads = 0;
  evw::Io io(inner, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    drain(w.fd());
    ++reads;
  });
  evw::Embed embed(outer, inner);  // sweeps by itself
  CHECK(&embed.other() == &inner);
  CHECK(embed.other_exists());
  io.start();
  embed.start();
  outer.run(evw::Run::NoWait);
  REQUIRE(::send(b.get(), "x", 1, 0) == 1);
  CHECK(run_until(outer, [&] { return reads == 1; }));
  REQUIRE(::send(b.get(), "y", 1, 0) == 1);
  CHECK(run_until(outer, [&] { return reads == 2; }));
  io.stop();
  embed.stop();
  CHECK_FALSE(outer.run(evw::Run::NoWait));
}

TEST_CASE("Embed with its own callback: revents Event::Embed, sweep() runs the inner loop") {
  auto [a, b] = evw_test::socket_pair();
  evw::Loop outer;
  evw::Loop inner(evw::Backend::Epoll);
  int reads = 0, embeds = 0, last = 0;
  evw::Io io(inner, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    drain(w.fd());
    ++reads;
  });
  evw::Embed embed(outer, inner, [&](evw::Embed& w, int revents) {
    ++embeds;
    last = revents;
    w.sweep();
  });
  io.start();
  embed.start();
  outer.run(evw::Run::NoWait);
  REQUIRE(::send(b.get(), "x", 1, 0) == 1);
  CHECK(run_until(outer, [&] { return reads == 1; }));
  CHECK(embeds >= 1);
  CHECK(last == evw::Event::Embed);
  // sweep() by hand runs what is due in the inner loop
  int due = 0;
  evw::Timer timer(inner, 0.0, 0.0, [&](evw::Timer&, int) { ++due; });
  timer.start();
  for (int i = 0; i < 100 && due == 0; ++i) embed.sweep();
  CHECK(due == 1);
  io.stop();
  embed.stop();
}

TEST_CASE("an exception from a callback of the embedded loop comes out of the outer run()") {
  auto [a, b] = evw_test::socket_pair();
  evw::Loop outer;
  evw::Loop inner(evw::Backend::Epoll);
  evw::Io io(inner, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    drain(w.fd());
    throw Boom("inner");
  });
  evw::Embed embed(outer, inner);
  io.start();
  embed.start();
  outer.run(evw::Run::NoWait);
  REQUIRE(::send(b.get(), "x", 1, 0) == 1);
  CHECK_THROWS_AS(outer.run(), Boom);
  CHECK(outer.depth() == 0);
  CHECK(inner.depth() == 0);
  // both loops go on
  io.set_callback([&](evw::Io& w, int) { drain(w.fd()); w.stop(); });
  REQUIRE(::send(b.get(), "y", 1, 0) == 1);
  CHECK(run_until(outer, [&] { return !io.is_active(); }));
  embed.stop();
}

TEST_CASE("Embed refuses itself, non-embeddable backends and circles") {
  evw::Loop outer;
  auto cb = [](evw::Embed&, int) {};
  CHECK_THROWS_AS(evw::Embed(outer, outer, cb), std::invalid_argument);
  evw::Loop polling(evw::Backend::Poll);
  CHECK_THROWS_WITH_AS(evw::Embed(outer, polling, cb), doctest::Contains("poll"),
                       std::invalid_argument);
  CHECK(outer.watcher_count() == 0);
  CHECK(polling.watcher_count() == 0);

  evw::Loop a(evw::Backend::Epoll), b(evw::Backend::Epoll), c(evw::Backend::Epoll);
  evw::Embed a_in_b(b, a), b_in_c(c, b), c_in_a(a, c);
  a_in_b.start();
  b_in_c.start();
  CHECK_THROWS_AS(c_in_a.start(), std::logic_error);  // c -> b -> a -> c
  CHECK_FALSE(c_in_a.is_active());
  b_in_c.stop();
  c_in_a.start();  // no circle any more
  CHECK(c_in_a.is_active());
  CHECK_THROWS_AS(c_in_a.set(a), std::invalid_argument);  // itself
  CHECK(&c_in_a.other() == &c);
  c_in_a.stop();
  a_in_b.stop();
}

TEST_CASE("destroying the embedded loop first stops the Embed; start() then throws") {
  evw::Loop outer;
  auto inner = std::make_unique<evw::Loop>(evw::Backend::Epoll);
  evw::Embed embed(outer, *inner);
  CHECK(inner->watcher_count() == 1);  // the Embed's guard
  embed.start();
  embed.feed(evw::Event::Embed);
  inner.reset();
  CHECK(embed.is_attached());
  CHECK_FALSE(embed.is_active());
  CHECK_FALSE(embed.is_pending());
  CHECK_FALSE(embed.other_exists());
  CHECK_THROWS_AS(embed.start(), std::logic_error);
  CHECK_THROWS_AS(embed.other(), std::logic_error);
  CHECK_THROWS_AS(embed.sweep(), std::logic_error);
  CHECK_FALSE(outer.run(evw::Run::NoWait));
  // it can be pointed at a live loop again
  evw::Loop again(evw::Backend::Epoll);
  embed.set(again);
  embed.start();
  CHECK(embed.is_active());
  embed.stop();
}

TEST_CASE("destroying the outer loop first detaches the Embed; the inner loop goes on") {
  evw::Loop inner(evw::Backend::Epoll);
  auto outer = std::make_unique<evw::Loop>();
  auto embed = std::make_unique<evw::Embed>(*outer, inner);
  embed->start();
  outer.reset();
  CHECK_FALSE(embed->is_attached());
  CHECK_FALSE(embed->is_active());
  CHECK_THROWS_AS(embed->start(), std::logic_error);
  int fired = 0;
  evw::Timer t(inner, 0.0, 0.0, [&](evw::Timer&, int) { ++fired; });
  t.start();
  CHECK_FALSE(inner.run());
  CHECK(fired == 1);
  embed.reset();
  CHECK(inner.watcher_count() == 1);  // only t
}

TEST_CASE("Embed set() and set_priority() on a pending watcher deliver the event once") {
  evw::Loop outer;
  evw::Loop one(evw::Backend::Epoll), two(evw::Backend::Epoll);
  int calls = 0;
  evw::Embed embed(outer, one, [&](evw::Embed&, int) { ++calls; });
  embed.start();
  embed.feed(evw::Event::Embed);
  embed.set(two);
  CHECK(embed.is_pending());
  CHECK(embed.is_active());
  CHECK(&embed.other() == &two);
  CHECK(one.watcher_count() == 0);  // the guard moved along
  CHECK(two.watcher_count() == 1);
  embed.set_priority(-2);
  CHECK(embed.is_pending());
  outer.run(evw::Run::NoWait);
  CHECK(calls == 1);
  outer.run(evw::Run::NoWait);
  CHECK(calls == 1);
  embed.stop();
}

TEST_CASE("Embed priorities order its events among other watcher types") {
  evw::Loop outer;
  evw::Loop inner(evw::Backend::Epoll);
  std::vector<int> order;
  evw::Embed e(outer, inner, [&](evw::Embed&, int) { order.push_back(0); });
  evw::Timer t(outer, 10.0, 0.0, [&](evw::Timer&, int) { order.push_back(1); });
  t.set_priority(2);
  e.feed(evw::Event::Embed);
  t.feed(evw::Event::Timer);
  outer.run(evw::Run::NoWait);
  CHECK(order == std::vector<int>{1, 0});
}

TEST_CASE("Embed user data and destruction inside its own callback") {
  auto [a, b] = evw_test::socket_pair();
  evw::Loop outer;
  evw::Loop inner(evw::Backend::Epoll);
  evw::Io io(inner, a.get(), evw::Event::Read, [](evw::Io& w, int) { drain(w.fd()); });
  int seen = 0;
  std::unique_ptr<evw::Embed> self;
  self = std::make_unique<evw::Embed>(outer, inner, [&](evw::Embed& w, int) {
    seen = std::any_cast<int>(w.data());
    w.sweep();
    self.reset();
  });
  self->data() = 2;
  io.start();
  self->start();
  outer.run(evw::Run::NoWait);
  REQUIRE(::send(b.get(), "x", 1, 0) == 1);
  CHECK(run_until(outer, [&] { return self == nullptr; }));
  CHECK(seen == 2);
  CHECK(outer.watcher_count() == 0);
  CHECK(inner.watcher_count() == 1);  // io; the guard went with the Embed
  io.stop();
}

TEST_CASE("Embed set() while active embeds the new loop, not the old one") {
  auto [a, b] = evw_test::socket_pair();
  auto [c, d] = evw_test::socket_pair();
  evw::Loop outer;
  evw::Loop one(evw::Backend::Epoll), two(evw::Backend::Epoll);
  int in_one = 0, in_two = 0;
  evw::Io io1(one, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    drain(w.fd());
    ++in_one;
  });
  evw::Io io2(two, c.get(), evw::Event::Read, [&](evw::Io& w, int) {
    drain(w.fd());
    ++in_two;
  });
  io1.start();
  io2.start();
  evw::Embed embed(outer, one);  // sweeps by itself
  embed.start();
  outer.run(evw::Run::NoWait);
  embed.set(two);
  CHECK(embed.is_active());
  CHECK(&embed.other() == &two);
  outer.run(evw::Run::NoWait);
  REQUIRE(::send(d.get(), "y", 1, 0) == 1);  // only the new loop's backend wakes the outer one
  CHECK(run_until(outer, [&] { return in_two == 1; }));
  REQUIRE(::send(b.get(), "x", 1, 0) == 1);  // the old loop: nothing
  for (int i = 0; i < 3; ++i) outer.run(evw::Run::NoWait);
  CHECK(in_one == 0);
  CHECK(in_two == 1);
  io1.stop();
  io2.stop();
  embed.stop();
}

TEST_CASE("an Embed stopping itself inside its own callback is safe and stops sweeping") {
  auto [a, b] = evw_test::socket_pair();
  evw::Loop outer;
  evw::Loop inner(evw::Backend::Epoll);
  int reads = 0, embeds = 0;
  evw::Io io(inner, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    drain(w.fd());
    ++reads;
  });
  evw::Embed embed(outer, inner, [&](evw::Embed& w, int) {
    ++embeds;
    w.sweep();
    w.stop();
  });
  io.start();
  embed.start();
  outer.run(evw::Run::NoWait);
  REQUIRE(::send(b.get(), "x", 1, 0) == 1);
  CHECK(run_until(outer, [&] { return embeds == 1; }));
  CHECK_FALSE(embed.is_active());
  CHECK(reads == 1);
  REQUIRE(::send(b.get(), "y", 1, 0) == 1);
  CHECK_FALSE(outer.run(evw::Run::NoWait));  // nothing active in the outer loop
  CHECK(embeds == 1);
  CHECK(reads == 1);
  io.stop();
}

TEST_CASE("a loop-owned Embed active when its outer loop is destroyed is destroyed with it") {
  evw::Loop inner(evw::Backend::Epoll);
  auto outer = std::make_unique<evw::Loop>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> alive = token;
  outer->add<evw::Embed>(inner, [token](evw::Embed&, int) {}).start();
  CHECK(inner.watcher_count() == 1);  // the Embed's guard
  token.reset();
  REQUIRE_FALSE(alive.expired());  // held by the watcher's callback
  outer.reset();
  CHECK(alive.expired());
  CHECK(inner.watcher_count() == 0);  // the guard went with it
  int fired = 0;
  evw::Timer t(inner, 0.0, 0.0, [&](evw::Timer&, int) { ++fired; });
  t.start();
  CHECK_FALSE(inner.run());
  CHECK(fired == 1);
}

// ---- an fd closed under an Io of the embedded loop ---------------------------
// libev's Embed applies the embedded loop's pending fd changes itself (its
// prepare watcher calls fd_reify on the other loop, outside that loop's
// ev_run), which asserted on EBADF: the closed-fd check (see test_io.cpp) must
// run there too. In a child, so that an abort fails this test only.

TEST_CASE("an fd closed under an Io of the embedded loop: the outer run() stops it with Event::Error") {
  CHECK(evw_test::passes_in_child([] {
    evw::Loop outer;
    evw::Loop inner(evw::Backend::Epoll);
    evw::Embed embed(outer, inner);
    embed.start();
    auto [a, b] = evw_test::socket_pair();
    int got = 0;
    evw::Io io(inner, a.get(), evw::Event::Read, [&](evw::Io&, int revents) { got |= revents; });
    io.start();
    ::close(a.release());
    outer.run(evw::Run::NoWait);  // libev's embed prepare registers the inner loop's fds
    inner.run(evw::Run::NoWait);
    return (got & evw::Event::Error) != 0 && !io.is_active();
  }));
}

// libev 4.33 lists io_uring among its embeddable backends, but an io_uring
// loop has no backend descriptor (-1): ev_embed_start asserted on it.
TEST_CASE("Embed refuses an io_uring loop, which libev calls embeddable but cannot embed") {
  CHECK(evw_test::passes_in_child([] {
    std::unique_ptr<evw::Loop> ring;
    try {
      ring = std::make_unique<evw::Loop>(evw::Backend::IoUring);
    } catch (const std::system_error&) {
      return true;  // no io_uring here: nothing to check
    }
    if (ring->backend() != evw::Backend::IoUring) return true;
    evw::Loop outer;
    try {
      evw::Embed embed(outer, *ring);
      embed.start();
      outer.run(evw::Run::NoWait);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what()).find("io_uring") != std::string::npos;
    }
    return false;
  }));
}

// The kernel nests epoll sets at most 5 deep (ELOOP beyond), and libev aborts
// on ELOOP when it registers the embedded loop's descriptor: a chain of six
// embedded loops aborted. evw counts the chain and keeps one level for the
// EPOLLPRI set of Priority/Gpio watchers: four loops at most.
TEST_CASE("Embed refuses chains of embedded loops deeper than the kernel nests epoll sets") {
  CHECK(evw_test::passes_in_child([] {
    std::vector<std::unique_ptr<evw::Loop>> loops;
    std::vector<std::unique_ptr<evw::Embed>> embeds;
    for (int i = 0; i < 6; ++i) loops.push_back(std::make_unique<evw::Loop>(evw::Backend::Epoll));
    for (int i = 0; i + 1 < 6; ++i)
      embeds.push_back(std::make_unique<evw::Embed>(*loops[i], *loops[i + 1]));
    // Middle first: the refusal must see the chain from both sides.
    for (int i : {2, 0, 1}) embeds[static_cast<std::size_t>(i)]->start();  // loops 0..3
    bool refused = false;
    try {
      embeds[3]->start();  // loops 0..4
    } catch (const std::logic_error&) {
      refused = true;
    }
    for (int i = 5; i >= 0; --i) loops[static_cast<std::size_t>(i)]->run(evw::Run::NoWait);
    return refused && !embeds[3]->is_active() && embeds[2]->is_active();
  }));
}

TEST_CASE("an Embed stopped after its loop ran still counts against a circle: libev keeps its registration") {
  // libev deletes a stopped Embed's kernel registration only lazily, so b's
  // epoll may still hold a's after the Embed is gone; a in turn embedding b
  // would be ELOOP, on which libev aborts. Run in a child for that reason.
  CHECK(evw_test::passes_in_child([] {
    auto a = std::make_unique<evw::Loop>(evw::Backend::Epoll);
    evw::Loop b(evw::Backend::Epoll);
    auto a_in_b = std::make_unique<evw::Embed>(b, *a);
    a_in_b->start();
    b.run(evw::Run::NoWait);  // libev registers a's epoll in b's now
    a_in_b.reset();      // stopped and destroyed
    evw::Embed b_in_a(*a, b);
    bool refused = false;
    try {
      b_in_a.start();
    } catch (const std::logic_error&) {
      refused = true;
    }
    a->run(evw::Run::NoWait);
    b.run(evw::Run::NoWait);
    // The same direction again is fine; stopped before either loop ran, an
    // Embed leaves nothing behind.
    evw::Embed again(b, *a);
    again.start();
    b.run(evw::Run::NoWait);
    evw::Loop c(evw::Backend::Epoll), d(evw::Backend::Epoll);
    evw::Embed c_in_d(d, c), d_in_c(c, d);
    c_in_d.start();
    c_in_d.stop();
    d_in_c.start();
    c.run(evw::Run::NoWait);
    d.run(evw::Run::NoWait);
    return refused && !b_in_a.is_active() && again.is_active() && d_in_c.is_active();
  }));
}
