// Fork: runs in a real forked child after loop.fork(), not without it, not in
// the parent; set_priority on pending forks, destruction in callbacks,
// detaching.
#include <evw/watchers/fork.hpp>
#include <evw/core/loop.hpp>
#include <evw/watchers/timer.hpp>

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "support.hpp"

namespace {

// Fork; the child runs `child` and _exits with its result (no doctest, no
// destructors there); the parent gets the child's exit code (-1 if it died).
template <class F>
int in_child(F child) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::alarm(10);  // a hung child dies instead of hanging the suite
    int code = 99;
    try {
      code = child();
    } catch (...) {
      code = 98;
    }
    ::_exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("Fork runs in the child after loop.fork(), never in the parent") {
  evw::Loop loop;
  int fired = 0, last = 0;
  evw::Fork fork_watcher(loop, [&](evw::Fork& w, int revents) {
    ++fired;
    last = revents;
    w.stop();
  });
  fork_watcher.start();
  int code = in_child([&] {
    loop.fork();
    loop.run(evw::Run::NoWait);
    return fired == 1 && last == evw::Event::Fork ? 42 : 1;
  });
  CHECK(code == 42);
  // without loop.fork() nothing happens in the child
  code = in_child([&] {
    loop.run(evw::Run::NoWait);
    return fired == 0 ? 43 : 1;
  });
  CHECK(code == 43);
  loop.run(evw::Run::NoWait);
  CHECK(fired == 0);  // the parent's loop never saw a fork
  fork_watcher.stop();
}

TEST_CASE("Fork callbacks run in priority order before the child's other events") {
  evw::Loop loop;
  std::vector<int> order;
  evw::Fork low(loop, [&](evw::Fork& w, int) {
    order.push_back(0);
    w.stop();
  });
  evw::Fork high(loop, [&](evw::Fork& w, int) {
    order.push_back(1);
    w.stop();
  });
  evw::Timer timer(loop, 0.0, 0.0, [&](evw::Timer&, int) { order.push_back(2); });
  high.set_priority(2);
  low.start();
  high.start();
  timer.start();
  int code = in_child([&] {
    loop.fork();
    loop.run();
    return order == std::vector<int>{1, 0, 2} ? 44 : 1;
  });
  CHECK(code == 44);
  low.stop();
  high.stop();
  timer.stop();
}

TEST_CASE("Fork set_priority on a pending fork watcher delivers it once") {
  evw::Loop loop;
  int calls = 0;
  evw::Fork f(loop, [&](evw::Fork&, int) { ++calls; });
  f.start();
  f.feed(evw::Event::Fork);
  f.set_priority(1);
  CHECK(f.is_pending());
  CHECK(f.is_active());
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  f.stop();
}

TEST_CASE("Fork priorities order its events among other watcher types") {
  evw::Loop loop;
  std::vector<int> order;
  evw::Fork f(loop, [&](evw::Fork&, int) { order.push_back(0); });
  evw::Timer t(loop, 10.0, 0.0, [&](evw::Timer&, int) { order.push_back(1); });
  t.set_priority(-1);
  f.feed(evw::Event::Fork);
  t.feed(evw::Event::Timer);
  loop.run(evw::Run::NoWait);
  CHECK(order == std::vector<int>{0, 1});
}

TEST_CASE("Fork user data and destruction inside its own callback") {
  evw::Loop loop;
  int seen = 0;
  std::unique_ptr<evw::Fork> self;
  self = std::make_unique<evw::Fork>(loop, [&](evw::Fork& w, int) {
    seen = std::any_cast<int>(w.data());
    self.reset();
  });
  self->data() = 9;
  self->start();
  self->feed(evw::Event::Fork);
  CHECK_FALSE(loop.run());
  CHECK(seen == 9);
  CHECK(loop.watcher_count() == 0);
}

TEST_CASE("a Fork watcher whose loop is destroyed while active becomes detached") {
  auto loop = std::make_unique<evw::Loop>();
  evw::Fork f(*loop, [](evw::Fork&, int) {});
  f.start();
  loop.reset();
  CHECK_FALSE(f.is_attached());
  CHECK_FALSE(f.is_active());
  CHECK_THROWS_AS(f.start(), std::logic_error);
}

TEST_CASE("a loop-owned Fork active when its loop is destroyed is destroyed with it") {
  auto loop = std::make_unique<evw::Loop>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> alive = token;
  auto& owned = loop->add<evw::Fork>([token](evw::Fork&, int) {});
  owned.start();
  owned.feed(evw::Event::Fork);  // active and pending
  token.reset();
  REQUIRE_FALSE(alive.expired());  // held by the watcher's callback
  loop.reset();
  CHECK(alive.expired());
}

TEST_CASE("Fork: a stopped watcher does not run in the child; one re-prioritised while active does") {
  evw::Loop loop;
  std::vector<int> order;
  evw::Fork stopped(loop, [&](evw::Fork&, int) { order.push_back(0); });
  evw::Fork moved(loop, [&](evw::Fork& w, int) {
    order.push_back(w.priority());
    w.stop();
  });
  evw::Fork other(loop, [&](evw::Fork& w, int) {
    order.push_back(10);
    w.stop();
  });
  other.set_priority(1);
  stopped.start();
  moved.start();
  other.start();
  stopped.stop();
  moved.set_priority(2);  // while active: it must still run, now before `other`
  CHECK(moved.is_active());
  CHECK_FALSE(moved.is_pending());
  int code = in_child([&] {
    loop.fork();
    loop.run(evw::Run::NoWait);
    return order == std::vector<int>{2, 10} ? 45 : 1;
  });
  CHECK(code == 45);
  CHECK(order.empty());  // nothing in the parent
  moved.stop();
  other.stop();
}
