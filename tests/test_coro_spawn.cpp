// spawn's handle and sync_wait's guard: cancel() of one spawned task from
// outside the loop, from a watcher's callback, from another task and from
// inside itself, while it waits on readable(), sleep() or signal() (its
// watchers stop, its frame goes, nothing resumes it); cancel() after the end,
// after a throw, after the Loop; join() and what when_all / when_any see of a
// cancelled task; sync_wait refusing to nest Loop::run().
#include <evw/coro/coro.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
using evw_test::Fd;

namespace {

// Counts live coroutine frames: a local of each test coroutine.
struct Alive {
  explicit Alive(int& count) : count_(count) { ++count_; }
  ~Alive() { --count_; }
  Alive(const Alive&) = delete;
  Alive& operator=(const Alive&) = delete;
  int& count_;
};

struct Boom : std::runtime_error {
  Boom() : std::runtime_error("boom") {}
};

void put(int fd) { REQUIRE(::write(fd, "x", 1) == 1); }

evw::Task<int> constant(int v) { co_return v; }

evw::Task<int> sleep_then(evw::Loop& loop, evw::Seconds delay, int value) {
  co_await evw::sleep(loop, delay);
  co_return value;
}

int usr1_handled = 0;
void on_usr1(int) { ++usr1_handled; }

// The test's own SIGUSR1 handler for one test case; the old disposition is put back.
struct Usr1Handler {
  Usr1Handler() {
    struct sigaction handler {};
    handler.sa_handler = on_usr1;
    ::sigaction(SIGUSR1, &handler, &old);
    usr1_handled = 0;
  }
  ~Usr1Handler() { ::sigaction(SIGUSR1, &old, nullptr); }
  Usr1Handler(const Usr1Handler&) = delete;
  Usr1Handler& operator=(const Usr1Handler&) = delete;
  static bool installed() {
    struct sigaction now {};
    ::sigaction(SIGUSR1, nullptr, &now);
    return now.sa_handler == &on_usr1;
  }
  struct sigaction old {};
};

}  // namespace

// ---- cancel -----------------------------------------------------------------

TEST_CASE("coro: spawn's handle cancels a task suspended in readable, sleep or signal, from outside the loop") {
  static_assert(std::is_copy_constructible_v<evw::SpawnHandle>);
  Usr1Handler handler;
  evw::Loop loop;
  auto sockets = evw_test::socket_pair();
  Fd& a = sockets.first;
  int frames = 0, resumed = 0, finished = 0;
  auto on_read = [&]() -> evw::Task<void> {
    Alive alive(frames);
    co_await evw::readable(loop, a.get());
    ++resumed;
  };
  auto on_sleep = [&]() -> evw::Task<void> {
    Alive alive(frames);
    co_await evw::sleep(loop, 10s);
    ++resumed;
  };
  auto on_signal = [&]() -> evw::Task<void> {
    Alive alive(frames);
    co_await evw::signal(loop, SIGUSR1);
    ++resumed;
  };
  auto bystander = [&]() -> evw::Task<void> {
    co_await evw::sleep(loop, 0.005);
    ++finished;
  };
  evw::SpawnHandle reader = evw::spawn(loop, on_read());
  evw::SpawnHandle sleeper = evw::spawn(loop, on_sleep());
  evw::SpawnHandle waiter = evw::spawn(loop, on_signal());
  evw::spawn(loop, bystander());  // the handle is dropped: it runs on
  loop.run(evw::Run::NoWait);
  REQUIRE(frames == 3);
  CHECK_FALSE(Usr1Handler::installed());  // the task's wait caught SIGUSR1

  for (evw::SpawnHandle* h : {&reader, &sleeper, &waiter}) {
    CHECK_FALSE(h->done());
    const int before = frames;
    h->cancel();  // outside run(): destroyed before cancel() returns
    CHECK(frames == before - 1);
    CHECK(h->done());
    CHECK(h->cancelled());
  }
  CHECK(Usr1Handler::installed());  // the signal's watcher stopped with the task
  put(sockets.second.get());        // would wake the reader
  ::raise(SIGUSR1);                 // goes to the test's handler now
  CHECK(usr1_handled == 1);
  CHECK_FALSE(loop.run());  // returns: only the bystander was left, and it ended
  CHECK(finished == 1);
  CHECK(resumed == 0);
  CHECK(loop.watcher_count() == 1);  // the spawn starter
  reader.cancel();                    // again: nothing
  CHECK(reader.cancelled());
}

TEST_CASE("coro: cancel() from a watcher's callback or another task destroys the task right after that callback") {
  evw::Loop loop;
  auto sockets = evw_test::socket_pair();
  Fd &a = sockets.first, &b = sockets.second;
  int frames = 0;
  bool resumed = false;
  auto victim = [&]() -> evw::Task<void> {
    Alive alive(frames);
    co_await evw::readable(loop, a.get());
    resumed = true;
  };

  SUBCASE("from a watcher's callback, with the task's own event ready in the same iteration") {
    evw::SpawnHandle handle = evw::spawn(loop, victim());
    loop.run(evw::Run::NoWait);
    REQUIRE(frames == 1);
    put(b.get());  // the victim's Io is ready in the canceller's iteration
    evw::Timer canceller(loop, 0.0, 0.0, [&](evw::Timer&, int) {
      handle.cancel();
      CHECK(handle.cancelled());  // at once, although the frame goes after this callback
    });
    canceller.set_priority(evw::max_priority);  // runs before the victim's Io
    canceller.start();
    CHECK_FALSE(loop.run());  // returns: nothing is left active
    CHECK(frames == 0);
    CHECK_FALSE(resumed);
  }
  SUBCASE("from a watcher's callback, with the task's event ready at max_priority too") {
    // The reaper must come before any other event of the iteration, also one
    // at the highest priority.
    evw::Watch<evw::Io> input(loop, a.get(), evw::Event::Read);
    input->set_priority(evw::max_priority);
    auto urgent_victim = [&]() -> evw::Task<void> {
      Alive alive(frames);
      co_await input.next();
      resumed = true;
    };
    evw::SpawnHandle handle = evw::spawn(loop, urgent_victim());
    loop.run(evw::Run::NoWait);
    REQUIRE(frames == 1);
    put(b.get());
    evw::Timer canceller(loop, 0.0, 0.0, [&](evw::Timer&, int) { handle.cancel(); });
    canceller.set_priority(evw::max_priority);
    canceller.start();
    CHECK_FALSE(loop.run());
    CHECK(frames == 0);
    CHECK_FALSE(resumed);
    CHECK_FALSE(input->is_active());  // the cancelled wait gave it back stopped
  }
  SUBCASE("from another task") {
    evw::SpawnHandle handle = evw::spawn(loop, victim());
    auto canceller = [&]() -> evw::Task<void> {
      co_await evw::sleep(loop, 0.002);
      put(b.get());
      handle.cancel();
      co_await evw::sleep(loop, 0.002);
      CHECK(frames == 0);  // gone by the next callback
    };
    evw::spawn(loop, canceller());
    CHECK_FALSE(loop.run());
    CHECK(frames == 0);
    CHECK_FALSE(resumed);
    CHECK(handle.cancelled());
  }
  CHECK(loop.watcher_count() == 2);  // the spawn starter and the reaper
}

TEST_CASE("coro: a task that cancels itself goes on until it next suspends, and is never resumed") {
  evw::Loop loop;
  int frames = 0;
  std::vector<std::string> log;
  evw::SpawnHandle self;
  auto task = [&]() -> evw::Task<void> {
    Alive alive(frames);
    co_await evw::sleep(loop, 0.001);
    self.cancel();
    log.push_back("after cancel");
    co_await evw::sleep(loop, 0.0);  // suspends: the reaper destroys it
    log.push_back("resumed");
  };
  self = evw::spawn(loop, task());
  CHECK_FALSE(loop.run());  // no exception, nothing left
  CHECK(frames == 0);
  CHECK(log == std::vector<std::string>{"after cancel"});
  CHECK(self.cancelled());

  // From a child of a when_all inside it: the siblings go with it.
  log.clear();
  auto nested = [&]() -> evw::Task<void> {
    Alive alive(frames);
    auto child = [&]() -> evw::Task<int> {
      Alive child_alive(frames);
      co_await evw::sleep(loop, 0.001);
      self.cancel();
      co_await evw::sleep(loop, 1.0);
      log.push_back("child resumed");
      co_return 1;
    };
    co_await evw::when_all(child(), sleep_then(loop, 2.0, 2));
    log.push_back("parent resumed");
  };
  self = evw::spawn(loop, nested());
  CHECK_FALSE(loop.run());
  CHECK(frames == 0);
  CHECK(log.empty());
}

TEST_CASE("coro: cancel() does nothing after the end, after a throw, after the Loop; an empty handle") {
  int frames = 0;
  evw::SpawnHandle quick, thrower, orphan;
  {
    evw::Loop loop;
    auto ends = [&]() -> evw::Task<int> { co_return 1; };
    auto throws = [&]() -> evw::Task<void> {
      co_await evw::sleep(loop, 0.001);
      throw Boom();
    };
    auto waits = [&]() -> evw::Task<void> {
      Alive alive(frames);
      co_await evw::sleep(loop, 10s);
    };
    quick = evw::spawn(loop, ends());
    thrower = evw::spawn(loop, throws());
    orphan = evw::spawn(loop, waits());
    CHECK_THROWS_AS(loop.run(), Boom);
    CHECK(quick.done());
    CHECK_FALSE(quick.cancelled());
    quick.cancel();
    CHECK(thrower.done());
    CHECK_FALSE(thrower.cancelled());
    thrower.cancel();  // its frame still waits to be freed by the registry: left alone
    CHECK(loop.run(evw::Run::NoWait));  // the loop goes on: `orphan` waits
    CHECK(frames == 1);
  }
  CHECK(frames == 0);          // the Loop's destruction cancelled it
  CHECK(orphan.cancelled());
  orphan.cancel();             // its loop is gone: nothing
  thrower.cancel();

  evw::SpawnHandle empty;
  CHECK_FALSE(empty);
  CHECK_FALSE(empty.done());
  empty.cancel();
  evw::Loop loop;
  auto join_empty = [&]() -> evw::Task<void> { co_await empty.join(); };
  CHECK_THROWS_AS(evw::sync_wait(loop, join_empty()), std::logic_error);
}

TEST_CASE("coro: a task cancelled before it started never runs") {
  evw::Loop loop;
  std::vector<int> started;
  auto job = [&](int id) -> evw::Task<void> {
    started.push_back(id);
    co_return;
  };
  evw::spawn(loop, job(1));
  evw::SpawnHandle second = evw::spawn(loop, job(2));
  evw::spawn(loop, job(3));
  second.cancel();
  CHECK(second.cancelled());
  CHECK_FALSE(loop.run());
  CHECK(started == std::vector<int>{1, 3});
}

// ---- join, when_all, when_any ---------------------------------------------------

TEST_CASE("coro: join() gives a task's end; when_all and when_any parents see a cancelled one as evw::Cancelled") {
  evw::Loop loop;
  int frames = 0;
  auto sleeper = [&]() -> evw::Task<void> {
    Alive alive(frames);
    co_await evw::sleep(loop, 10s);
  };
  auto body = [&]() -> evw::Task<void> {
    // Ended normally: join() returns.
    evw::SpawnHandle quick = evw::spawn(loop, sleep_then(loop, 0.001, 1));
    co_await quick.join();
    CHECK(quick.done());
    co_await quick.join();  // and again, at once

    // A when_all over a joined task that gets cancelled: Cancelled, and the
    // other child is cancelled too (it does not wait its second).
    evw::SpawnHandle victim = evw::spawn(loop, sleeper());
    evw::Timer canceller(loop, 0.002, 0.0, [&](evw::Timer&, int) { victim.cancel(); });
    canceller.start();
    const double before = loop.now();
    CHECK_THROWS_AS(co_await evw::when_all(victim.join(), sleep_then(loop, 1.0, 2)), evw::Cancelled);
    CHECK(loop.now() - before < 0.5);

    // when_any: the cancelled task finishes first, with its exception.
    evw::SpawnHandle other = evw::spawn(loop, sleeper());
    canceller.set_callback([&](evw::Timer&, int) { other.cancel(); });
    canceller.start();
    CHECK_THROWS_AS(co_await evw::when_any(other.join(), evw::sleep(loop, 1.0)), evw::Cancelled);
    CHECK(loop.now() - before < 1.0);

    // Joined after the cancel: at once.
    CHECK_THROWS_AS(co_await other.join(), evw::Cancelled);
  };
  evw::sync_wait(loop, body());
  CHECK(frames == 0);
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("coro: join() of a task that threw rethrows its exception, which run() reports too") {
  evw::Loop loop;
  auto throws = [&]() -> evw::Task<void> {
    co_await evw::sleep(loop, 0.001);
    throw Boom();
  };
  evw::SpawnHandle failing = evw::spawn(loop, throws());
  bool joined_boom = false;
  auto joiner = [&]() -> evw::Task<void> {
    try {
      co_await failing.join();
    } catch (const Boom&) {
      joined_boom = true;
    }
  };
  evw::spawn(loop, joiner());
  CHECK_THROWS_AS(loop.run(), Boom);  // the task's own report
  CHECK_FALSE(loop.run());            // the joiner is resumed by the loop
  CHECK(joined_boom);
}

// ---- sync_wait --------------------------------------------------------------------

TEST_CASE("coro: sync_wait from a callback or a coroutine of the same loop throws std::logic_error") {
  evw::Loop loop;
  SUBCASE("from a watcher's callback") {
    evw::Timer nests(loop, 0.0, 0.0, [&](evw::Timer&, int) { evw::sync_wait(loop, constant(1)); });
    nests.start();
    try {
      loop.run();
      FAIL("no exception");
    } catch (const std::logic_error& e) {
      CHECK(std::string(e.what()).find("nest") != std::string::npos);
    }
    CHECK(loop.depth() == 0);
  }
  SUBCASE("from the task it runs, before and after it first suspends") {
    auto task = [&]() -> evw::Task<int> {
      CHECK_THROWS_AS(evw::sync_wait(loop, constant(1)), std::logic_error);  // loop not running yet
      co_await evw::sleep(loop, 0.001);
      CHECK_THROWS_AS(evw::sync_wait(loop, sleep_then(loop, 0.001, 2)), std::logic_error);
      co_return 3;
    };
    CHECK(evw::sync_wait(loop, task()) == 3);
  }
  SUBCASE("from a spawned task") {
    bool refused = false;
    auto task = [&]() -> evw::Task<void> {
      try {
        evw::sync_wait(loop, sleep_then(loop, 0.001, 2));
      } catch (const std::logic_error&) {
        refused = true;
      }
      co_return;
    };
    evw::spawn(loop, task());
    loop.run();
    CHECK(refused);
  }
  SUBCASE("another loop may be waited on from a callback") {
    evw::Loop other;
    int got = 0;
    evw::Timer nests(loop, 0.0, 0.0, [&](evw::Timer&, int) { got = evw::sync_wait(other, sleep_then(other, 0.001, 4)); });
    nests.start();
    loop.run();
    CHECK(got == 4);
  }
  CHECK(evw::sync_wait(loop, constant(5)) == 5);  // and from outside, as before
}
