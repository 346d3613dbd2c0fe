// Timer: seconds and chrono, repeat, again, remaining, set on active/pending
// timers, priorities, destruction in callbacks, bad input.
#include <evw/watchers/timer.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include <unistd.h>

#include "support.hpp"

using namespace std::chrono_literals;
using evw_test::run_until;

TEST_CASE("Timer fires once after `after`, or repeatedly with `repeat`") {
  evw::Loop loop;
  int once = 0, rep = 0, last = 0;
  evw::Timer t1(loop, 0.002, 0.0, [&](evw::Timer&, int revents) { ++once; last = revents; });
  evw::Timer t2(loop, 1ms, 1ms, [&](evw::Timer& w, int) {
    if (++rep == 3) w.stop();
  });
  CHECK_FALSE(t1.is_active());
  CHECK(t2.repeat() == doctest::Approx(0.001));
  t1.start();
  t2.start();
  CHECK(t1.remaining() > 0.0);
  CHECK(t1.remaining() <= 0.002 + 1e-9);
  loop.run();
  CHECK(once == 1);
  CHECK(last == evw::Event::Timer);
  CHECK(rep == 3);
  CHECK_FALSE(t1.is_active());
  CHECK(t1.remaining() == 0.0);
}

TEST_CASE("Timer accepts std::chrono durations and mixed units") {
  evw::Loop loop;
  evw::Timer t(loop, 1500ms, 0s, [](evw::Timer&, int) {});
  t.start();
  CHECK(t.remaining() == doctest::Approx(1.5).epsilon(0.01));
  t.set(2s, 250ms);
  CHECK(t.repeat() == doctest::Approx(0.25));
  CHECK(t.is_active());
  CHECK(t.remaining() == doctest::Approx(2.0).epsilon(0.01));
  evw::Timer u(loop, 1, 0, [](evw::Timer&, int) {});  // plain numbers are seconds
  u.set_repeat(3);
  CHECK(u.repeat() == 3.0);
}

TEST_CASE("Timer rejects negative, NaN and infinite values") {
  evw::Loop loop;
  auto cb = [](evw::Timer&, int) {};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(evw::Timer(loop, 1.0, -1.0, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Timer(loop, 1.0, nan, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Timer(loop, 1.0, inf, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Timer(loop, nan, 0.0, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Timer(loop, inf, 0.0, cb), std::invalid_argument);
  evw::Timer t(loop, 1.0, 0.0, cb);
  CHECK_THROWS_AS(t.set(1.0, -0.5), std::invalid_argument);
  CHECK_THROWS_AS(t.set_repeat(-1ms), std::invalid_argument);
  CHECK(t.repeat() == 0.0);
  // a negative `after` is allowed: it is already due
  int fired = 0;
  evw::Timer due(loop, -1.0, 0.0, [&](evw::Timer&, int) { ++fired; });
  due.start();
  loop.run();
  CHECK(fired == 1);
}

TEST_CASE("Timer again() restarts, stops or starts as ev_timer_again") {
  evw::Loop loop;
  int fired = 0;
  evw::Timer t(loop, 10.0, 0.05, [&](evw::Timer&, int) { ++fired; });
  t.again();  // inactive with repeat: starts with `repeat`
  CHECK(t.is_active());
  CHECK(t.remaining() <= 0.05 + 1e-9);
  t.set_repeat(0.0);
  t.again();  // active without repeat: stops
  CHECK_FALSE(t.is_active());
  t.set_repeat(0.001);
  t.again();
  CHECK(run_until(loop, [&] { return fired >= 2; }));
  t.stop();
}

TEST_CASE("Timer set() and set_priority() on a pending timer deliver the expiry once") {
  evw::Loop loop;
  int calls = 0;
  evw::Timer t(loop, 10.0, 0.0, [&](evw::Timer&, int) { ++calls; });
  t.start();
  t.feed(evw::Event::Timer);
  t.set(20.0, 0.0);
  CHECK(t.is_pending());
  CHECK(t.is_active());
  t.set_priority(-1);
  CHECK(t.is_pending());
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  CHECK(t.remaining() > 19.0);
}

TEST_CASE("Timer priorities order expiries within one iteration, both ways") {
  for (int high : {0, 1}) {
    evw::Loop loop;
    std::vector<int> order;
    evw::Timer a(loop, 0.0, 0.0, [&](evw::Timer&, int) { order.push_back(0); });
    evw::Timer b(loop, 0.0, 0.0, [&](evw::Timer&, int) { order.push_back(1); });
    (high == 0 ? a : b).set_priority(1);
    a.start();
    b.start();
    loop.run();
    CHECK(order == std::vector<int>{high, 1 - high});
  }
}

TEST_CASE("Timer user data, destruction in its own callback and of another pending timer") {
  evw::Loop loop;
  int first = 0, second = 0;
  std::unique_ptr<evw::Timer> other = std::make_unique<evw::Timer>(loop, 0.0, 0.0, [&](evw::Timer&, int) { ++second; });
  std::unique_ptr<evw::Timer> self;
  self = std::make_unique<evw::Timer>(loop, 0.0, 0.0, [&](evw::Timer& w, int) {
    first = std::any_cast<int>(w.data());
    other.reset();
    self.reset();
  });
  self->data() = 7;
  self->set_priority(2);
  self->start();
  other->start();
  loop.run();
  CHECK(first == 7);
  CHECK(second == 0);
  CHECK(loop.watcher_count() == 0);
}

TEST_CASE("a Timer whose loop is destroyed while active becomes detached") {
  auto loop = std::make_unique<evw::Loop>();
  evw::Timer t(*loop, 1.0, 1.0, [](evw::Timer&, int) {});
  t.start();
  loop.reset();
  CHECK_FALSE(t.is_active());
  CHECK(t.remaining() == 0.0);
  CHECK_THROWS_AS(t.again(), std::logic_error);
  CHECK_THROWS_AS(t.start(), std::logic_error);
}

TEST_CASE("a loop-owned Timer active when its loop is destroyed is destroyed with it") {
  auto loop = std::make_unique<evw::Loop>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> alive = token;
  loop->add<evw::Timer>(10.0, 1.0, [token](evw::Timer&, int) {}).start();
  token.reset();
  REQUIRE_FALSE(alive.expired());  // held by the watcher's callback
  loop.reset();
  CHECK(alive.expired());
}

TEST_CASE("Timer restart() is the idle timeout that works the obvious way: a one-shot timer pushed back by activity") {
  evw::Loop loop;
  int expired = 0;
  double expired_at = 0.0, last_activity = 0.0;
  evw::Timer idle(loop, 50ms, 0s, [&](evw::Timer&, int revents) {
    expired += revents == evw::Event::Timer;
    expired_at = loop.now();
  });
  idle.start();
  // Activity every 20 ms, five times: each pushes the 50 ms timeout back.
  int activity = 0;
  evw::Timer busy(loop, 20ms, 20ms, [&](evw::Timer& w, int) {
    idle.restart();
    last_activity = loop.now();
    CHECK(idle.is_active());
    CHECK(idle.remaining() == doctest::Approx(0.05).epsilon(0.2));
    if (++activity == 5) w.stop();
  });
  busy.start();
  loop.run();  // ends by itself: the idle timer fires once, then nothing is active
  CHECK(activity == 5);
  CHECK(expired == 1);
  CHECK(expired_at - last_activity >= 0.05 - 1e-3);
  CHECK_FALSE(idle.is_active());
}

TEST_CASE("Timer again() on a one-shot timer stops it (libev's ev_timer_again); restart() does not") {
  evw::Loop loop;
  int fired = 0;
  evw::Timer t(loop, 10ms, 0s, [&](evw::Timer&, int) { ++fired; });
  t.start();
  t.again();
  CHECK_FALSE(t.is_active());
  loop.run();
  CHECK(fired == 0);
  t.restart();  // a stopped one-shot timer starts
  CHECK(t.is_active());
  loop.run();
  CHECK(fired == 1);
}

TEST_CASE("Timer restart() starts, restarts and keeps a repeat; restart(after) changes after() for good") {
  evw::Loop loop;
  std::vector<double> at;
  double t0 = 0.0;
  evw::Timer t(loop, 30ms, 10ms, [&](evw::Timer& w, int) {
    at.push_back(loop.now() - t0);
    if (at.size() == 3) w.stop();
  });
  CHECK(t.after() == doctest::Approx(0.03));
  loop.update_now();
  t0 = loop.now();
  t.restart(5ms);  // inactive: starts with the new after
  CHECK(t.is_active());
  CHECK(t.after() == doctest::Approx(0.005));
  CHECK(t.repeat() == doctest::Approx(0.01));
  loop.run();
  REQUIRE(at.size() == 3);
  CHECK(at[0] >= 0.005 - 1e-3);
  CHECK(at[0] < 0.03);               // not the old after
  CHECK(at[2] >= 0.005 + 2 * 0.01 - 1e-3);  // then the repeat (libev anchors it to the schedule)
  t.set(1s, 0s);
  CHECK(t.after() == 1.0);  // set() changes after too
  t.restart(0s);            // after 0: fires in the next iteration
  loop.run(evw::Run::NoWait);
  CHECK(at.size() == 4);
}

TEST_CASE("Timer restart() on a pending timer drops the expiry; it fires again `after` later") {
  evw::Loop loop;
  int fired = 0;
  evw::Timer t(loop, 1ms, 0s, [&](evw::Timer&, int) { ++fired; });
  t.start();
  // A higher-priority callback of the same iteration restarts the pending timer.
  evw::Timer first(loop, 1ms, 0s, [&](evw::Timer&, int) {
    REQUIRE(t.is_pending());
    t.restart(20ms);
    CHECK_FALSE(t.is_pending());
    CHECK(t.is_active());
  });
  first.set_priority(evw::max_priority);
  first.start();
  ::usleep(3000);
  loop.run(evw::Run::NoWait);
  CHECK(fired == 0);
  loop.run();
  CHECK(fired == 1);
}

TEST_CASE("Timer restart() refuses a detached timer and a non-finite after") {
  auto loop = std::make_unique<evw::Loop>();
  evw::Timer t(*loop, 1s, 0s, [](evw::Timer&, int) {});
  CHECK_THROWS_AS(t.restart(std::numeric_limits<double>::infinity()), std::invalid_argument);
  CHECK(t.after() == 1.0);
  t.start();
  loop.reset();
  CHECK_THROWS_AS(t.restart(), std::logic_error);
  CHECK_THROWS_AS(t.restart(1ms), std::logic_error);
}

TEST_CASE("a moved Timer keeps its after for restart()") {
  evw::Loop loop;
  evw::Timer a(loop, 250ms, 0s, [](evw::Timer&, int) {});
  a.start();
  a.restart(40ms);
  evw::Timer b(std::move(a));
  CHECK(b.after() == doctest::Approx(0.04));
  b.restart();
  CHECK(b.remaining() == doctest::Approx(0.04).epsilon(0.25));
}
