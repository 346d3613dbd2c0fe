// Loop: run/stop, loop-owned watchers, ownership, exceptions from callbacks.
#include <evw/core/loop.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;

TEST_CASE("a new loop runs, returns false when nothing is active, and reports its state") {
  evw::Loop loop;
  CHECK(loop.run() == false);
  CHECK(loop.run(evw::Run::NoWait) == false);
  CHECK(loop.depth() == 0);
  CHECK(loop.backend() != 0);
  CHECK(loop.raw() != nullptr);
  CHECK_FALSE(loop.is_default());
  CHECK(loop.watcher_count() == 0);
  double before = loop.now();
  loop.update_now();
  CHECK(loop.now() >= before);
  unsigned it = loop.iteration();
  loop.run(evw::Run::NoWait);
  CHECK(loop.iteration() == it + 1);
  CHECK(loop.pending_count() == 0);
  loop.suspend();
  loop.resume();
}

TEST_CASE("the default loop is one object and is the default") {
  evw::Loop& a = evw::Loop::default_loop();
  evw::Loop& b = evw::Loop::default_loop();
  CHECK(&a == &b);
  CHECK(a.is_default());
}

TEST_CASE("Loop with an unusable backend throws std::system_error") {
  // Braces: with parentheses clang reads a declaration of a Loop named Backend::Kqueue.
  CHECK_THROWS_AS(evw::Loop{evw::Backend::Kqueue}, std::system_error);
  evw::Loop ok(evw::Backend::Poll);
  CHECK(ok.backend() == evw::Backend::Poll);
}

TEST_CASE("stop() breaks out of run; Break::All leaves nested runs") {
  evw::Loop loop;
  int ticks = 0;
  evw::Timer t(loop, 0.0, 0.001, [&](evw::Timer&, int) {
    if (++ticks == 3) loop.stop();
  });
  t.start();
  CHECK(loop.run() == true);
  CHECK(ticks == 3);

  int depth_seen = 0;
  evw::Timer inner(loop, 0.0, 0.0, [&](evw::Timer&, int) {
    depth_seen = static_cast<int>(loop.depth());
    loop.stop(evw::Break::All);
  });
  evw::Timer outer(loop, 0.0, 0.0, [&](evw::Timer&, int) {
    inner.start();
    loop.run();
  });
  t.stop();
  outer.start();
  loop.run();
  CHECK(depth_seen == 2);
  CHECK(loop.depth() == 0);
}

TEST_CASE("loop-owned watchers live until remove() or the loop's end") {
  int fired = 0;
  {
    evw::Loop loop;
    auto& t = loop.add<evw::Timer>(0.0, 0.0, [&](evw::Timer&, int) { ++fired; });
    CHECK_FALSE(t.is_active());  // constructed stopped, like every watcher
    CHECK(loop.watcher_count() == 1);
    t.start();
    loop.run();
    CHECK(fired == 1);
    loop.remove(t);
    CHECK(loop.watcher_count() == 0);

    auto& self_removing = loop.add<evw::Timer>(0.0, 0.0, [&](evw::Timer& w, int) {
      ++fired;
      w.loop().remove(w);  // destroys the running watcher
    });
    self_removing.start();
    loop.run();
    CHECK(fired == 2);
    CHECK(loop.watcher_count() == 0);

    auto& left_active = loop.add<evw::Timer>(10.0, 0.0, [&](evw::Timer&, int) { ++fired; });
    left_active.start();
    evw::Timer user_owned(loop, 1.0, 0.0, [](evw::Timer&, int) {});
    CHECK_THROWS_AS(loop.remove(user_owned), std::logic_error);
  }  // the loop destroys left_active and detaches nothing left
  CHECK(fired == 2);
}

TEST_CASE("destroying a loop with active watchers detaches user-owned ones") {
  auto [a, b] = evw_test::socket_pair();
  auto loop = std::make_unique<evw::Loop>();
  evw::Io io(*loop, a.get(), evw::Event::Read, [](evw::Io&, int) {});
  evw::Timer t(*loop, 5.0, 1.0, [](evw::Timer&, int) {});
  evw::Signal s(*loop, SIGUSR2, [](evw::Signal&, int) {});
  evw::Priority p(*loop, a.get(), [](evw::Priority&, int) {});
  io.start(); t.start(); s.start(); p.start();
  auto& owned = loop->add<evw::Io>(a.get(), evw::Event::Read, [](evw::Io&, int) {});
  owned.start();
  io.feed(evw::Event::Read);
  CHECK(loop->watcher_count() == 5);
  loop.reset();
  for (evw::detail::WatcherBase* w : std::initializer_list<evw::detail::WatcherBase*>{&io, &t, &s, &p}) {
    CHECK_FALSE(w->is_attached());
    CHECK_FALSE(w->is_active());
    CHECK_FALSE(w->is_pending());
    CHECK_THROWS_AS(w->start(), std::logic_error);
    CHECK_THROWS_AS(w->feed(evw::Event::Read), std::logic_error);
    CHECK_THROWS_AS(w->loop(), std::logic_error);
    w->stop();  // still safe
    w->set_priority(1);  // configuration still works
  }
  io.set(b.get(), evw::Event::Write);
  CHECK(io.fd() == b.get());
  // SIGUSR2 was released with the loop: another loop may take it.
  evw::Loop other;
  evw::Signal s2(other, SIGUSR2, [](evw::Signal&, int) {});
  s2.start();
}

TEST_CASE("an exception from a callback comes out of run() unchanged and the loop goes on") {
  evw::Loop loop;
  struct Boom : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  int after = 0;
  evw::Timer thrower(loop, 0.0, 0.0, [](evw::Timer&, int) { throw Boom("boom"); });
  evw::Timer later(loop, 0.0, 0.0, [&](evw::Timer&, int) { ++after; });
  thrower.set_priority(2);
  later.set_priority(-2);
  thrower.start();
  later.start();
  CHECK_THROWS_AS(loop.run(), Boom);
  CHECK(loop.depth() == 0);
  CHECK(after == 0);  // nothing runs after the failure in that iteration…
  CHECK(later.is_pending());  // …but its event is kept
  loop.run();
  CHECK(after == 1);  // and delivered by the next run()
  CHECK_FALSE(loop.run());
}

// libev dispatches a fed event after its next poll, which would block (here
// until the guard timer, without it for ever): evw makes that poll not wait.
TEST_CASE("an event fed outside run() is delivered by the next run(Run::Once) without waiting") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  int calls = 0, guard = 0, revents = 0;
  evw::Timer timer(loop, 5.0, 0.0, [&](evw::Timer&, int) { ++guard; });
  timer.start();
  evw::Io io(loop, b.get(), evw::Event::Read, [&](evw::Io&, int r) {
    ++calls;
    revents = r;
  });
  io.start();
  io.feed(evw::Event::Read);
  loop.run(evw::Run::Once);
  CHECK(calls == 1);
  CHECK(revents == evw::Event::Read);
  CHECK(guard == 0);  // the poll did not wait for the timer
  // set() while pending, outside run(), re-feeds the kept event: the same.
  io.feed(evw::Event::Read);
  io.set(b.get(), evw::Event::Read);
  loop.run(evw::Run::Once);
  CHECK(calls == 2);
  CHECK(guard == 0);
  // An idle watcher of the user's is not disturbed: it runs when nothing else is due.
  int idles = 0;
  evw::Idle idle(loop, [&](evw::Idle& w, int) {
    ++idles;
    w.stop();
  });
  io.stop();
  idle.start();
  io.start();
  io.stop();  // nothing pending
  loop.run(evw::Run::Once);
  CHECK(idles == 1);
  // Nothing fed, nothing ready: run(Run::NoWait) has nothing to do, and the kick
  // does not keep run() going.
  timer.stop();
  CHECK_FALSE(loop.run());
}

TEST_CASE("an event deferred by a failure and then stopped is not delivered") {
  evw::Loop loop;
  int after = 0;
  evw::Timer thrower(loop, 0.0, 0.0, [](evw::Timer&, int) { throw 42; });
  evw::Timer later(loop, 0.0, 0.0, [&](evw::Timer&, int) { ++after; });
  thrower.set_priority(1);
  thrower.start();
  later.start();
  try {
    loop.run();
    FAIL("run() did not throw");
  } catch (int v) {
    CHECK(v == 42);
  }
  later.stop();
  loop.run();
  CHECK(after == 0);
}

TEST_CASE("an exception in a nested run() can be handled inside the outer callback") {
  evw::Loop loop;
  int outer_done = 0, handled = 0, next = 0;
  evw::Timer inner(loop, 0.0, 0.0, [](evw::Timer&, int) { throw std::runtime_error("inner"); });
  evw::Timer outer(loop, 0.0, 0.0, [&](evw::Timer&, int) {
    inner.start();
    try {
      loop.run();
    } catch (const std::runtime_error&) {
      ++handled;
    }
    ++outer_done;
  });
  evw::Timer follow(loop, 0.001, 0.0, [&](evw::Timer&, int) { ++next; });
  outer.start();
  follow.start();
  loop.run();
  CHECK(handled == 1);
  CHECK(outer_done == 1);
  CHECK(next == 1);  // the outer run() went on
}

TEST_CASE("empty callbacks are rejected") {
  evw::Loop loop;
  CHECK_THROWS_AS(evw::Timer(loop, 1.0, 0.0, nullptr), std::invalid_argument);
  evw::Timer t(loop, 1.0, 0.0, [](evw::Timer&, int) {});
  CHECK_THROWS_AS(t.set_callback(nullptr), std::invalid_argument);
  CHECK(loop.watcher_count() == 1);  // the failed construction left nothing behind
}

TEST_CASE("callbacks may be lambdas, function pointers or functors") {
  evw::Loop loop;
  static int calls = 0;
  struct Functor {
    int* n;
    void operator()(evw::Timer&, int) const { ++*n; }
  };
  int n = 0;
  void (*fp)(evw::Timer&, int) = [](evw::Timer&, int) { ++calls; };
  evw::Timer a(loop, 0.0, 0.0, fp);
  evw::Timer b(loop, 0.0, 0.0, Functor{&n});
  a.start();
  b.start();
  loop.run();
  CHECK(calls == 1);
  CHECK(n == 1);
  b.invoke(evw::Event::Timer);
  CHECK(n == 2);
}

TEST_CASE("a stop() followed by a nested run() in the same callback still ends the outer run()") {
  evw::Loop loop;
  int ticks = 0;
  bool guard_fired = false;
  evw::Timer t(loop, 0.0, 0.001, [&](evw::Timer&, int) {
    if (++ticks == 1) {
      loop.stop();
      loop.run(evw::Run::NoWait);  // libev's ev_run would cancel the stop on entry
    }
  });
  evw::Timer guard(loop, 1.0, 0.0, [&](evw::Timer&, int) {
    guard_fired = true;
    loop.stop(evw::Break::All);
  });
  t.start();
  guard.start();
  CHECK(loop.run());
  CHECK(ticks == 1);
  CHECK_FALSE(guard_fired);
}

// ---- a callback destroys its own loop ---------------------------------------

namespace {

void send_urgent(int fd) {
  char c = '!';
  REQUIRE(::send(fd, &c, 1, MSG_OOB) == 1);
}

}  // namespace

TEST_CASE("a callback may destroy its own loop: run() returns false, nothing else runs") {
  const int fds_before = evw_test::open_fd_count();
  auto [a, b] = evw_test::socket_pair();
  REQUIRE(::write(b.get(), "x", 1) == 1);
  auto loop = std::make_unique<evw::Loop>();
  bool owned_destroyed = false;
  struct Flag {
    bool* flag;
    ~Flag() { *flag = true; }
  };
  auto flag = std::make_shared<Flag>(Flag{&owned_destroyed});
  // Ready in the same iteration as the destroyer, at lower priority: must not run.
  int late = 0;
  evw::Io io(*loop, a.get(), evw::Event::Read, [&](evw::Io&, int) { ++late; });
  io.set_priority(-1);
  io.start();
  auto& owned = loop->add<evw::Idle>([&late, flag](evw::Idle&, int) { ++late; });
  owned.set_priority(-2);
  owned.start();
  evw::Timer destroyer(*loop, 0.0, 0.0, [&](evw::Timer&, int) { loop.reset(); });
  destroyer.start();
  evw::Loop* raw_before = loop.get();
  CHECK_FALSE(raw_before->run());
  CHECK(loop == nullptr);
  CHECK(late == 0);
  flag.reset();
  CHECK(owned_destroyed);  // the loop-owned Idle and its callable are gone
  for (evw::detail::WatcherBase* w : std::initializer_list<evw::detail::WatcherBase*>{&io, &destroyer}) {
    CHECK_FALSE(w->is_attached());
    CHECK_THROWS_AS(w->start(), std::logic_error);
  }
  a.reset();
  b.reset();
  CHECK(evw_test::open_fd_count() == fds_before);  // libev's fds went with the loop
}

TEST_CASE("a Priority callback may destroy its loop while other Priority watchers are ready") {
  for (bool sorted : {false, true}) {  // one priority: the lazy path; two: sorted entries
    CAPTURE(sorted);
    auto [c1, s1] = evw_test::tcp_pair();
    auto [c2, s2] = evw_test::tcp_pair();
    auto [c3, s3] = evw_test::tcp_pair();
    auto loop = std::make_unique<evw::Loop>();
    int calls = 0;
    auto cb = [&](evw::Priority&, int) {
      if (++calls == 1) loop.reset();
    };
    evw::Priority p1(*loop, s1.get(), cb), p2(*loop, s2.get(), cb), p3(*loop, s3.get(), cb);
    if (sorted) p2.set_priority(1);
    p1.start();
    p2.start();
    p3.start();
    send_urgent(c1.get());
    send_urgent(c2.get());
    send_urgent(c3.get());
    ::usleep(20000);  // all three ready before the one drain
    evw::Loop* l = loop.get();
    CHECK_FALSE(l->run());
    CHECK(calls == 1);
    CHECK_FALSE(p1.is_attached());
    CHECK_FALSE(p3.is_attached());
  }
}

TEST_CASE("a callback that destroys its loop and then throws: run() rethrows it") {
  auto loop = std::make_unique<evw::Loop>();
  evw::Timer t(*loop, 0.0, 0.0, [&](evw::Timer&, int) {
    loop.reset();
    throw std::runtime_error("after the loop");
  });
  t.start();
  evw::Loop* l = loop.get();
  CHECK_THROWS_WITH_AS(l->run(), "after the loop", std::runtime_error);
  CHECK(loop == nullptr);
  // The next loop is unaffected (no stale capture record left behind).
  evw::Loop next;
  evw::Timer u(next, 0.0, 0.0, [](evw::Timer&, int) { throw std::logic_error("plain"); });
  u.start();
  CHECK_THROWS_AS(next.run(), std::logic_error);
}

TEST_CASE("a loop destroyed inside a nested run(): both runs return, Cleanup watchers run") {
  auto loop = std::make_unique<evw::Loop>();
  int cleanups = 0;
  evw::Cleanup cleanup(*loop, [&](evw::Cleanup&, int revents) { cleanups += revents == evw::Event::Cleanup; });
  cleanup.start();
  bool inner_result = true;
  evw::Timer inner(*loop, 0.0, 0.0, [&](evw::Timer&, int) { loop.reset(); });
  evw::Timer outer(*loop, 0.0, 0.0, [&](evw::Timer& self, int) {
    inner.start();
    inner_result = self.loop().run();  // `self.loop()` is still alive here
  });
  outer.start();
  evw::Loop* l = loop.get();
  CHECK_FALSE(l->run());
  CHECK_FALSE(inner_result);
  CHECK(loop == nullptr);
  CHECK(cleanups == 1);
  CHECK_FALSE(cleanup.is_attached());
}
