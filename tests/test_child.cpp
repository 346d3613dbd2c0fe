// Child: real forked children (exit status, any pid, traced stops and
// continues) on the default loop (other loops use a pidfd:
// test_child_pidfd.cpp), fixed max_priority priority, set on active/pending
// watchers, destruction in callbacks, bad input.
#include <evw/watchers/child.hpp>
#include <evw/core/loop.hpp>
#include <evw/watchers/timer.hpp>

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "support.hpp"

using evw_test::run_until;

namespace {

// A child that waits for the parent's word on a pipe, then runs `then`.
struct Kid {
  pid_t pid = -1;
  evw_test::Fd go;

  template <class F>
  explicit Kid(F then) {
    int p[2];
    REQUIRE(::pipe(p) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::alarm(10);
      ::close(p[1]);
      char c;
      while (::read(p[0], &c, 1) < 0) {
      }
      then();
      ::_exit(0);
    }
    ::close(p[0]);
    go.reset(p[1]);
  }
  void release() {
    REQUIRE(::write(go.get(), "g", 1) == 1);
    go.reset();
  }
};

}  // namespace

TEST_CASE("Child reports the exit status of a specific child process") {
  evw::Loop& loop = evw::Loop::default_loop();
  Kid kid([] { ::_exit(7); });
  int calls = 0, last = 0;
  evw::Child child(loop, kid.pid, [&](evw::Child& w, int revents) {
    ++calls;
    last = revents;
    w.stop();
  });
  CHECK(child.pid() == kid.pid);
  CHECK_FALSE(child.trace());
  CHECK(child.rpid() == 0);
  child.start();
  kid.release();
  CHECK(run_until(loop, [&] { return calls == 1; }, 5.0));
  CHECK(last == evw::Event::Child);
  CHECK(child.rpid() == kid.pid);
  REQUIRE(WIFEXITED(child.rstatus()));
  CHECK(WEXITSTATUS(child.rstatus()) == 7);
  CHECK(::waitpid(kid.pid, nullptr, WNOHANG) < 0);  // libev reaped it
}

TEST_CASE("Child with pid 0 sees any child; with trace also stops and continues") {
  evw::Loop& loop = evw::Loop::default_loop();
  Kid kid([] {
    ::raise(SIGSTOP);
    ::_exit(3);
  });
  std::vector<int> statuses;
  evw::Child any(loop, 0, true, [&](evw::Child& w, int) {
    CHECK(w.rpid() == kid.pid);
    statuses.push_back(w.rstatus());
    if (WIFSTOPPED(w.rstatus())) ::kill(w.rpid(), SIGCONT);
    if (WIFEXITED(w.rstatus())) w.stop();
  });
  int untraced = 0;
  evw::Child plain(loop, kid.pid, [&](evw::Child& w, int) {
    ++untraced;
    CHECK(WIFEXITED(w.rstatus()));
    w.stop();
  });
  CHECK(any.trace());
  any.start();
  plain.start();
  kid.release();
  CHECK(run_until(loop, [&] { return !any.is_active() && !plain.is_active(); }, 5.0));
  REQUIRE(statuses.size() == 3);
  CHECK(WIFSTOPPED(statuses[0]));
  CHECK(WSTOPSIG(statuses[0]) == SIGSTOP);
  CHECK(WIFCONTINUED(statuses[1]));
  CHECK(WIFEXITED(statuses[2]));
  CHECK(WEXITSTATUS(statuses[2]) == 3);
  CHECK(untraced == 1);  // without trace only the exit
}

TEST_CASE("Child rejects any-child and trace on other loops, negative pids and priorities other than max_priority") {
  evw::Loop other;
  auto cb = [](evw::Child&, int) {};
  // Other loops watch one child by its pidfd: no pid 0, no trace there.
  CHECK_THROWS_AS(evw::Child(other, 0, cb), std::logic_error);
  CHECK_THROWS_AS(evw::Child(other, 1, true, cb), std::logic_error);
  CHECK(other.watcher_count() == 0);
  evw::Loop& loop = evw::Loop::default_loop();
  CHECK_THROWS_AS(evw::Child(loop, -1, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Child(loop, 1, nullptr), std::invalid_argument);
  evw::Child child(loop, 1, cb);
  CHECK(child.priority() == evw::max_priority);
  CHECK_THROWS_AS(child.set(-5), std::invalid_argument);
  CHECK(child.pid() == 1);
  CHECK_THROWS_AS(child.set_priority(0), std::invalid_argument);
  CHECK_THROWS_AS(child.set_priority(7), std::out_of_range);
  child.set_priority(evw::max_priority);
  CHECK(child.priority() == evw::max_priority);
  evw::detail::WatcherBase& base = child;  // the rule holds through the base too
  CHECK_THROWS_AS(base.set_priority(-1), std::invalid_argument);
}

TEST_CASE("Child set() on an active, pending watcher delivers the event once") {
  evw::Loop& loop = evw::Loop::default_loop();
  int calls = 0;
  evw::Child child(loop, 123456, [&](evw::Child&, int) { ++calls; });
  child.start();
  child.feed(evw::Event::Child);
  child.set(654321, true);
  CHECK(child.is_pending());
  CHECK(child.is_active());
  CHECK(child.pid() == 654321);
  CHECK(child.trace());
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  child.stop();
}

TEST_CASE("Child events run before events of lower priority of other watcher types") {
  evw::Loop& loop = evw::Loop::default_loop();
  std::vector<int> order;
  evw::Timer t(loop, 10.0, 0.0, [&](evw::Timer&, int) { order.push_back(1); });
  evw::Child c(loop, 0, [&](evw::Child&, int) { order.push_back(0); });
  t.set_priority(evw::max_priority - 1);
  t.feed(evw::Event::Timer);
  c.feed(evw::Event::Child);
  loop.run(evw::Run::NoWait);
  CHECK(order == std::vector<int>{0, 1});
}

TEST_CASE("Child user data and destruction inside its own callback") {
  evw::Loop& loop = evw::Loop::default_loop();
  Kid kid([] { ::_exit(1); });
  int seen = 0;
  std::unique_ptr<evw::Child> self;
  self = std::make_unique<evw::Child>(loop, kid.pid, [&](evw::Child& w, int) {
    seen = std::any_cast<int>(w.data());
    self.reset();
  });
  self->data() = 21;
  self->start();
  const std::size_t before = loop.watcher_count();
  kid.release();
  CHECK(run_until(loop, [&] { return self == nullptr; }, 5.0));
  CHECK(seen == 21);
  CHECK(loop.watcher_count() == before - 1);
}

TEST_CASE("Child set() while active watches the new pid, not the old one") {
  evw::Loop& loop = evw::Loop::default_loop();
  Kid first([] { ::_exit(4); });
  Kid second([] { ::_exit(5); });
  std::vector<int> pids;
  evw::Child child(loop, first.pid, [&](evw::Child& w, int) {
    pids.push_back(w.rpid());
    if (WIFEXITED(w.rstatus())) CHECK(WEXITSTATUS(w.rstatus()) == 5);
  });
  int any_calls = 0;
  evw::Child any(loop, 0, [&](evw::Child&, int) { ++any_calls; });  // sees both exits
  child.start();
  any.start();
  child.set(second.pid);
  CHECK(child.is_active());
  CHECK(child.pid() == second.pid);
  first.release();
  CHECK(run_until(loop, [&] { return any_calls == 1; }, 5.0));
  CHECK(pids.empty());  // the old pid is no longer watched
  second.release();
  CHECK(run_until(loop, [&] { return pids.size() == 1; }, 5.0));
  CHECK(pids == std::vector<int>{second.pid});
  CHECK(run_until(loop, [&] { return any_calls == 2; }, 5.0));
  child.stop();
  any.stop();
}
