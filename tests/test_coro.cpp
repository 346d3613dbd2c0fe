// Coroutines: Task ordering, results and exceptions through nested tasks;
// spawn and its exceptions from run(); the awaitables on real kernel objects
// (socketpairs, loopback TCP urgent data, timers, raised signals); when_all,
// when_any, with_timeout; cancellation at every suspension point (no leaks, no
// resumption); 10,000 concurrent tasks; destroying a loop with suspended tasks.
#include <evw/coro/coro.hpp>
#include <evw/evw.hpp>
#include <evw/watchers/gpio.hpp>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <coroutine>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "../tools/gpio-sim/gpio_sim.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using evw_test::Fd;
using evw_test::run_until;

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

void put(int fd, const char* s = "x") { REQUIRE(::write(fd, s, 1) == 1); }
void urgent_byte(int fd, char c = '!') { REQUIRE(::send(fd, &c, 1, MSG_OOB) == 1); }
void settle() { ::usleep(2000); }  // let loopback TCP raise EPOLLPRI

evw::Task<int> constant(int v) { co_return v; }

evw::Task<int> add(std::vector<std::string>& log, int a, int b) {
  log.push_back("add start");
  int x = co_await constant(a);
  int y = co_await constant(b);
  log.push_back("add end");
  co_return x + y;
}

evw::Task<void> fail_after(evw::Loop& loop, evw::Seconds delay) {
  co_await evw::sleep(loop, delay);
  throw Boom();
}

evw::Task<int> sleep_then(evw::Loop& loop, evw::Seconds delay, int value) {
  co_await evw::sleep(loop, delay);
  co_return value;
}

// The loop is back where it was: no watcher left from the coroutines.
void check_clean(evw::Loop& loop, std::size_t watchers_before) {
  CHECK(loop.watcher_count() == watchers_before);
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

}  // namespace

// ---- Task ---------------------------------------------------------------------

TEST_CASE("coro: nested tasks run in order, lazily, and return their results") {
  evw::Loop loop;
  std::vector<std::string> log;
  auto outer = [&]() -> evw::Task<int> {
    log.push_back("outer start");
    evw::Task<int> inner = add(log, 2, 3);
    log.push_back("inner created");  // lazy: add() has not run yet
    int sum = co_await std::move(inner);
    log.push_back("outer end");
    co_return sum * 10;
  };
  evw::Task<int> task = outer();
  CHECK(log.empty());
  CHECK(task);
  CHECK_FALSE(task.done());
  CHECK(evw::sync_wait(loop, std::move(task)) == 50);
  CHECK(log == std::vector<std::string>{"outer start", "inner created", "add start", "add end",
                                        "outer end"});
  static_assert(!std::is_copy_constructible_v<evw::Task<int>>);
  static_assert(std::is_nothrow_move_constructible_v<evw::Task<int>>);
}

TEST_CASE("coro: move-only results, void tasks, empty tasks and double awaits") {
  evw::Loop loop;
  auto make = []() -> evw::Task<std::unique_ptr<int>> { co_return std::make_unique<int>(7); };
  CHECK(*evw::sync_wait(loop, make()) == 7);

  bool ran = false;
  auto nothing = [&]() -> evw::Task<void> {
    ran = true;
    co_return;
  };
  evw::sync_wait(loop, nothing());
  CHECK(ran);

  auto twice = []() -> evw::Task<int> {
    evw::Task<int> t = constant(1);
    int first = co_await t;
    CHECK(first == 1);
    CHECK(t.done());
    co_return co_await t;  // the result was taken
  };
  CHECK_THROWS_AS(evw::sync_wait(loop, twice()), std::logic_error);

  auto empty = []() -> evw::Task<int> { co_return co_await evw::Task<int>(); };
  CHECK_THROWS_AS(evw::sync_wait(loop, empty()), std::logic_error);
  CHECK_THROWS_AS(evw::sync_wait(loop, evw::Task<int>()), std::invalid_argument);
  CHECK_THROWS_AS(evw::spawn(loop, evw::Task<void>()), std::invalid_argument);
}

TEST_CASE("coro: exceptions propagate unchanged through nested tasks") {
  evw::Loop loop;
  int frames = 0;
  auto inner = [&]() -> evw::Task<int> {
    Alive alive(frames);
    co_await evw::sleep(loop, 0.001);
    throw std::out_of_range("inner");
  };
  auto middle = [&]() -> evw::Task<int> {
    Alive alive(frames);
    int v = co_await inner();  // does not catch
    co_return v + 1;
  };
  auto outer = [&]() -> evw::Task<std::string> {
    Alive alive(frames);
    try {
      co_await middle();
    } catch (const std::out_of_range& e) {
      co_return std::string("caught ") + e.what();
    }
    co_return "not caught";
  };
  CHECK(evw::sync_wait(loop, outer()) == "caught inner");
  CHECK(frames == 0);
  // Uncaught, it comes out of sync_wait.
  CHECK_THROWS_AS(evw::sync_wait(loop, middle()), std::out_of_range);
  CHECK(frames == 0);
}

TEST_CASE("coro: long chains of tasks that finish at once do not grow the stack") {
  evw::Loop loop;
  auto many = []() -> evw::Task<long> {
    long sum = 0;
    for (int i = 0; i < 200000; ++i) sum += co_await constant(1);
    co_return sum;
  };
  CHECK(evw::sync_wait(loop, many()) == 200000);
}

// ---- awaitables -----------------------------------------------------------------

TEST_CASE("coro: readable, writable, sleep and signal return revents and stop their watchers") {
  evw::Loop loop;
  const std::size_t base = loop.watcher_count();
  auto sockets = evw_test::socket_pair();  // no structured bindings: clang 14 cannot capture them
  Fd &a = sockets.first, &b = sockets.second;
  evw::Timer writer(loop, 0.005, 0.0, [&](evw::Timer&, int) { put(b.get(), "y"); });
  writer.start();
  auto body = [&]() -> evw::Task<std::vector<int>> {
    std::vector<int> got;
    got.push_back(co_await evw::writable(loop, a.get()));
    got.push_back(co_await evw::readable(loop, a.get()));  // resumed by the timer's write
    char c = 0;
    CHECK(::read(a.get(), &c, 1) == 1);
    CHECK(c == 'y');
    double before = loop.now();
    got.push_back(co_await evw::sleep(loop, 20ms));
    CHECK(loop.now() - before >= 0.019);
    co_return got;
  };
  CHECK(evw::sync_wait(loop, body()) == std::vector<int>{evw::Event::Write, evw::Event::Read, evw::Event::Timer});
  check_clean(loop, base + 1);  // + the writer timer, stopped

  struct sigaction old {};
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGUSR1, &ignore, &old);
  evw::Timer raiser(loop, 0.002, 0.0, [](evw::Timer&, int) { ::raise(SIGUSR1); });
  raiser.start();
  CHECK(evw::sync_wait(loop, [&]() -> evw::Task<int> {
          co_return co_await evw::signal(loop, SIGUSR1);
        }()) == evw::Event::Signal);
  struct sigaction now {};
  ::sigaction(SIGUSR1, nullptr, &now);
  CHECK((now.sa_handler == SIG_IGN));  // the disposition evw found is back
  ::sigaction(SIGUSR1, &old, nullptr);
}

TEST_CASE("coro: urgent() wakes on TCP urgent data (EPOLLPRI) over loopback") {
  evw::Loop loop;
  auto tcp = evw_test::tcp_pair();
  Fd &client = tcp.first, &server = tcp.second;
  evw::Timer sender(loop, 0.005, 0.0, [&](evw::Timer&, int) { urgent_byte(client.get(), 'u'); });
  sender.start();
  auto body = [&]() -> evw::Task<std::pair<int, char>> {
    int revents = co_await evw::urgent(loop, server.get());
    char c = 0;
    CHECK(::recv(server.get(), &c, 1, MSG_OOB) == 1);
    co_return std::pair{revents, c};
  };
  CHECK(evw::sync_wait(loop, body()) == std::pair{evw::Event::Pri, 'u'});
  CHECK_FALSE(loop.run(evw::Run::NoWait));  // the EPOLLPRI backend's watcher stopped too
}

TEST_CASE("coro: watcher errors come out of co_await as the watchers throw them") {
  evw::Loop loop;
  auto bad_fd = [&]() -> evw::Task<int> { co_return co_await evw::readable(loop, -1); };
  CHECK_THROWS_AS(evw::sync_wait(loop, bad_fd()), std::invalid_argument);

  char path[] = "/tmp/evw-coro-XXXXXX";
  Fd file(::mkstemp(path));
  REQUIRE(file.get() >= 0);
  ::unlink(path);
  auto regular = [&]() -> evw::Task<int> { co_return co_await evw::urgent(loop, file.get()); };
  try {
    evw::sync_wait(loop, regular());
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == EPERM);
  }

  // (A signal another loop watches is no longer an error: test_signal.cpp.)

  auto infinite = [&]() -> evw::Task<int> {
    co_return co_await evw::sleep(loop, std::numeric_limits<double>::infinity());
  };
  CHECK_THROWS_AS(evw::sync_wait(loop, infinite()), std::invalid_argument);
  CHECK(loop.watcher_count() == 0);
}

TEST_CASE("coro: Watch<W> awaits one watcher again and again, keeps an unawaited event, gives it back stopped") {
  evw::Loop loop;
  auto sockets = evw_test::socket_pair();
  Fd &a = sockets.first, &b = sockets.second;
  evw::Watch<evw::Io> input(loop, a.get(), evw::Event::Read);
  int step = 0;
  evw::Timer feeder(loop, 0.002, 0.002, [&](evw::Timer& t, int) {
    put(b.get());
    if (++step == 3) t.stop();
  });
  feeder.start();
  auto reader = [&]() -> evw::Task<int> {
    int got = 0;
    while (got < 3) {
      CHECK(co_await input.next() == evw::Event::Read);
      CHECK(input->is_active());  // stays started between awaits: no start/stop per event
      char c;
      while (::read(a.get(), &c, 1) == 1) ++got;
    }
    co_return got;
  };
  CHECK(evw::sync_wait(loop, reader()) == 3);

  // An event while nobody awaits stops the watcher (no spinning) and is kept.
  put(b.get());
  loop.run(evw::Run::NoWait);
  CHECK_FALSE(input->is_active());
  auto late = [&]() -> evw::Task<int> { co_return co_await input.next(); };
  CHECK(evw::sync_wait(loop, late()) == evw::Event::Read);  // at once, from what was kept
  char drained;
  while (::read(a.get(), &drained, 1) == 1) {}

  // Two coroutines cannot await one Watch at once; a cancelled next() stops it.
  auto waiter = [&]() -> evw::Task<int> { co_return co_await input.next(); };
  auto second = [&]() -> evw::Task<int> {
    co_await evw::sleep(loop, 0.001);
    co_return co_await input.next();
  };
  auto both = evw::when_all(waiter(), second());
  CHECK_THROWS_AS(evw::sync_wait(loop, std::move(both)), std::logic_error);
  CHECK_FALSE(input->is_active());
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("coro: Watch<Gpio> awaits edges from gpio-sim, also one that came in between") {
  if (auto why = evw::sim::GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  auto sim = evw::sim::GpioSim::in_temp_dir();
  evw::Loop loop;
  constexpr int line = 5;
  evw::Watch<evw::Gpio> button(loop, line, evw::GpioConfig{.sysfs_root = sim->root()});
  auto body = [&]() -> evw::Task<std::vector<int>> {
    std::vector<int> levels;
    auto press = [&]() -> evw::Task<void> {
      co_await evw::sleep(loop, 0.002);
      sim->set_input(line, 1);
    };
    co_await evw::when_all(button.next(), press());
    levels.push_back(button->value());
    CHECK(button->is_active());
    sim->set_input(line, 0);  // while nobody awaits: reported by the next await
    auto late = co_await evw::with_timeout(loop, 1s, button.next());
    CHECK(late == evw::Event::Pri);
    levels.push_back(button->value());
    // A cancelled wait gives the line back stopped.
    CHECK_FALSE(co_await evw::with_timeout(loop, 5ms, button.next()));
    CHECK_FALSE(button->is_active());
    co_return levels;
  };
  CHECK(evw::sync_wait(loop, body()) == std::vector<int>{1, 0});
}

// ---- spawn ------------------------------------------------------------------------

TEST_CASE("coro: spawn starts the task in the loop, not in spawn, and frees it at its end") {
  evw::Loop loop;
  int frames = 0;
  std::vector<int> order;
  auto job = [&](int id, double delay) -> evw::Task<int> {
    Alive alive(frames);
    order.push_back(id);
    co_await evw::sleep(loop, delay);
    order.push_back(id + 10);
    co_return id;  // dropped
  };
  evw::spawn(loop, job(1, 0.010));
  evw::spawn(loop, job(2, 0.001));
  evw::spawn(loop, job(3, 0.005));
  CHECK(order.empty());
  CHECK(frames == 0);  // not started yet
  CHECK(loop.watcher_count() == 1);  // the loop's spawn starter
  loop.run();
  CHECK(order == std::vector<int>{1, 2, 3, 12, 13, 11});  // started in spawn order
  CHECK(frames == 0);
  CHECK(loop.watcher_count() == 1);
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("coro: an exception from a spawned task comes out of run(), the others go on") {
  evw::Loop loop;
  int frames = 0, finished = 0;
  auto good = [&]() -> evw::Task<void> {
    Alive alive(frames);
    co_await evw::sleep(loop, 0.020);
    ++finished;
  };
  auto bad = [&]() -> evw::Task<void> {
    Alive alive(frames);
    co_await fail_after(loop, 0.002);  // nested: thrown two levels down
  };
  evw::spawn(loop, good());
  evw::spawn(loop, bad());
  CHECK_THROWS_AS(loop.run(), Boom);
  CHECK(frames == 1);  // the failed task is gone, the good one waits
  CHECK(loop.depth() == 0);
  loop.run();  // the loop stays usable
  CHECK(finished == 1);
  CHECK(frames == 0);
  CHECK(loop.watcher_count() == 1);  // the spawn starter

  // Thrown in its very first step (resumed by the spawn's own anchor).
  auto at_once = [&]() -> evw::Task<int> {
    Alive alive(frames);
    throw std::invalid_argument("first step");
    co_return 0;
  };
  evw::spawn(loop, at_once());
  try {
    loop.run();
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()) == "first step");
  }
  CHECK(frames == 0);
  CHECK(loop.watcher_count() == 1);
}

TEST_CASE("coro: a spawned task can spawn others, and sync_wait runs spawned tasks too") {
  evw::Loop loop;
  int children = 0;
  auto child = [&](int) -> evw::Task<void> {
    co_await evw::sleep(loop, 0.001);
    ++children;
  };
  auto parent = [&]() -> evw::Task<int> {
    for (int i = 0; i < 5; ++i) evw::spawn(loop, child(i));
    co_await evw::sleep(loop, 0.010);
    co_return children;
  };
  CHECK(evw::sync_wait(loop, parent()) == 5);
  CHECK(loop.watcher_count() == 1);
}

// ---- combinators ------------------------------------------------------------------

TEST_CASE("coro: when_all gives every result in order, of tasks and awaitables alike") {
  evw::Loop loop;
  auto sockets = evw_test::socket_pair();
  Fd &a = sockets.first, &b = sockets.second;
  put(b.get());
  auto body = [&]() -> evw::Task<void> {
    auto [x, nothing, y, r] = co_await evw::when_all(
        sleep_then(loop, 0.010, 1), [&]() -> evw::Task<void> { co_return; }(),
        sleep_then(loop, 0.001, 2), evw::readable(loop, a.get()));
    CHECK(x == 1);
    CHECK(y == 2);
    CHECK(r == evw::Event::Read);
    static_assert(std::is_same_v<decltype(nothing), std::monostate>);
    auto empty = co_await evw::when_all();
    static_assert(std::is_same_v<decltype(empty), std::tuple<>>);

    std::vector<evw::Task<int>> tasks;
    for (int i = 0; i < 50; ++i) tasks.push_back(sleep_then(loop, 0.001 * (50 - i), i));
    std::vector<int> all = co_await evw::when_all(std::move(tasks));
    CHECK(all.size() == 50);
    for (int i = 0; i < 50; ++i) CHECK(all[static_cast<std::size_t>(i)] == i);
  };
  evw::sync_wait(loop, body());
  check_clean(loop, 0);
}

TEST_CASE("coro: when_all's first exception cancels the others and is rethrown") {
  evw::Loop loop;
  int frames = 0, resumed = 0;
  auto slow = [&]() -> evw::Task<int> {
    Alive alive(frames);
    co_await evw::sleep(loop, 1.0);
    ++resumed;
    co_return 1;
  };
  auto body = [&]() -> evw::Task<void> {
    co_await evw::when_all(slow(), fail_after(loop, 0.002), slow());
  };
  CHECK_THROWS_AS(evw::sync_wait(loop, body()), Boom);
  CHECK(frames == 0);
  CHECK(resumed == 0);
  check_clean(loop, 0);
}

TEST_CASE("coro: when_any returns the first to finish and cancels the losers") {
  evw::Loop loop;
  int frames = 0, resumed = 0;
  auto slow = [&](double delay) -> evw::Task<std::string> {
    Alive alive(frames);
    co_await evw::sleep(loop, delay);
    ++resumed;
    co_return "slow";
  };
  auto body = [&]() -> evw::Task<void> {
    auto first = co_await evw::when_any(slow(1.0), sleep_then(loop, 0.002, 42), slow(2.0));
    CHECK(first.index() == 1);
    CHECK(std::get<1>(first) == 42);
    CHECK(frames == 0);  // the losers are gone already

    // A winner that throws: its exception, and the losers still cancelled.
    CHECK_THROWS_AS(co_await evw::when_any(slow(1.0), fail_after(loop, 0.001)), Boom);
    CHECK(frames == 0);

    // Decided while starting: the later ones never start.
    auto instant = co_await evw::when_any(constant(5), slow(1.0));
    CHECK(instant.index() == 0);

    std::vector<evw::Task<int>> tasks;
    for (int i = 0; i < 20; ++i) tasks.push_back(sleep_then(loop, 0.050 - 0.001 * i, i));
    evw::Winner<int> w = co_await evw::when_any(std::move(tasks));
    CHECK(w.index == 19);
    CHECK(w.value == 19);
  };
  evw::sync_wait(loop, body());
  CHECK(resumed == 0);
  CHECK(frames == 0);
  check_clean(loop, 0);
  CHECK_THROWS_AS((void)evw::when_any(std::vector<evw::Task<int>>{}), std::invalid_argument);
}

TEST_CASE("coro: with_timeout reports which finished") {
  evw::Loop loop;
  auto sockets = evw_test::socket_pair();
  Fd &a = sockets.first, &b = sockets.second;
  int frames = 0;
  auto quiet = [&]() -> evw::Task<void> {
    Alive alive(frames);
    co_await evw::sleep(loop, 5.0);
  };
  auto body = [&]() -> evw::Task<void> {
    std::optional<int> r = co_await evw::with_timeout(loop, 5ms, evw::readable(loop, a.get()));
    CHECK_FALSE(r.has_value());  // nothing to read: timed out
    put(b.get());
    r = co_await evw::with_timeout(loop, 1s, evw::readable(loop, a.get()));
    CHECK(r == evw::Event::Read);
    std::optional<int> v = co_await evw::with_timeout(loop, 1s, sleep_then(loop, 0.001, 9));
    CHECK(v == 9);
    bool finished = co_await evw::with_timeout(loop, 2ms, quiet());
    CHECK_FALSE(finished);
    CHECK(frames == 0);  // the late work was cancelled
    CHECK_THROWS_AS(co_await evw::with_timeout(loop, 1s, fail_after(loop, 0.001)), Boom);
  };
  evw::sync_wait(loop, body());
  check_clean(loop, 0);
}

// ---- cancellation -----------------------------------------------------------------

namespace {

// Runs `victim` until it is suspended at its await, then throws from a
// callback (priority max_priority, so it runs first when the victim's event is
// ready in the same iteration): sync_wait rethrows and destroys the suspended
// task. `trigger` makes the victim's event happen before that.
template <class Victim, class Trigger>
void cancel_while_suspended(evw::Loop& loop, Victim victim, Trigger trigger, double after = 0.002) {
  const std::size_t base = loop.watcher_count();
  int frames = 0;
  bool resumed = false;
  auto task = [&]() -> evw::Task<void> {
    Alive alive(frames);
    co_await victim();
    resumed = true;
  };
  evw::Timer boom(loop, after, 0.0, [&](evw::Timer&, int) {
    trigger();
    throw Boom();
  });
  boom.set_priority(evw::max_priority);
  boom.start();
  CHECK_THROWS_AS(evw::sync_wait(loop, task()), Boom);
  CHECK(frames == 0);
  CHECK(loop.watcher_count() == base + 1);  // only `boom` is left
  // Whatever was ready never reaches the destroyed task.
  for (int i = 0; i < 5; ++i) loop.run(evw::Run::NoWait);
  CHECK_FALSE(resumed);
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

}  // namespace

TEST_CASE("coro: cancelling a task suspended on readable, even with its event pending") {
  evw::Loop loop;
  auto sockets = evw_test::socket_pair();
  Fd &a = sockets.first, &b = sockets.second;
  put(b.get());  // readable at once: the Io event is ready in the boom's iteration
  cancel_while_suspended(
      loop, [&]() -> evw::Task<int> { co_return co_await evw::readable(loop, a.get()); }, [] {},
      0.0);
  cancel_while_suspended(
      loop, [&]() -> evw::Task<int> { co_return co_await evw::writable(loop, a.get()); }, [] {},
      0.0);
}

TEST_CASE("coro: cancelling a task suspended on urgent (loopback TCP MSG_OOB)") {
  evw::Loop loop;
  auto tcp = evw_test::tcp_pair();
  Fd &client = tcp.first, &server = tcp.second;
  cancel_while_suspended(
      loop, [&]() -> evw::Task<int> { co_return co_await evw::urgent(loop, server.get()); },
      [&] {
        urgent_byte(client.get());
        settle();
      });
  CHECK_FALSE(loop.run(evw::Run::NoWait));  // the EPOLLPRI backend let go of the fd
}

TEST_CASE("coro: cancelling a task suspended on sleep") {
  evw::Loop loop;
  cancel_while_suspended(
      loop, [&]() -> evw::Task<int> { co_return co_await evw::sleep(loop, 0.004); },
      [] { ::usleep(5000); });  // its timer is due, too
}

namespace {
int usr1_handled = 0;
void on_usr1(int) { ++usr1_handled; }
}  // namespace

TEST_CASE("coro: cancelling a task suspended on signal restores the disposition") {
  evw::Loop loop;
  struct sigaction handler {}, old {};
  handler.sa_handler = on_usr1;
  ::sigaction(SIGUSR1, &handler, &old);
  usr1_handled = 0;
  cancel_while_suspended(
      loop, [&]() -> evw::Task<int> { co_return co_await evw::signal(loop, SIGUSR1); },
      [] { ::raise(SIGUSR1); });
  // A signal raised while the task waited went to the loop and is gone with
  // the task; the handler the test had is back for the next one.
  struct sigaction now {};
  ::sigaction(SIGUSR1, nullptr, &now);
  CHECK((now.sa_handler == &on_usr1));
  ::raise(SIGUSR1);
  CHECK(usr1_handled == 1);
  ::sigaction(SIGUSR1, &old, nullptr);
}

namespace {

// The test's own SIGUSR1 handler (counting) for the duration of a test case;
// the disposition found before is put back at the end.
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

TEST_CASE("coro: a task looping on signal() keeps it caught between awaits and gets one sent meanwhile") {
  Usr1Handler handler;
  evw::Loop loop;
  const std::size_t base = loop.watcher_count();
  int frames = 0;
  std::vector<int> got;
  evw::Timer first(loop, 0.002, 0.0, [](evw::Timer&, int) { ::raise(SIGUSR1); });
  first.start();
  auto waiter = [&]() -> evw::Task<void> {
    Alive alive(frames);
    for (int i = 0; i < 3; ++i) {
      got.push_back(co_await evw::signal(loop, SIGUSR1));
      // Busy between two awaits: the next signal comes now, while nothing
      // waits for it, and once while the task sleeps.
      if (i == 0) ::raise(SIGUSR1);
      co_await evw::sleep(loop, 0.003);
      if (i == 1) ::kill(::getpid(), SIGUSR1);
    }
  };
  evw::spawn(loop, waiter());
  CHECK(evw_test::run_until(loop, [&] { return frames == 0 && got.size() == 3; }));
  CHECK(got == std::vector<int>(3, evw::Event::Signal));
  CHECK(usr1_handled == 0);  // every one went to the task: its old handler never ran
  // The task is gone: the catch of the signal with it, and the handler is back.
  CHECK(loop.watcher_count() == base + 2);  // `first` and the spawn starter
  CHECK(Usr1Handler::installed());
  ::raise(SIGUSR1);
  CHECK(usr1_handled == 1);
}

TEST_CASE("coro: the obvious shutdown loop does not die of a SIGTERM sent between two awaits") {
  // In a child: SIGTERM has its default disposition, and dying of it must fail
  // this test only.
  CHECK(evw_test::passes_in_child([] {
    ::signal(SIGTERM, SIG_DFL);
    evw::Loop loop;
    evw::Timer first(loop, 0.002, 0.0, [](evw::Timer&, int) { ::raise(SIGTERM); });
    first.start();
    int requests = 0;
    auto shutdown = [&]() -> evw::Task<void> {
      for (;;) {
        co_await evw::signal(loop, SIGTERM);
        if (++requests == 3) co_return;
        ::raise(SIGTERM);                   // between two awaits, as a busy task sees it
        co_await evw::sleep(loop, 0.002);   // waiting for something else
      }
    };
    evw::sync_wait(loop, shutdown());
    struct sigaction now {};
    ::sigaction(SIGTERM, nullptr, &now);
    return requests == 3 && now.sa_handler == SIG_DFL;  // the default is back
  }));
}

TEST_CASE("coro: signals received several times between two awaits count as one") {
  Usr1Handler handler;
  evw::Loop loop;
  evw::Timer first(loop, 0.002, 0.0, [](evw::Timer&, int) { ::raise(SIGUSR1); });
  first.start();
  auto body = [&]() -> evw::Task<bool> {
    co_await evw::signal(loop, SIGUSR1);
    ::raise(SIGUSR1);
    ::raise(SIGUSR1);                   // libev dispatches these two once
    co_await evw::sleep(loop, 0.002);
    ::raise(SIGUSR1);                   // dispatched on its own, still nobody waits
    co_await evw::sleep(loop, 0.002);
    const double before = loop.now();
    CHECK((co_await evw::with_timeout(loop, 1s, evw::signal(loop, SIGUSR1))).has_value());
    CHECK(loop.now() - before < 0.5);  // at once
    co_return (co_await evw::with_timeout(loop, 20ms, evw::signal(loop, SIGUSR1))).has_value();
  };
  CHECK_FALSE(evw::sync_wait(loop, body()));  // the three made one
  CHECK(usr1_handled == 0);
  CHECK(Usr1Handler::installed());
}

TEST_CASE("coro: a signal that reached a wait when_any cancelled goes to the task's next await") {
  Usr1Handler handler;
  evw::Loop loop;
  // Two watchers get the signal in one iteration; this one, at max_priority,
  // decides the when_any first and the signal() wait is cancelled with its
  // event pending.
  evw::Watch<evw::Signal> urgent_one(loop, SIGUSR1);
  urgent_one->set_priority(evw::max_priority);
  evw::Timer raiser(loop, 0.002, 0.0, [](evw::Timer&, int) { ::raise(SIGUSR1); });
  raiser.start();
  auto body = [&]() -> evw::Task<bool> {
    auto first = co_await evw::when_any(urgent_one.next(), evw::signal(loop, SIGUSR1));
    CHECK(first.index() == 0);
    urgent_one->stop();
    co_return (co_await evw::with_timeout(loop, 50ms, evw::signal(loop, SIGUSR1))).has_value();
  };
  CHECK(evw::sync_wait(loop, body()));  // not lost
  CHECK(usr1_handled == 0);
  CHECK(Usr1Handler::installed());
}

TEST_CASE("coro: cancelling a task suspended in with_timeout, when_any, when_all and Watch") {
  evw::Loop loop;
  auto sockets = evw_test::socket_pair();
  Fd &a = sockets.first, &b = sockets.second;
  cancel_while_suspended(loop, [&]() -> evw::Task<std::optional<int>> {
    co_return co_await evw::with_timeout(loop, 1s, evw::readable(loop, a.get()));
  }, [&] { put(b.get()); });
  char c;
  CHECK(::read(a.get(), &c, 1) == 1);
  cancel_while_suspended(loop, [&]() -> evw::Task<std::size_t> {
    auto r = co_await evw::when_any(evw::readable(loop, a.get()), evw::sleep(loop, 1s),
                                    sleep_then(loop, 2.0, 1));
    co_return r.index();
  }, [] {});
  cancel_while_suspended(loop, [&]() -> evw::Task<void> {
    co_await evw::when_all(evw::writable(loop, a.get()), evw::sleep(loop, 1s));
  }, [] {});
  evw::Watch<evw::Timer> tick(loop, 1.0, 0.0);
  cancel_while_suspended(loop, [&]() -> evw::Task<int> { co_return co_await tick.next(); },
                         [] {});
  CHECK_FALSE(tick->is_active());
}

// ---- scale and teardown -----------------------------------------------------------

TEST_CASE("coro: 10,000 concurrent spawned sleeps") {
  evw::Loop loop;
  constexpr int n = 10000;
  int frames = 0, done = 0;
  auto sleeper = [&](int i) -> evw::Task<void> {
    Alive alive(frames);
    co_await evw::sleep(loop, 0.001 * (i % 20));
    co_await evw::sleep(loop, 0.0);
    ++done;
  };
  for (int i = 0; i < n; ++i) evw::spawn(loop, sleeper(i));
  loop.run();
  CHECK(done == n);
  CHECK(frames == 0);
  CHECK(loop.watcher_count() == 1);
}

TEST_CASE("coro: 5,000 socketpairs awaited readable at once with when_all") {
  constexpr int pairs = 5000;
  rlimit old{};
  ::getrlimit(RLIMIT_NOFILE, &old);
  rlimit want = old;
  want.rlim_cur = std::max<rlim_t>(old.rlim_cur, 2 * pairs + 256);
  if (want.rlim_cur > old.rlim_max || ::setrlimit(RLIMIT_NOFILE, &want) != 0)
    EVW_SKIP("cannot raise RLIMIT_NOFILE to " + std::to_string(want.rlim_cur));
  {
    evw::Loop loop;
    std::vector<std::pair<Fd, Fd>> fds;
    fds.reserve(pairs);
    for (int i = 0; i < pairs; ++i) fds.push_back(evw_test::socket_pair());
    auto echo_one = [&](int fd) -> evw::Task<char> {
      co_await evw::readable(loop, fd);
      char c = 0;
      CHECK(::read(fd, &c, 1) == 1);
      co_return c;
    };
    // Write from a timer, once every coroutine is suspended.
    evw::Timer writer(loop, 0.001, 0.0, [&](evw::Timer&, int) {
      for (auto& [a, b] : fds) put(b.get(), "k");
    });
    writer.start();
    std::vector<evw::Task<char>> tasks;
    for (auto& [a, b] : fds) tasks.push_back(echo_one(a.get()));
    std::vector<char> got = evw::sync_wait(loop, evw::when_all(std::move(tasks)));
    CHECK(got.size() == pairs);
    CHECK(std::count(got.begin(), got.end(), 'k') == pairs);
    check_clean(loop, 1);
  }
  ::setrlimit(RLIMIT_NOFILE, &old);
}

TEST_CASE("coro: destroying the loop frees suspended spawned tasks and resumes nothing") {
  auto sockets = evw_test::socket_pair();
  Fd &a = sockets.first, &b = sockets.second;
  auto tcp = evw_test::tcp_pair();
  Fd &client = tcp.first, &server = tcp.second;
  int frames = 0, resumed = 0;
  {
    auto loop = std::make_unique<evw::Loop>();
    evw::Loop& l = *loop;
    auto on_read = [&]() -> evw::Task<void> {
      Alive alive(frames);
      co_await evw::readable(l, a.get());
      ++resumed;
    };
    auto on_urgent = [&]() -> evw::Task<void> {
      Alive alive(frames);
      co_await evw::urgent(l, server.get());
      ++resumed;
    };
    auto nested = [&]() -> evw::Task<void> {
      Alive alive(frames);
      auto r = co_await evw::when_any(sleep_then(l, 10.0, 1), evw::readable(l, a.get()));
      (void)r;
      ++resumed;
    };
    auto timed = [&]() -> evw::Task<void> {
      Alive alive(frames);
      co_await evw::with_timeout(l, 10s, evw::sleep(l, 20s));
      ++resumed;
    };
    auto never_started = [&]() -> evw::Task<void> {
      Alive alive(frames);
      ++resumed;
      co_return;
    };
    for (int i = 0; i < 3; ++i) {
      evw::spawn(l, on_read());
      evw::spawn(l, on_urgent());
      evw::spawn(l, nested());
      evw::spawn(l, timed());
    }
    for (int i = 0; i < 3; ++i) l.run(evw::Run::NoWait);
    CHECK(frames == 12);
    evw::spawn(l, never_started());  // queued, never run
    put(b.get());                     // ready, not yet delivered
    urgent_byte(client.get());
    loop.reset();
    CHECK(frames == 0);
  }
  CHECK(resumed == 0);
}

TEST_CASE("coro: sync_wait refuses to wait for a task that nothing can resume") {
  evw::Loop loop;
  auto stuck = []() -> evw::Task<void> { co_await std::suspend_always{}; };
  CHECK_THROWS_AS(evw::sync_wait(loop, stuck()), std::logic_error);
  CHECK(loop.watcher_count() == 0);
}
