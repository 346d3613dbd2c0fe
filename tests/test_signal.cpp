// Signal: raise/kill, one signal in several loops, SIGCHLD next to Child,
// dispositions restored, set on active/pending watchers, priorities,
// destruction in callbacks, bad input. (Several loops on several threads:
// test_signal_threads.cpp.)
#include <evw/watchers/signal.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support.hpp"

using evw_test::run_until;

namespace {
void on_usr1(int) {}
}  // namespace

TEST_CASE("Signal delivers a raised signal as an event") {
  evw::Loop loop;
  int got = 0, rev = 0;
  evw::Signal s(loop, SIGUSR1, [&](evw::Signal& w, int revents) {
    got = w.signum();
    rev = revents;
  });
  CHECK_FALSE(s.is_active());
  s.start();
  ::raise(SIGUSR1);
  CHECK(run_until(loop, [&] { return got != 0; }));
  CHECK(got == SIGUSR1);
  CHECK(rev == evw::Event::Signal);
}

TEST_CASE("Signal from another process reaches the loop") {
  evw::Loop loop;
  int got = 0;
  evw::Signal s(loop, SIGUSR2, [&](evw::Signal&, int) { ++got; });
  s.start();
  pid_t parent = ::getpid();
  pid_t child = ::fork();
  if (child == 0) {
    ::kill(parent, SIGUSR2);
    ::_exit(0);
  }
  CHECK(run_until(loop, [&] { return got >= 1; }));
  ::waitpid(child, nullptr, 0);
}

TEST_CASE("Signal rejects bad signal numbers") {
  evw::Loop loop;
  auto cb = [](evw::Signal&, int) {};
  CHECK_THROWS_AS(evw::Signal(loop, 0, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Signal(loop, -1, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Signal(loop, 65, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Signal(loop, SIGKILL, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Signal(loop, SIGSTOP, cb), std::invalid_argument);
  evw::Signal s(loop, SIGUSR1, cb);
  CHECK_THROWS_AS(s.set(0), std::invalid_argument);
  CHECK(s.signum() == SIGUSR1);
  evw::Signal rt(loop, SIGRTMAX, cb);  // 64: the last valid one
  rt.start();
  rt.stop();
}

// glibc reserves the signals below SIGRTMIN (32 and 33 for its threads) and
// refuses them in sigaction and sigaddset: libev's handler or signalfd was
// silently never installed, the watcher never fired, and a kill() of that
// signal terminated the process (its default action).
TEST_CASE("Signal rejects the signals reserved by the C library") {
  evw::Loop loop;
  auto cb = [](evw::Signal&, int) {};
  for (int sig = 32; sig < SIGRTMIN; ++sig) {
    CAPTURE(sig);
    try {
      evw::Signal s(loop, sig, cb);
      FAIL("no exception");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).find("reserved") != std::string::npos);
    }
    evw::Signal s(loop, SIGUSR1, cb);
    CHECK_THROWS_AS(s.set(sig), std::invalid_argument);
    CHECK(s.signum() == SIGUSR1);
  }
  evw::Signal first_rt(loop, SIGRTMIN, cb);  // the first one applications may use
  first_rt.start();
  first_rt.stop();
}

// Before evw had its own handler, a second loop's start() threw
// std::logic_error (libev asserts on one signal in two loops) and the default
// loop kept SIGCHLD to itself. Now every loop may watch any signal.
TEST_CASE("a signal watched by several loops reaches every watcher in each, once per delivery") {
  evw::Loop a, b;
  int in_a = 0, in_a2 = 0, in_b = 0;
  evw::Signal sa(a, SIGUSR1, [&](evw::Signal&, int) { ++in_a; });
  evw::Signal sa2(a, SIGUSR1, [&](evw::Signal&, int) { ++in_a2; });
  evw::Signal sb(b, SIGUSR1, [&](evw::Signal&, int) { ++in_b; });
  sa.start();
  sa2.start();
  sb.start();
  CHECK(sb.is_active());
  REQUIRE(::raise(SIGUSR1) == 0);
  CHECK(run_until(a, [&] { return in_a == 1 && in_a2 == 1; }));
  CHECK(run_until(b, [&] { return in_b == 1; }));
  for (int i = 0; i < 3; ++i) {
    a.run(evw::Run::NoWait);
    b.run(evw::Run::NoWait);
  }
  CHECK(in_a == 1);
  CHECK(in_a2 == 1);
  CHECK(in_b == 1);
  // a stops watching: b still gets the next one, a does not
  sa.stop();
  sa2.stop();
  REQUIRE(::raise(SIGUSR1) == 0);
  CHECK(run_until(b, [&] { return in_b == 2; }));
  a.run(evw::Run::NoWait);
  CHECK(in_a == 1);
  sb.stop();
}

TEST_CASE("SIGCHLD: Signal watchers in other loops and the default loop's Child watchers all work") {
  evw::Loop& def = evw::Loop::default_loop();
  evw::Loop other;
  int in_other = 0, in_def = 0, status = -1;
  evw::Signal so(other, SIGCHLD, [&](evw::Signal&, int) { ++in_other; });
  evw::Signal sd(def, SIGCHLD, [&](evw::Signal&, int) { ++in_def; });
  so.start();
  sd.start();
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) ::_exit(7);
    evw::Child child(def, pid, [&](evw::Child& w, int) {
      status = w.rstatus();
      w.stop();
    });
    child.start();
    CHECK(run_until(def, [&] { return status != -1; }));  // libev still reaps through evw's handler
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 7);
    if (round == 0) {
      CHECK(run_until(other, [&] { return in_other == 1; }));
      CHECK(in_def >= 1);
      // The second round: no Signal watcher of SIGCHLD left, libev's own handler is back.
      so.stop();
      sd.stop();
    }
    status = -1;
  }
  CHECK(in_other == 1);
}

TEST_CASE("the disposition a signal had is restored when its last watcher stops") {
  struct sigaction mine {}, old {}, now {};
  mine.sa_handler = on_usr1;
  ::sigaction(SIGUSR1, &mine, &old);
  {
    evw::Loop loop;
    evw::Signal s(loop, SIGUSR1, [](evw::Signal&, int) {});
    s.start();
    s.stop();
  }
  ::sigaction(SIGUSR1, nullptr, &now);
  CHECK((now.sa_handler == on_usr1));
  {
    evw::Loop::default_loop();
    evw::Signal s(evw::Loop::default_loop(), SIGUSR1, [](evw::Signal&, int) {});
    s.start();  // the default loop installs its own handler…
    s.stop();   // …and libev would leave SIG_DFL behind
  }
  ::sigaction(SIGUSR1, nullptr, &now);
  CHECK((now.sa_handler == on_usr1));
  ::sigaction(SIGUSR1, &old, nullptr);
}

TEST_CASE("Signal set() while active or pending moves it and keeps the pending event") {
  evw::Loop loop;
  std::vector<int> seen;
  evw::Signal s(loop, SIGUSR1, [&](evw::Signal& w, int) { seen.push_back(w.signum()); });
  s.start();
  s.set(SIGUSR2);
  CHECK(s.is_active());
  ::raise(SIGUSR2);
  CHECK(run_until(loop, [&] { return seen.size() == 1; }));
  s.feed(evw::Event::Signal);
  s.set(SIGUSR1);
  s.set_priority(1);
  loop.run(evw::Run::NoWait);
  CHECK(seen == std::vector<int>{SIGUSR2, SIGUSR1});
  loop.run(evw::Run::NoWait);
  CHECK(seen.size() == 2);
}

TEST_CASE("Signal priorities, user data and destruction inside callbacks") {
  evw::Loop loop;
  std::vector<int> order;
  std::unique_ptr<evw::Signal> low, high;
  low = std::make_unique<evw::Signal>(loop, SIGUSR1, [&](evw::Signal&, int) { order.push_back(0); });
  high = std::make_unique<evw::Signal>(loop, SIGUSR2, [&](evw::Signal& w, int) {
    order.push_back(std::any_cast<int>(w.data()));
    low.reset();   // pending in this iteration
    high.reset();  // itself
  });
  high->data() = 2;
  high->set_priority(2);
  low->start();
  high->start();
  ::raise(SIGUSR1);
  ::raise(SIGUSR2);
  CHECK(run_until(loop, [&] { return !high; }));
  loop.run(evw::Run::NoWait);
  CHECK(order == std::vector<int>{2});
}

TEST_CASE("a Signal whose loop is destroyed while active is detached and releases the signal") {
  auto loop = std::make_unique<evw::Loop>();
  evw::Signal s(*loop, SIGUSR1, [](evw::Signal&, int) {});
  s.start();
  loop.reset();
  CHECK_FALSE(s.is_active());
  CHECK_THROWS_AS(s.start(), std::logic_error);
  evw::Loop other;
  evw::Signal again(other, SIGUSR1, [](evw::Signal&, int) {});
  again.start();
}

// libev keeps a process-wide "received" flag per signal and reports it at the
// loop's next wakeup. A signal received while its last watcher was still
// active, and that watcher stopped before the loop got to it, must not be
// reported to a watcher of that signal started later (in this loop or
// another) without a new signal.
TEST_CASE("a signal received before its last watcher stopped does not reach a later watcher") {
  SUBCASE("same loop") {
    evw::Loop loop;
    int first = 0, later = 0;
    evw::Signal a(loop, SIGUSR1, [&](evw::Signal&, int) { ++first; });
    a.start();
    REQUIRE(::raise(SIGUSR1) == 0);  // recorded by libev's handler, not yet dispatched
    a.stop();
    evw::Signal b(loop, SIGUSR1, [&](evw::Signal&, int) { ++later; });
    b.start();
    for (int i = 0; i < 3; ++i) loop.run(evw::Run::NoWait);  // the wakeup pipe is still readable
    CHECK(first == 0);
    CHECK(later == 0);
    REQUIRE(::raise(SIGUSR1) == 0);  // a real one still arrives
    CHECK(evw_test::run_until(loop, [&] { return later == 1; }));
  }
  SUBCASE("another loop, woken by another signal") {
    int later = 0, other = 0;
    {
      evw::Loop first;
      evw::Signal a(first, SIGUSR1, [](evw::Signal&, int) {});
      a.start();
      REQUIRE(::raise(SIGUSR1) == 0);
    }  // the loop and its watcher go before dispatching it
    evw::Loop loop;
    evw::Signal b(loop, SIGUSR1, [&](evw::Signal&, int) { ++later; });
    evw::Signal c(loop, SIGUSR2, [&](evw::Signal&, int) { ++other; });
    b.start();
    c.start();
    REQUIRE(::raise(SIGUSR2) == 0);  // wakes the loop: libev scans every flag
    CHECK(evw_test::run_until(loop, [&] { return other == 1; }));
    loop.run(evw::Run::NoWait);
    CHECK(later == 0);
  }
}

// set() to another signal moves the last watcher of the old one away: a
// signal received before set() but not yet dispatched must not reach a later
// watcher of the old signal without a new signal (as with stop()).
TEST_CASE("Signal set() to another signal does not leave a received signal to a later watcher") {
  evw::Loop loop;
  int first = 0, later = 0;
  evw::Signal a(loop, SIGUSR1, [&](evw::Signal&, int) { ++first; });
  a.start();
  REQUIRE(::raise(SIGUSR1) == 0);  // recorded by libev's handler, not yet dispatched
  a.set(SIGUSR2);
  CHECK(a.is_active());
  evw::Signal b(loop, SIGUSR1, [&](evw::Signal&, int) { ++later; });
  b.start();
  for (int i = 0; i < 3; ++i) loop.run(evw::Run::NoWait);
  CHECK(later == 0);
  CHECK(first == 0);  // received before set(): dropped, as by stop()
  REQUIRE(::raise(SIGUSR1) == 0);  // a real one still arrives
  CHECK(run_until(loop, [&] { return later == 1; }));
  REQUIRE(::raise(SIGUSR2) == 0);  // and a watches its new signal
  const int before = first;
  CHECK(run_until(loop, [&] { return first == before + 1; }));
}

TEST_CASE("Signal priorities order a raised signal against a due Timer, both ways") {
  for (int sig_pri : {1, -1}) {
    CAPTURE(sig_pri);
    evw::Loop loop;
    std::vector<int> order;
    evw::Signal s(loop, SIGUSR1, [&](evw::Signal&, int) { order.push_back(0); });
    evw::Timer t(loop, 0.0, 0.0, [&](evw::Timer&, int) { order.push_back(1); });
    s.set_priority(sig_pri);
    s.start();
    t.start();
    REQUIRE(::raise(SIGUSR1) == 0);
    loop.run(evw::Run::Once);  // both are ready in this one iteration
    CHECK(order == (sig_pri > 0 ? std::vector<int>{0, 1} : std::vector<int>{1, 0}));
  }
}

TEST_CASE("a loop-owned Signal active when its loop is destroyed is destroyed with it") {
  auto loop = std::make_unique<evw::Loop>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> alive = token;
  loop->add<evw::Signal>(SIGUSR1, [token](evw::Signal&, int) {}).start();
  token.reset();
  REQUIRE_FALSE(alive.expired());  // held by the watcher's callback
  loop.reset();
  CHECK(alive.expired());
  evw::Loop other;  // and the signal was released
  evw::Signal again(other, SIGUSR1, [](evw::Signal&, int) {});
  again.start();
}

TEST_CASE("Signal set() on a watcher whose raised signal is pending delivers it once, after the change") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  std::vector<int> seen;
  evw::Signal s(loop, SIGUSR1, [&](evw::Signal& w, int revents) {
    CHECK(revents == evw::Event::Signal);
    seen.push_back(w.signum());
  });
  bool was_pending = false;
  // The Io runs first (priority 1 > 0), after libev turned the signal into s's pending event.
  evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    char c;
    while (::read(w.fd(), &c, 1) == 1) {}
    was_pending = s.is_pending();
    s.set(SIGUSR2);
    w.stop();
  });
  io.set_priority(1);
  s.start();
  io.start();
  REQUIRE(::raise(SIGUSR1) == 0);
  REQUIRE(::write(b.get(), "x", 1) == 1);
  loop.run(evw::Run::Once);
  CHECK(was_pending);
  CHECK(seen == std::vector<int>{SIGUSR2});  // in the same iteration, after the change
  for (int i = 0; i < 3; ++i) loop.run(evw::Run::NoWait);
  CHECK(seen.size() == 1);
  REQUIRE(::raise(SIGUSR2) == 0);
  CHECK(run_until(loop, [&] { return seen.size() == 2; }));
  s.stop();
}
