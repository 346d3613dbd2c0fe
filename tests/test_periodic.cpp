// Periodic: wall-clock grid, one-shot, reschedule callables (and their
// exceptions and bad results), again, set on active/pending periodics,
// priorities, destruction in callbacks, bad input, detaching.
#include <evw/watchers/periodic.hpp>
#include <evw/core/loop.hpp>
#include <evw/watchers/idle.hpp>
#include <evw/watchers/timer.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
using evw_test::run_until;

namespace {

struct Boom : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Distance of t from the grid k * step.
double off_grid(double t, double step) {
  double r = std::fmod(t, step);
  return std::min(r, step - r);
}

}  // namespace

TEST_CASE("Periodic fires on a repeating wall-clock grid") {
  evw::Loop loop;
  int ticks = 0, last = 0;
  std::vector<double> at;
  evw::Periodic p(loop, 0.0, 0.02, [&](evw::Periodic& w, int revents) {
    last = revents;
    at.push_back(w.at());
    if (++ticks == 3) w.stop();
  });
  CHECK_FALSE(p.is_active());
  CHECK(p.interval() == 0.02);
  CHECK(p.offset() == 0.0);
  CHECK_FALSE(p.has_reschedule());
  p.start();
  CHECK(p.at() > loop.now());
  CHECK(p.at() <= loop.now() + 0.02 + 1e-6);
  CHECK(off_grid(p.at(), 0.02) < 1e-5);
  CHECK(run_until(loop, [&] { return ticks == 3; }));
  CHECK(last == evw::Event::Periodic);
  for (double t : at) CHECK(off_grid(t, 0.02) < 1e-5);  // the next time is on the grid too
  CHECK_FALSE(p.is_active());
}

TEST_CASE("Periodic with interval 0 fires once at an absolute time") {
  evw::Loop loop;
  int fired = 0;
  double when = 0.0;
  const double target = loop.now() + 0.01;
  evw::Periodic p(loop, target, 0.0, [&](evw::Periodic&, int) {
    ++fired;
    when = loop.now();
  });
  p.start();
  CHECK(p.at() == target);
  loop.run();
  CHECK(fired == 1);
  CHECK(when >= target);
  CHECK_FALSE(p.is_active());
  // a time in the past is due at once
  p.set(1.0, 0.0);
  p.start();
  loop.run();
  CHECK(fired == 2);
}

TEST_CASE("Periodic takes chrono durations and normalises the offset into [0, interval)") {
  evw::Loop loop;
  auto cb = [](evw::Periodic&, int) {};
  evw::Periodic a(loop, 250ms, 1s, cb);
  CHECK(a.offset() == 0.25);
  CHECK(a.interval() == 1.0);
  evw::Periodic b(loop, 10.25, 1.0, cb);
  CHECK(b.offset() == doctest::Approx(0.25));
  evw::Periodic c(loop, -0.25, 1.0, cb);
  CHECK(c.offset() == doctest::Approx(0.75));
  c.set(loop.now(), 0.5);  // "every half second from now" stays on the same grid
  CHECK(c.offset() >= 0.0);
  CHECK(c.offset() < 0.5);
  evw::Periodic d(loop, 12345.5, 0.0, cb);  // absolute: kept as is
  CHECK(d.offset() == 12345.5);
}

TEST_CASE("Periodic rejects what libev would assert on or be corrupted by") {
  evw::Loop loop;
  auto cb = [](evw::Periodic&, int) {};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(evw::Periodic(loop, 0.0, -1.0, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Periodic(loop, 0.0, nan, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Periodic(loop, 0.0, inf, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Periodic(loop, nan, 1.0, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Periodic(loop, -inf, 0.0, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Periodic(loop, evw::Periodic::Reschedule(), cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Periodic(loop, 0.0, 1.0, nullptr), std::invalid_argument);
  evw::Periodic p(loop, 0.0, 1.0, cb);
  CHECK_THROWS_WITH_AS(p.set(0.0, -2.0), doctest::Contains("interval"), std::invalid_argument);
  CHECK_THROWS_AS(p.set(evw::Periodic::Reschedule()), std::invalid_argument);
  CHECK(p.interval() == 1.0);  // a failed set changes nothing
  CHECK(loop.watcher_count() == 1);
}

TEST_CASE("Periodic with a tiny interval still fires and never spins inside libev") {
  evw::Loop loop;
  for (double interval : {1e-300, 1e-9, 1e-5}) {
    int ticks = 0;
    evw::Periodic p(loop, 0.0, interval, [&](evw::Periodic& w, int) {
      if (++ticks == 3) w.stop();
    });
    p.start();
    CHECK(run_until(loop, [&] { return ticks == 3; }));
  }
}

TEST_CASE("Periodic with a reschedule callable fires when it says") {
  evw::Loop loop;
  int calls = 0, ticks = 0;
  evw::Periodic* seen = nullptr;
  double last_now = 0.0, last_next = 0.0;
  evw::Periodic p(
      loop,
      [&](evw::Periodic& w, double now) {
        ++calls;
        seen = &w;
        last_now = now;
        last_next = now + 0.005;
        return last_next;
      },
      [&](evw::Periodic& w, int) {
        if (++ticks == 3) w.stop();
      });
  CHECK(p.has_reschedule());
  CHECK(p.interval() == 0.0);
  p.start();
  CHECK(calls == 1);  // libev asks at start
  CHECK(seen == &p);
  CHECK(p.at() == last_next);
  CHECK(run_until(loop, [&] { return ticks == 3; }));
  CHECK(calls >= 3);
  CHECK(last_now <= loop.now());
  // back to a fixed grid
  p.set(0.0, 0.01);
  CHECK_FALSE(p.has_reschedule());
}

TEST_CASE("an exception from the reschedule callable comes out of run()") {
  evw::Loop loop;
  int calls = 0, ticks = 0;
  evw::Periodic p(
      loop,
      [&](evw::Periodic&, double now) -> double {
        if (++calls == 2) throw Boom("reschedule");
        return now + 0.002;
      },
      [&](evw::Periodic&, int) { ++ticks; });
  p.start();
  CHECK_THROWS_AS(loop.run(), Boom);
  CHECK(loop.depth() == 0);
  CHECK(p.is_active());  // parked far ahead, not firing
  CHECK(p.at() > loop.now() + 1e29);
  // the loop goes on; again() asks the callable anew
  p.again();
  CHECK(p.at() < loop.now() + 1.0);
  CHECK(run_until(loop, [&] { return ticks >= 2; }));
  p.stop();
}

TEST_CASE("a reschedule callable that throws inside start/set/again throws there") {
  evw::Loop loop;
  bool fail = true;
  auto reschedule = [&](evw::Periodic&, double now) -> double {
    if (fail) throw Boom("at start");
    return now + 10.0;
  };
  evw::Periodic p(loop, reschedule, [](evw::Periodic&, int) {});
  CHECK_THROWS_AS(p.start(), Boom);
  CHECK_FALSE(p.is_active());
  CHECK_THROWS_AS(p.again(), Boom);
  CHECK_FALSE(p.is_active());
  fail = false;
  p.start();
  CHECK(p.is_active());
  fail = true;
  CHECK_THROWS_AS(p.set(reschedule), Boom);  // restarting it runs the callable
  CHECK_FALSE(p.is_active());
  CHECK_FALSE(loop.run(evw::Run::NoWait));  // nothing was left for the loop to rethrow
}

TEST_CASE("a reschedule callable returning a past time or NaN is an error, not a libev assert") {
  evw::Loop loop;
  double result = 0.0;
  int calls = 0;
  evw::Periodic p(
      loop,
      [&](evw::Periodic&, double now) {
        ++calls;
        return result == 0.0 ? now + 0.001 : result;
      },
      [](evw::Periodic&, int) {});
  result = 1.0;  // 1970
  CHECK_THROWS_WITH_AS(p.start(), doctest::Contains("before now"), std::invalid_argument);
  result = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(p.start(), std::invalid_argument);
  result = 0.0;
  p.start();
  result = -5.0;  // the next reschedule happens in run()
  CHECK_THROWS_AS(loop.run(), std::invalid_argument);
  CHECK(p.at() > loop.now() + 1e29);
  p.stop();
}

TEST_CASE("the reschedule callable may not change its own periodic") {
  evw::Loop loop;
  int calls = 0;
  evw::Periodic p(
      loop,
      [&](evw::Periodic& w, double now) {
        if (++calls == 2) w.set(0.0, 1.0);  // throws std::logic_error
        return now + 0.001;
      },
      [](evw::Periodic&, int) {});
  p.start();
  CHECK_THROWS_AS(loop.run(), std::logic_error);
  CHECK(p.has_reschedule());
  p.stop();
}

TEST_CASE("a reschedule exception outside run() (resume) comes out of the next run()") {
  evw::Loop loop;
  bool fail = false;
  evw::Periodic p(
      loop,
      [&](evw::Periodic&, double now) -> double {
        if (fail) throw Boom("resume");
        return now + 100.0;
      },
      [](evw::Periodic&, int) {});
  p.start();
  loop.suspend();
  fail = true;
  loop.resume();  // libev reschedules every periodic here
  CHECK_THROWS_AS(loop.run(), Boom);
  p.stop();
}

TEST_CASE("Periodic again() starts, restarts and drops a pending event") {
  evw::Loop loop;
  int fired = 0;
  evw::Periodic p(loop, 0.0, 100.0, [&](evw::Periodic&, int) { ++fired; });
  p.again();
  CHECK(p.is_active());
  p.feed(evw::Event::Periodic);
  p.again();
  CHECK_FALSE(p.is_pending());
  loop.run(evw::Run::NoWait);
  CHECK(fired == 0);
  p.stop();
}

TEST_CASE("Periodic set() and set_priority() on a pending periodic deliver the event once") {
  evw::Loop loop;
  int calls = 0;
  evw::Periodic p(loop, 0.0, 100.0, [&](evw::Periodic&, int revents) {
    CHECK(revents == evw::Event::Periodic);
    ++calls;
  });
  p.start();
  p.feed(evw::Event::Periodic);
  p.set(0.0, 200.0);
  CHECK(p.is_pending());
  CHECK(p.is_active());
  p.set([](evw::Periodic&, double now) { return now + 300.0; });
  CHECK(p.is_pending());
  CHECK(p.at() > loop.now() + 299.0);
  p.set_priority(2);
  CHECK(p.is_pending());
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  CHECK(p.is_active());
  p.stop();
}

TEST_CASE("Periodic priorities order its events among other watcher types") {
  for (int high : {0, 1}) {
    evw::Loop loop;
    std::vector<int> order;
    evw::Periodic p(loop, 0.0, 0.0, [&](evw::Periodic&, int) { order.push_back(0); });  // due: 1970
    evw::Timer t(loop, 0.0, 0.0, [&](evw::Timer&, int) { order.push_back(1); });
    evw::Idle i(loop, [&](evw::Idle& w, int) {
      order.push_back(2);
      w.stop();
    });
    (high == 0 ? static_cast<evw::detail::WatcherBase&>(p) : t).set_priority(1);
    i.set_priority(2);  // idle of a higher priority than everything pending runs first
    p.start();
    t.start();
    i.start();
    loop.run();
    CHECK(order == std::vector<int>{2, high, 1 - high});
  }
}

TEST_CASE("Periodic user data and destruction inside its own callback") {
  evw::Loop loop;
  int seen = 0, other_calls = 0;
  auto other = std::make_unique<evw::Periodic>(loop, 0.0, 0.0, [&](evw::Periodic&, int) { ++other_calls; });
  std::unique_ptr<evw::Periodic> self;
  self = std::make_unique<evw::Periodic>(
      loop, [](evw::Periodic&, double now) { return now; },
      [&](evw::Periodic& w, int) {
        seen = std::any_cast<int>(w.data());
        other.reset();  // pending in the same iteration: not delivered
        self.reset();
      });
  self->data() = 11;
  self->set_priority(1);
  self->start();
  other->start();
  loop.run();
  CHECK(seen == 11);
  CHECK(other_calls == 0);
  CHECK(loop.watcher_count() == 0);

  auto& owned = loop.add<evw::Periodic>(0.0, 0.0, [&](evw::Periodic& w, int) { w.loop().remove(w); });
  owned.start();
  loop.run();
  CHECK(loop.watcher_count() == 0);
}

TEST_CASE("a Periodic whose loop is destroyed while active becomes detached") {
  auto loop = std::make_unique<evw::Loop>();
  evw::Periodic p(*loop, 0.0, 1.0, [](evw::Periodic&, int) {});
  evw::Periodic r(*loop, [](evw::Periodic&, double now) { return now + 1.0; }, [](evw::Periodic&, int) {});
  p.start();
  r.start();
  p.feed(evw::Event::Periodic);
  loop.reset();
  for (evw::Periodic* w : {&p, &r}) {
    CHECK_FALSE(w->is_attached());
    CHECK_FALSE(w->is_active());
    CHECK_FALSE(w->is_pending());
    CHECK_THROWS_AS(w->start(), std::logic_error);
    CHECK_THROWS_AS(w->again(), std::logic_error);
    w->stop();
  }
  p.set(0.0, 2.0);  // configuration still works
  CHECK(p.interval() == 2.0);
}

TEST_CASE("a loop-owned Periodic active when its loop is destroyed is destroyed with it") {
  auto loop = std::make_unique<evw::Loop>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> alive = token;
  loop->add<evw::Periodic>(0.0, 100.0, [token](evw::Periodic&, int) {}).start();
  loop->add<evw::Periodic>([token](evw::Periodic&, double now) { return now + 100.0; },
                           [](evw::Periodic&, int) {}).start();
  token.reset();
  REQUIRE_FALSE(alive.expired());  // held by the callback and the reschedule callable
  loop.reset();
  CHECK(alive.expired());
}
