// Moving watchers: std::vector<evw::Io> growing while its watchers are active
// and pending; a pending event delivered once, from the new object; every
// watcher type keeping its loop, callback, data, priority, state and
// configuration; the moved-from watcher empty; move assignment; moves from
// other callbacks; refusals (the running watcher, loop-owned watchers);
// destroying the loop after a move; the kernel-facing types (Priority over
// loopback TCP with urgent data, Signal, Child, Stat, Async, Embed, Gpio on
// gpio-sim, GpioLine, and the kernel notifications: Attr and CgroupEvents on a
// real cgroup, Mounts in a private mount namespace, Pressure on a PSI trigger)
// and a coroutine awaiting edge() on a moved watcher.
#include <evw/evw.hpp>
#include <evw/coro/coro.hpp>
#include <evw/watchers/gpio.hpp>
#include <evw/watchers/gpio_line.hpp>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <any>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../tools/gpio-sim/gpio_sim.hpp"
#include "fault.hpp"
#include "kernel_support.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using evw_test::run_until;

// Every watcher type moves and does not copy.
template <class... W>
constexpr bool movable_not_copyable =
    ((std::is_move_constructible_v<W> && std::is_move_assignable_v<W> && !std::is_copy_constructible_v<W> &&
      !std::is_copy_assignable_v<W>) && ...);
static_assert(movable_not_copyable<evw::Io, evw::Timer, evw::Signal, evw::Priority, evw::Periodic, evw::Idle,
                                   evw::Prepare, evw::Check, evw::Child, evw::Stat, evw::Async, evw::Fork,
                                   evw::Cleanup, evw::Embed, evw::Gpio, evw::GpioLine, evw::Attr,
                                   evw::CgroupEvents, evw::Mounts, evw::Pressure>);

namespace {

// Who was called back, how often, with what.
struct Calls {
  int count = 0;
  const void* who = nullptr;
  int revents = 0;
};

char read_byte(int fd) {
  char c = 0;
  REQUIRE(::read(fd, &c, 1) == 1);
  return c;
}

void write_byte(int fd) { REQUIRE(::write(fd, "x", 1) == 1); }

void send_urgent(int fd) { REQUIRE(::send(fd, "u", 1, MSG_OOB) == 1); }

// Runs the loop for `seconds`, so that an event that should not come has its chance.
void settle(evw::Loop& loop, double seconds = 0.03) {
  bool done = false;
  evw::Timer t(loop, seconds, 0.0, [&](evw::Timer&, int) { done = true; });
  t.start();
  while (!done) loop.run(evw::Run::Once);
}

struct Pipe {
  evw_test::Fd read_end, write_end;
  Pipe() {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    read_end.reset(p[0]);
    write_end.reset(p[1]);
  }
};

gpio_v2_line_event record(std::uint32_t line_seqno) {
  gpio_v2_line_event e{};
  e.timestamp_ns = 1'000'000'000ull + line_seqno;
  e.id = GPIO_V2_LINE_EVENT_RISING_EDGE;
  e.offset = 4;
  e.seqno = line_seqno;
  e.line_seqno = line_seqno;
  return e;
}

void put(int fd, std::uint32_t line_seqno) {
  const gpio_v2_line_event e = record(line_seqno);
  REQUIRE(::write(fd, &e, sizeof e) == static_cast<ssize_t>(sizeof e));
}

// The contract of a move for one watcher type. `make(callback)` builds a
// stopped watcher on `loop`; `config(w)` is what must survive (compared as a
// tuple); `fed` are revents fed to make it pending. The watcher is started,
// given data and a priority, made pending, moved; the new one must have it
// all and deliver the event once, from itself; the old one must be empty.
// Then it is moved back by assignment into the moved-from one.
template <class W, class Make, class Config>
void check_move_keeps_all(evw::Loop& loop, Make make, Config config, int fed, int pri = 1) {
  Calls calls;
  W original = make([&calls](W& w, int revents) {
    ++calls.count;
    calls.who = &w;
    calls.revents = revents;
    w.stop();  // one delivery is what is checked; Prepare/Check/Idle would come again
  });
  const std::size_t watchers = loop.watcher_count();
  original.data() = std::string("payload");
  original.set_priority(pri);
  original.start();
  REQUIRE(original.is_active());
  original.feed(fed);
  REQUIRE(original.is_pending());
  const auto before = config(original);

  W moved(std::move(original));
  CHECK(moved.is_active());
  CHECK(moved.is_pending());
  CHECK(moved.priority() == pri);
  CHECK(&moved.loop() == &loop);
  CHECK(std::any_cast<std::string>(moved.data()) == "payload");
  CHECK(config(moved) == before);
  CHECK(loop.watcher_count() == watchers);  // one watcher, at its new address

  CHECK_FALSE(original.is_attached());
  CHECK_FALSE(original.is_active());
  CHECK_FALSE(original.is_pending());
  CHECK_FALSE(original.data().has_value());
  CHECK_THROWS_AS(original.start(), std::logic_error);
  CHECK_THROWS_AS(original.feed(fed), std::logic_error);
  CHECK_THROWS_AS(original.invoke(fed), std::logic_error);
  CHECK_THROWS_AS(original.loop(), std::logic_error);

  loop.run(evw::Run::NoWait);
  CHECK(calls.count == 1);
  CHECK(calls.who == &moved);
  CHECK((calls.revents & fed) == fed);

  // Back by assignment into the moved-from watcher, which is whole again.
  moved.start();
  original = std::move(moved);
  CHECK(original.is_active());
  CHECK(original.priority() == pri);
  CHECK(config(original) == before);
  CHECK(std::any_cast<std::string>(original.data()) == "payload");
  CHECK_FALSE(moved.is_attached());
  CHECK(loop.watcher_count() == watchers);
  original.feed(fed);
  loop.run(evw::Run::NoWait);
  CHECK(calls.count == 2);
  CHECK(calls.who == &original);
  original.stop();
}

}  // namespace

TEST_CASE("move: std::vector<evw::Io> grows while its watchers are active and pending; each fires once per event") {
  evw::Loop loop;
  constexpr int kPairs = 40;
  std::vector<std::pair<evw_test::Fd, evw_test::Fd>> pairs;
  for (int i = 0; i < kPairs + 1; ++i) pairs.push_back(evw_test::socket_pair());
  std::vector<int> fired(kPairs, 0);
  auto watcher_for = [&](int i) {
    return evw::Io(loop, pairs[i].first.get(), evw::Event::Read, [&fired, i](evw::Io& w, int revents) {
      CHECK(revents == evw::Event::Read);
      CHECK(w.fd() >= 0);
      read_byte(w.fd());
      ++fired[i];
    });
  };

  // Growing from outside any callback, every watcher active.
  std::vector<evw::Io> ios;
  for (int i = 0; i < kPairs / 2; ++i) {
    ios.push_back(watcher_for(i));  // reallocates now and then
    ios.back().start();
  }
  for (auto& io : ios) CHECK(io.is_active());
  for (int i = 0; i < kPairs / 2; ++i) write_byte(pairs[i].second.get());
  REQUIRE(run_until(loop, [&] {
    for (int i = 0; i < kPairs / 2; ++i)
      if (fired[i] != 1) return false;
    return true;
  }));

  // Growing inside another watcher's callback, while the vector's watchers
  // are pending in the same iteration (its priority runs it first). First a
  // full vector (moved element by element, active), so that it must grow.
  {
    std::vector<evw::Io> full;
    full.reserve(ios.size());
    for (auto& io : ios) full.push_back(std::move(io));
    ios = std::move(full);
  }
  REQUIRE(ios.size() == ios.capacity());
  for (auto& io : ios) REQUIRE(io.is_active());
  int pending_before = 0, pending_after = 0;
  evw::Io grower(loop, pairs[kPairs].first.get(), evw::Event::Read, [&](evw::Io& w, int) {
    read_byte(w.fd());
    for (auto& io : ios) pending_before += io.is_pending();
    for (int i = kPairs / 2; i < kPairs; ++i) {
      ios.push_back(watcher_for(i));
      ios.back().start();
    }
    for (auto& io : ios) pending_after += io.is_pending();  // still pending after the moves
  });
  grower.set_priority(evw::max_priority);
  grower.start();
  for (int i = 0; i < kPairs / 2; ++i) write_byte(pairs[i].second.get());
  write_byte(pairs[kPairs].second.get());
  REQUIRE(run_until(loop, [&] {
    for (int i = 0; i < kPairs / 2; ++i)
      if (fired[i] != 2) return false;
    return true;
  }));
  CHECK(pending_before == kPairs / 2);
  CHECK(pending_after == kPairs / 2);
  CHECK(ios.size() == static_cast<std::size_t>(kPairs));
  for (int i = kPairs / 2; i < kPairs; ++i) CHECK(fired[i] == 0);

  // Everyone once more, each exactly once.
  for (int i = 0; i < kPairs; ++i) write_byte(pairs[i].second.get());
  REQUIRE(run_until(loop, [&] {
    for (int i = 0; i < kPairs; ++i)
      if (fired[i] != (i < kPairs / 2 ? 3 : 1)) return false;
    return true;
  }));
  settle(loop);
  for (int i = 0; i < kPairs; ++i) CHECK(fired[i] == (i < kPairs / 2 ? 3 : 1));
  CHECK(loop.watcher_count() == static_cast<std::size_t>(kPairs) + 1);
  ios.clear();
  grower.stop();
  CHECK(loop.watcher_count() == 1);
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("move: a pending watcher delivers its event once, from the new object, with the same revents") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  Calls calls;
  auto cb = [&calls](evw::Io& w, int revents) {
    ++calls.count;
    calls.who = &w;
    calls.revents = revents;
    char c;
    while (::read(w.fd(), &c, 1) == 1) {
    }
  };
  // Fed from outside the loop.
  evw::Io io(loop, a.get(), evw::Event::Read, cb);
  io.feed(evw::Event::Read | evw::Event::Write);
  evw::Io moved(std::move(io));
  CHECK(moved.is_pending());
  CHECK_FALSE(moved.is_active());
  loop.run(evw::Run::NoWait);
  CHECK(calls.count == 1);
  CHECK(calls.who == &moved);
  CHECK(calls.revents == (evw::Event::Read | evw::Event::Write));
  loop.run(evw::Run::NoWait);
  CHECK(calls.count == 1);

  // Made pending by the kernel, moved by a callback of the same iteration
  // that runs first (higher priority).
  moved.start();
  std::optional<evw::Io> target;
  bool was_pending = false;
  auto [c, d] = evw_test::socket_pair();
  evw::Io mover(loop, c.get(), evw::Event::Read, [&](evw::Io& w, int) {
    read_byte(w.fd());
    was_pending = moved.is_pending();
    target.emplace(std::move(moved));
  });
  mover.set_priority(evw::max_priority);
  mover.start();
  write_byte(b.get());
  write_byte(d.get());
  REQUIRE(run_until(loop, [&] { return calls.count == 2; }));
  CHECK(was_pending);
  CHECK(calls.who == &*target);
  CHECK(calls.revents == evw::Event::Read);
  settle(loop);
  CHECK(calls.count == 2);
  target->stop();
  mover.stop();
}

TEST_CASE("move: every watcher type keeps loop, callback, data, priority, active and pending state and configuration") {
  evw::Loop loop;
  SUBCASE("Io") {
    auto [a, b] = evw_test::socket_pair();
    check_move_keeps_all<evw::Io>(
        loop, [&](auto cb) { return evw::Io(loop, a.get(), evw::Event::Read | evw::Event::Write, cb); },
        [](const evw::Io& w) { return std::tuple(w.fd(), w.events()); }, evw::Event::Read);
  }
  SUBCASE("Timer") {
    check_move_keeps_all<evw::Timer>(
        loop, [&](auto cb) { return evw::Timer(loop, 100s, 7s, cb); },
        [](const evw::Timer& w) { return std::tuple(w.repeat(), std::round(w.remaining())); }, evw::Event::Timer);
  }
  SUBCASE("Signal") {
    struct sigaction before {};
    ::sigaction(SIGUSR2, nullptr, &before);
    check_move_keeps_all<evw::Signal>(
        loop, [&](auto cb) { return evw::Signal(loop, SIGUSR2, cb); },
        [](const evw::Signal& w) { return std::tuple(w.signum()); }, evw::Event::Signal);
    struct sigaction after {};
    ::sigaction(SIGUSR2, nullptr, &after);
    CHECK((after.sa_handler == before.sa_handler));  // given back with the last watcher
  }
  SUBCASE("Priority") {
    auto [client, server] = evw_test::tcp_pair();
    check_move_keeps_all<evw::Priority>(
        loop, [&](auto cb) { return evw::Priority(loop, server.get(), cb); },
        [](const evw::Priority& w) { return std::tuple(w.fd()); }, evw::Event::Pri);
  }
  SUBCASE("Periodic") {
    const double offset = loop.now() + 1000.5;
    check_move_keeps_all<evw::Periodic>(
        loop, [&](auto cb) { return evw::Periodic(loop, offset, 0.0, cb); },
        [](const evw::Periodic& w) { return std::tuple(w.at(), w.offset(), w.interval(), w.has_reschedule()); },
        evw::Event::Periodic);
    check_move_keeps_all<evw::Periodic>(
        loop, [&](auto cb) { return evw::Periodic(loop, 3.25, 60.0, cb); },
        [](const evw::Periodic& w) { return std::tuple(w.at(), w.offset(), w.interval(), w.has_reschedule()); },
        evw::Event::Periodic, -1);
  }
  SUBCASE("Idle") {
    check_move_keeps_all<evw::Idle>(
        loop, [&](auto cb) { return evw::Idle(loop, cb); }, [](const evw::Idle&) { return std::tuple(); },
        evw::Event::Custom);
  }
  SUBCASE("Prepare") {
    check_move_keeps_all<evw::Prepare>(
        loop, [&](auto cb) { return evw::Prepare(loop, cb); }, [](const evw::Prepare&) { return std::tuple(); },
        evw::Event::Custom, 2);
  }
  SUBCASE("Check") {
    check_move_keeps_all<evw::Check>(
        loop, [&](auto cb) { return evw::Check(loop, cb); }, [](const evw::Check&) { return std::tuple(); },
        evw::Event::Custom, -2);
  }
  SUBCASE("Fork") {
    check_move_keeps_all<evw::Fork>(
        loop, [&](auto cb) { return evw::Fork(loop, cb); }, [](const evw::Fork&) { return std::tuple(); },
        evw::Event::Fork);
  }
  SUBCASE("Cleanup") {
    check_move_keeps_all<evw::Cleanup>(
        loop, [&](auto cb) { return evw::Cleanup(loop, cb); }, [](const evw::Cleanup&) { return std::tuple(); },
        evw::Event::Cleanup);
  }
  SUBCASE("Async") {
    check_move_keeps_all<evw::Async>(
        loop, [&](auto cb) { return evw::Async(loop, cb); }, [](const evw::Async& w) { return std::tuple(w.async_pending()); },
        evw::Event::Async);
  }
  SUBCASE("Stat") {
    char path[] = "/tmp/evw-move-XXXXXX";
    evw_test::Fd file(::mkstemp(path));
    REQUIRE(file.get() >= 0);
    REQUIRE(::write(file.get(), "abc", 3) == 3);
    check_move_keeps_all<evw::Stat>(
        loop, [&](auto cb) { return evw::Stat(loop, path, 0.5, cb); },
        [](const evw::Stat& w) { return std::tuple(w.path(), w.interval(), w.attr().st_size, w.attr().st_ino); },
        evw::Event::Stat);
    ::unlink(path);
  }
  SUBCASE("Embed") {
    evw::Loop inner(evw::Backend::Epoll);
    check_move_keeps_all<evw::Embed>(
        loop, [&](auto cb) { return evw::Embed(loop, inner, cb); },
        [](const evw::Embed& w) { return std::tuple(&w.other(), w.other_exists()); }, evw::Event::Embed);
  }
  SUBCASE("Child") {
    evw::Loop& def = evw::Loop::default_loop();
    check_move_keeps_all<evw::Child>(
        def, [&](auto cb) { return evw::Child(def, 4242, true, cb); },
        [](const evw::Child& w) { return std::tuple(w.pid(), w.trace(), w.rpid(), w.rstatus()); },
        evw::Event::Child, evw::max_priority);
  }
  SUBCASE("Attr") {
    // Any file epoll takes will do for the contract (a fed event rereads it).
    check_move_keeps_all<evw::Attr>(
        loop, [&](auto cb) { return evw::Attr(loop, "/proc/self/mountinfo", cb); },
        [](const evw::Attr& w) { return std::tuple(w.path(), w.fd(), w.value()); }, evw::Event::Pri);
  }
  SUBCASE("Mounts") {
    check_move_keeps_all<evw::Mounts>(
        loop, [&](auto cb) { return evw::Mounts(loop, cb); },
        [](const evw::Mounts& w) { return std::tuple(w.path(), w.fd(), w.table().size()); }, evw::Event::Pri);
  }
  SUBCASE("GpioLine") {
    Pipe pipe;
    // (Fed Event::Read would read the empty pipe and call nobody.)
    check_move_keeps_all<evw::GpioLine>(
        loop, [&](auto cb) { return evw::GpioLine::from_fd(loop, pipe.read_end.release(), cb); },
        [](const evw::GpioLine& w) { return std::tuple(w.fd(), w.line(), w.chip(), w.lost()); }, evw::Event::Custom);
  }
  CHECK(loop.watcher_count() == 0);
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("move: Gpio (gpio-sim) keeps its line, fd and level; nothing is closed or unexported") {
  if (auto why = evw::sim::GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  auto sim = evw::sim::GpioSim::in_temp_dir();
  const std::string dir = sim->root() + "/gpio9";
  auto exported = [&] {
    struct stat st {};
    return ::stat(dir.c_str(), &st) == 0;
  };
  evw::Loop loop;
  const evw::GpioConfig config{.sysfs_root = sim->root(), .edge = evw::Edge::Rising};
  sim->set_input(9, 1);
  check_move_keeps_all<evw::Gpio>(
      loop, [&](auto cb) { return evw::Gpio(loop, 9, config, cb); },
      [](const evw::Gpio& w) {
        return std::tuple(w.line(), w.fd(), w.value(), w.exported(), w.config().edge, w.config().sysfs_root);
      },
      evw::Event::Pri);
  CHECK_FALSE(exported());  // the last owner unexported it, once

  // Real edges before and after the move, the moved-from destroyed in between.
  int calls = 0;
  std::vector<int> values;
  auto first = std::make_unique<evw::Gpio>(loop, 9, evw::GpioConfig{.sysfs_root = sim->root(), .edge = evw::Edge::Both},
                                           [&](evw::Gpio& g, int revents) {
                                             CHECK(revents == evw::Event::Pri);
                                             ++calls;
                                             values.push_back(g.value());
                                           });
  first->start();
  const int fd = first->fd();
  sim->set_input(9, 0);
  REQUIRE(run_until(loop, [&] { return calls == 1; }));
  sim->set_input(9, 1);  // latched, not yet delivered
  std::optional<evw::Gpio> slot;
  {
    evw_test::Fault no_epoll_ctl(evw_test::Call::epoll_ctl, EIO, evw_test::any_call(), 1,
                                 evw_test::Fault::kAlways);
    slot.emplace(std::move(*first));
    CHECK(no_epoll_ctl.matched() == 0);  // the loop's EPOLLPRI table is re-pointed
  }
  evw::Gpio& moved = *slot;
  first.reset();  // must neither close the fd nor unexport
  CHECK(exported());
  CHECK(moved.fd() == fd);
  CHECK(::fcntl(fd, F_GETFD) >= 0);
  REQUIRE(run_until(loop, [&] { return calls == 2; }));
  CHECK(values == std::vector<int>{0, 1});
  CHECK(moved.exported());
  {
    evw::Gpio gone(std::move(moved));  // the last owner
  }
  CHECK_FALSE(exported());
  CHECK(loop.watcher_count() == 0);
}

TEST_CASE("move: the moved-from watcher is empty, its destructor safe; move-assigning into it makes it whole") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  int calls = 0;
  std::optional<evw::Io> empty;
  empty.emplace(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    ++calls;
    read_byte(w.fd());
  });
  empty->start();
  evw::Io full(std::move(*empty));
  CHECK(loop.watcher_count() == 1);
  CHECK_FALSE(empty->is_attached());
  CHECK_FALSE(empty->is_active());
  CHECK_FALSE(empty->is_pending());
  CHECK(empty->clear_pending() == 0);
  empty->stop();  // harmless
  try {
    empty->start();
    FAIL("start() on a moved-from watcher did not throw");
  } catch (const std::logic_error& e) {
    CHECK(std::string(e.what()).find("moved from") != std::string::npos);
  }
  CHECK_THROWS_AS(empty->feed(evw::Event::Read), std::logic_error);
  CHECK_THROWS_AS(empty->invoke(evw::Event::Read), std::logic_error);
  // Moving an empty watcher gives an empty one.
  evw::Io still_empty(std::move(*empty));
  CHECK_THROWS_AS(still_empty.start(), std::logic_error);
  empty.reset();  // destructor of a moved-from watcher
  CHECK(loop.watcher_count() == 1);

  // A new callback and a move into it: whole again.
  still_empty.set_callback([](evw::Io&, int) {});
  still_empty = std::move(full);
  CHECK(still_empty.is_active());
  write_byte(b.get());
  REQUIRE(run_until(loop, [&] { return calls == 1; }));
  still_empty.stop();
  CHECK(loop.watcher_count() == 1);
}

TEST_CASE("move: move assignment over an active watcher stops and releases the old one") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  auto [c, d] = evw_test::socket_pair();
  auto token = std::make_shared<int>(0);
  int calls_a = 0, calls_c = 0;
  evw::Io target(loop, a.get(), evw::Event::Read, [&, token](evw::Io& w, int) {
    ++calls_a;
    read_byte(w.fd());
  });
  evw::Io source(loop, c.get(), evw::Event::Read, [&](evw::Io& w, int) {
    ++calls_c;
    read_byte(w.fd());
  });
  target.start();
  source.start();
  target.feed(evw::Event::Read);  // pending too: dropped with the old watcher
  CHECK(loop.watcher_count() == 2);
  CHECK(token.use_count() == 2);
  target = std::move(source);
  CHECK(token.use_count() == 1);  // the old callback is gone
  CHECK(loop.watcher_count() == 1);
  CHECK(target.fd() == c.get());
  CHECK(target.is_active());
  write_byte(b.get());
  write_byte(d.get());
  REQUIRE(run_until(loop, [&] { return calls_c == 1; }));
  settle(loop);
  CHECK(calls_a == 0);
  CHECK(calls_c == 1);
  // Self-assignment changes nothing.
  auto& self = target;
  target = std::move(self);
  CHECK(target.is_active());
  target.stop();
}

TEST_CASE("move: inside another watcher's callback, active and pending watchers move (Timer, Signal, Idle)") {
  evw::Loop loop;
  Calls timer_calls, signal_calls;
  evw::Timer timer(loop, 0.05, 0.0, [&](evw::Timer& w, int revents) {
    ++timer_calls.count;
    timer_calls.who = &w;
    timer_calls.revents = revents;
  });
  evw::Signal signal(loop, SIGUSR2, [&](evw::Signal& w, int revents) {
    ++signal_calls.count;
    signal_calls.who = &w;
    signal_calls.revents = revents;
  });
  timer.start();
  signal.start();
  std::optional<evw::Timer> timer2;
  std::optional<evw::Signal> signal2;
  evw::Idle mover(loop, [&](evw::Idle& w, int) {
    signal.feed(evw::Event::Signal);  // pending in this very iteration
    CHECK(signal.is_pending());
    const double remaining = timer.remaining();
    timer2.emplace(std::move(timer));
    signal2.emplace(std::move(signal));
    CHECK(std::abs(timer2->remaining() - remaining) < 1e-6);
    CHECK(signal2->is_pending());
    w.stop();
  });
  mover.set_priority(evw::max_priority);
  mover.start();
  REQUIRE(run_until(loop, [&] { return timer_calls.count == 1 && signal_calls.count == 1; }));
  CHECK(timer_calls.who == &*timer2);
  CHECK(signal_calls.who == &*signal2);
  CHECK(signal_calls.revents == evw::Event::Signal);
  signal2->stop();
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("move: moving the watcher whose callback runs throws logic_error and changes nothing") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  int calls = 0, refused = 0;
  std::optional<evw::Io> elsewhere;
  evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    ++calls;
    read_byte(w.fd());
    try {
      elsewhere.emplace(std::move(w));
    } catch (const std::logic_error& e) {
      ++refused;
      CHECK(std::string(e.what()).find("own callback") != std::string::npos);
    }
    evw::Io other(loop, w.fd(), evw::Event::Read, [](evw::Io&, int) {});
    CHECK_THROWS_AS(other = std::move(w), std::logic_error);
    CHECK(other.fd() == w.fd());
    CHECK(w.is_active());
  });
  io.start();
  write_byte(b.get());
  REQUIRE(run_until(loop, [&] { return calls == 1; }));
  CHECK(refused == 1);
  CHECK_FALSE(elsewhere.has_value());
  CHECK(io.is_active());
  write_byte(b.get());  // still the same working watcher
  REQUIRE(run_until(loop, [&] { return calls == 2; }));
  CHECK(refused == 2);
  // After its callback, it moves.
  evw::Io moved(std::move(io));
  CHECK(moved.is_active());
  moved.stop();
}

TEST_CASE("move: a std::vector that reallocates inside the callback of one of its watchers throws logic_error") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  auto [c, d] = evw_test::socket_pair();
  const int c_fd = c.get();
  std::vector<evw::Io> ios;
  int calls = 0, refused = 0;
  ios.reserve(2);
  ios.emplace_back(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    ++calls;
    read_byte(w.fd());
    REQUIRE(ios.size() == ios.capacity());
    try {
      ios.emplace_back(loop, c_fd, evw::Event::Read, [](evw::Io&, int) {});
    } catch (const std::logic_error&) {
      ++refused;
    }
  });
  ios.emplace_back(loop, c.get(), evw::Event::Read, [&](evw::Io& w, int) { read_byte(w.fd()); });
  for (auto& io : ios) io.start();
  write_byte(b.get());
  REQUIRE(run_until(loop, [&] { return calls == 1; }));
  CHECK(refused == 1);
  // The running watcher is the first element: nothing was moved before it,
  // so the vector is as it was (std::vector gives the basic guarantee only:
  // elements moved before a running one would be left moved-from).
  REQUIRE(ios.size() == 2);
  CHECK(ios[0].is_active());
  CHECK(ios[1].is_active());
  CHECK(loop.watcher_count() == 2);
  write_byte(b.get());
  REQUIRE(run_until(loop, [&] { return calls == 2; }));
  // Outside its callbacks the vector grows.
  ios.emplace_back(loop, c.get(), evw::Event::Write, [](evw::Io& w, int) { w.stop(); });
  CHECK(ios[0].is_active());
  ios.clear();
  CHECK(loop.watcher_count() == 0);

  // The running watcher second: the first was already moved into the new
  // buffer, which std::vector destroys when the move of the second throws;
  // the old first element is left moved-from (the basic guarantee).
  std::vector<evw::Io> two;
  two.reserve(2);
  two.emplace_back(loop, c_fd, evw::Event::Read, [](evw::Io&, int) {});
  two.emplace_back(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    ++calls;
    read_byte(w.fd());
    CHECK(two.size() == two.capacity());
    CHECK_THROWS_AS(two.emplace_back(loop, c_fd, evw::Event::Read, [](evw::Io&, int) {}), std::logic_error);
  });
  two[1].start();
  write_byte(b.get());
  REQUIRE(run_until(loop, [&] { return calls == 3; }));
  REQUIRE(two.size() == 2);
  CHECK_FALSE(two[0].is_attached());
  CHECK(two[1].is_active());
  CHECK(loop.watcher_count() == 1);
  two.clear();
}

TEST_CASE("move: a watcher whose callback runs a nested loop cannot be moved from the nested callbacks") {
  evw::Loop loop;
  int outer_calls = 0, refused = 0;
  std::optional<evw::Timer> taken;
  evw::Timer outer(loop, 0.0, 0.0, [&](evw::Timer&, int) { ++outer_calls; });
  evw::Idle inner(loop, [&](evw::Idle& w, int) {
    w.stop();
    try {
      taken.emplace(std::move(outer));
    } catch (const std::logic_error&) {
      ++refused;
    }
  });
  outer.set_callback([&](evw::Timer&, int) {
    ++outer_calls;
    inner.start();
    loop.run(evw::Run::NoWait);  // inner runs here, below outer's callback
  });
  outer.start();
  loop.run(evw::Run::NoWait);
  CHECK(outer_calls == 1);
  CHECK(refused == 1);
  CHECK_FALSE(taken.has_value());
  // Back outside: it moves.
  taken.emplace(std::move(outer));
  CHECK(taken->is_attached());
}

TEST_CASE("move: a Priority watcher moving itself from its own callback (the EPOLLPRI table's direct call) throws") {
  evw::Loop loop;
  auto [client, server] = evw_test::tcp_pair();
  int calls = 0, refused = 0;
  std::optional<evw::Priority> elsewhere;
  evw::Priority p(loop, server.get(), [&](evw::Priority& w, int revents) {
    ++calls;
    CHECK(revents == evw::Event::Pri);
    char c;
    CHECK(::recv(w.fd(), &c, 1, MSG_OOB) == 1);
    try {
      elsewhere.emplace(std::move(w));
    } catch (const std::logic_error&) {
      ++refused;
    }
  });
  p.start();
  send_urgent(client.get());
  REQUIRE(run_until(loop, [&] { return calls == 1; }));
  CHECK(refused == 1);
  CHECK(p.is_active());
  p.stop();
}

TEST_CASE("move: Priority over loopback TCP keeps its registration and its urgent data, also from a direct batch") {
  evw::Loop loop;
  auto [client1, server1] = evw_test::tcp_pair();
  auto [client2, server2] = evw_test::tcp_pair();
  const int fds_before = evw_test::open_fd_count();
  Calls calls1, calls2;
  auto recorder = [](Calls& calls) {
    return [&calls](evw::Priority& w, int revents) {
      ++calls.count;
      calls.who = &w;
      calls.revents = revents;
      char c;
      CHECK(::recv(w.fd(), &c, 1, MSG_OOB) == 1);
    };
  };
  std::optional<evw::Priority> p1(std::in_place, loop, server1.get(), recorder(calls1));
  p1->start();
  const int fds_started = evw_test::open_fd_count();
  CHECK(fds_started > fds_before);  // the loop's EPOLLPRI queue (and its spare)

  // Urgent data waiting in the kernel while the watcher moves; the move
  // re-points the loop's table and makes no epoll_ctl at all (any would fail).
  send_urgent(client1.get());
  std::optional<evw::Priority> moved1_slot;
  {
    evw_test::Fault no_epoll_ctl(evw_test::Call::epoll_ctl, EIO, evw_test::any_call(), 1,
                                 evw_test::Fault::kAlways);
    moved1_slot.emplace(std::move(*p1));
    p1.reset();
    CHECK(no_epoll_ctl.matched() == 0);
  }
  evw::Priority& moved1 = *moved1_slot;
  CHECK(moved1.is_active());
  CHECK(evw_test::open_fd_count() == fds_started);
  REQUIRE(run_until(loop, [&] { return calls1.count == 1; }));
  CHECK(calls1.who == &moved1);
  CHECK(calls1.revents == evw::Event::Pri);

  // Two ready in one drain: the first one's callback moves the second,
  // which is queued in the table's direct batch, before it is called.
  std::optional<evw::Priority> p2(std::in_place, loop, server2.get(), recorder(calls2));
  std::optional<evw::Priority> moved2;
  p2->start();
  moved1.set_callback([&](evw::Priority& w, int) {
    ++calls1.count;
    char c;
    CHECK(::recv(w.fd(), &c, 1, MSG_OOB) == 1);
    if (p2) {
      moved2.emplace(std::move(*p2));
      p2.reset();
    }
  });
  moved1.set_priority(evw::max_priority);  // so it runs first in the batch
  send_urgent(client2.get());
  send_urgent(client1.get());
  std::this_thread::sleep_for(10ms);  // both conditions reach the queue before the loop looks
  REQUIRE(run_until(loop, [&] { return calls2.count == 1; }));
  CHECK(calls1.count == 2);
  CHECK(moved2.has_value());
  CHECK(calls2.who == &*moved2);
  settle(loop);
  CHECK(calls2.count == 1);
  moved1.stop();
  moved2->stop();
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("move: destroying the loop after a move detaches the moved-to watcher; both destructors are safe") {
  auto loop = std::make_unique<evw::Loop>();
  auto [a, b] = evw_test::socket_pair();
  evw::Io io(*loop, a.get(), evw::Event::Read, [](evw::Io&, int) {});
  io.start();
  evw::Io moved(std::move(io));
  evw::Timer timer(*loop, 1.0, 0.0, [](evw::Timer&, int) {});
  timer.start();
  evw::Timer timer2(std::move(timer));
  CHECK(loop->watcher_count() == 2);
  loop.reset();
  CHECK_FALSE(moved.is_attached());
  CHECK_FALSE(moved.is_active());
  CHECK_THROWS_AS(moved.start(), std::logic_error);
  // A detached watcher moves too, and stays detached.
  evw::Io again(std::move(moved));
  CHECK_FALSE(again.is_attached());
  CHECK(again.fd() == a.get());
  CHECK_THROWS_AS(again.start(), std::logic_error);
}

TEST_CASE("move: a loop-owned watcher keeps its address: moving from or into it throws logic_error") {
  evw::Loop loop;
  auto& owned = loop.add<evw::Timer>(1.0, 0.0, [](evw::Timer&, int) {});
  owned.start();
  try {
    evw::Timer t(std::move(owned));
    FAIL("moved a loop-owned watcher");
  } catch (const std::logic_error& e) {
    CHECK(std::string(e.what()).find("loop-owned") != std::string::npos);
  }
  CHECK(owned.is_active());
  evw::Timer mine(loop, 1.0, 0.0, [](evw::Timer&, int) {});
  CHECK_THROWS_AS(owned = std::move(mine), std::logic_error);
  CHECK_THROWS_AS(mine = std::move(owned), std::logic_error);
  CHECK(owned.is_active());
  CHECK(mine.is_attached());
  CHECK(loop.watcher_count() == 2);
  loop.remove(owned);
}

TEST_CASE("move: Signal keeps the signal caught; one received before the move reaches the new watcher") {
  // In a child: if the move gave the signal back to its default action for a
  // moment (stopping the last watcher first unblocks it for a signalfd loop),
  // the pending SIGUSR2 would kill the process.
  CHECK(evw_test::passes_in_child([] {
    evw::Loop loop(evw::LoopFlag::SignalFd);  // the signal is blocked, pending in the kernel
    int calls = 0;
    const void* who = nullptr;
    evw::Signal s(loop, SIGUSR2, [&](evw::Signal& w, int) {
      ++calls;
      who = &w;
    });
    s.start();
    ::raise(SIGUSR2);  // blocked by libev, waiting in the kernel for its signalfd
    evw::Signal moved(std::move(s));
    if (!run_until(loop, [&] { return calls == 1; })) return false;
    ::raise(SIGUSR2);
    if (!run_until(loop, [&] { return calls == 2; })) return false;
    moved.stop();
    return who == &moved;
  }));
  CHECK(evw_test::passes_in_child([] {
    evw::Loop& loop = evw::Loop::default_loop();  // a signal handler
    int calls = 0;
    evw::Signal s(loop, SIGUSR2, [&](evw::Signal&, int) { ++calls; });
    s.start();
    ::raise(SIGUSR2);
    std::vector<evw::Signal> v;
    v.push_back(std::move(s));
    v.reserve(8);  // and again
    if (!run_until(loop, [&] { return calls == 1; })) return false;
    v.clear();
    struct sigaction now {};
    ::sigaction(SIGUSR2, nullptr, &now);
    return now.sa_handler == SIG_DFL;  // given back once, by the last watcher
  }));
}

TEST_CASE("move: Child delivers the exit status to the moved watcher") {
  evw::Loop& loop = evw::Loop::default_loop();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(7);
  Calls calls;
  int status = -1;
  std::optional<evw::Child> child(std::in_place, loop, pid, [&](evw::Child& w, int revents) {
    ++calls.count;
    calls.who = &w;
    calls.revents = revents;
    status = w.rstatus();
    w.stop();
  });
  child->start();
  evw::Child moved(std::move(*child));
  child.reset();
  // (Under valgrind a forked child's exit takes seconds: its leak check.)
  REQUIRE(run_until(loop, [&] { return calls.count == 1; }, 20.0));
  CHECK(calls.who == &moved);
  CHECK(calls.revents == evw::Event::Child);
  CHECK(moved.rpid() == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 7);
}

TEST_CASE("move: Stat reports a change the old watcher had not noticed yet") {
  evw::Loop loop;
  char path[] = "/tmp/evw-move-stat-XXXXXX";
  evw_test::Fd file(::mkstemp(path));
  REQUIRE(file.get() >= 0);
  Calls calls;
  std::optional<evw::Stat> stat(std::in_place, loop, path, 0.1, [&](evw::Stat& w, int revents) {
    ++calls.count;
    calls.who = &w;
    calls.revents = revents;
  });
  stat->start();
  settle(loop);
  CHECK(calls.count == 0);
  REQUIRE(::write(file.get(), "grown", 5) == 5);  // not yet seen by the loop
  evw::Stat moved(std::move(*stat));
  stat.reset();
  REQUIRE(run_until(loop, [&] { return calls.count == 1; }));
  CHECK(calls.who == &moved);
  CHECK(calls.revents == evw::Event::Stat);
  CHECK(moved.attr().st_size == 5);
  CHECK(moved.prev().st_size == 0);
  CHECK(moved.path() == path);
  settle(loop, 0.25);
  CHECK(calls.count == 1);
  moved.stop();
  ::unlink(path);
}

TEST_CASE("move: Async keeps a send() the loop has not noticed yet") {
  evw::Loop loop;
  Calls calls;
  evw::Async async(loop, [&](evw::Async& w, int revents) {
    ++calls.count;
    calls.who = &w;
    calls.revents = revents;
  });
  async.start();
  async.send();
  evw::Async moved(std::move(async));
  REQUIRE(run_until(loop, [&] { return calls.count == 1; }));
  CHECK(calls.who == &moved);
  CHECK(calls.revents == evw::Event::Async);
  // A send to a stopped watcher is kept for its next start, across a move too.
  moved.stop();
  moved.send();
  evw::Async again(std::move(moved));
  again.start();
  REQUIRE(run_until(loop, [&] { return calls.count == 2; }));
  CHECK(calls.who == &again);
  again.stop();
}

TEST_CASE("move: Periodic keeps its next time and does not call the reschedule callable") {
  evw::Loop loop;
  int reschedules = 0;
  evw::Periodic p(
      loop,
      [&](evw::Periodic&, double now) {
        ++reschedules;
        return now + 1000.0 + reschedules;
      },
      [](evw::Periodic&, int) {});
  p.start();
  CHECK(reschedules == 1);
  const double at = p.at();
  evw::Periodic moved(std::move(p));
  CHECK(reschedules == 1);
  CHECK(moved.at() == at);
  CHECK(moved.has_reschedule());
  moved.again();  // the callable is its own still
  CHECK(reschedules == 2);
  CHECK(moved.at() > at);
  moved.stop();
}

TEST_CASE("move: Embed keeps the other loop embedded and follows its guard") {
  evw::Loop outer;
  auto inner = std::make_unique<evw::Loop>(evw::Backend::Epoll);
  auto [a, b] = evw_test::socket_pair();
  int inner_calls = 0;
  evw::Io io(*inner, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    ++inner_calls;
    read_byte(w.fd());
  });
  io.start();
  std::optional<evw::Embed> embed(std::in_place, outer, *inner);
  embed->start();
  evw::Embed moved(std::move(*embed));
  embed.reset();
  CHECK(moved.is_active());
  CHECK(&moved.other() == inner.get());
  write_byte(b.get());
  REQUIRE(run_until(outer, [&] { return inner_calls == 1; }));
  // The other loop's destruction stops the moved watcher (its guard followed).
  io.stop();
  inner.reset();
  CHECK_FALSE(moved.other_exists());
  CHECK_FALSE(moved.is_active());
  CHECK_THROWS_AS(moved.start(), std::logic_error);
}

TEST_CASE("move: a moved Cleanup runs once, from the new object, when its loop is destroyed") {
  Calls calls;
  std::optional<evw::Cleanup> moved;
  {
    evw::Loop loop;
    evw::Cleanup cleanup(loop, [&](evw::Cleanup& w, int revents) {
      ++calls.count;
      calls.who = &w;
      calls.revents = revents;
    });
    cleanup.start();
    moved.emplace(std::move(cleanup));
  }
  CHECK(calls.count == 1);
  CHECK(calls.who == &*moved);
  CHECK(calls.revents == evw::Event::Cleanup);
  CHECK_FALSE(moved->is_attached());
}

TEST_CASE("move: GpioLine keeps its request fd and its decoder; a batch reaches the new watcher") {
  evw::Loop loop;
  Pipe pipe;
  std::vector<std::uint32_t> seen;
  const void* who = nullptr;
  auto line = evw::GpioLine::from_fd(loop, pipe.read_end.release(), [&](evw::GpioLine& l, int) {
    who = &l;
    for (const auto& e : l.last_events()) seen.push_back(e.line_seqno);
  });
  const int fd = line.fd();
  line.start();
  put(pipe.write_end.get(), 1);
  put(pipe.write_end.get(), 5);  // 2..4 lost
  REQUIRE(run_until(loop, [&] { return seen.size() == 2; }));
  std::vector<evw::GpioLine> lines;
  lines.push_back(std::move(line));
  CHECK(line.fd() < 0);
  CHECK(lines[0].fd() == fd);
  CHECK(lines[0].lost() == 3);
  put(pipe.write_end.get(), 7);  // the decoder went along: 6 lost
  REQUIRE(run_until(loop, [&] { return seen.size() == 3; }));
  CHECK(who == &lines[0]);
  CHECK(lines[0].lost() == 4);
  lines.clear();
  CHECK(::fcntl(fd, F_GETFD) < 0);  // closed by the last owner
}

TEST_CASE("move: a coroutine awaiting edge() of a GpioLine follows the move; a cancelled wait is safe") {
  evw::Loop loop;
  Pipe pipe;
  const int in = pipe.write_end.get();
  int calls = 0;
  auto line = std::make_unique<evw::GpioLine>(loop, evw::GpioLine::RequestFd{pipe.read_end.release()},
                                              [&](evw::GpioLine&, int) { ++calls; });
  std::optional<evw::GpioLine> moved;
  bool resumed = false;
  auto waiting = [&]() -> evw::Task<int> {
    const int revents = co_await line->edge();  // started for the wait
    resumed = true;
    co_return revents;
  };
  evw::Timer mover(loop, 0.001, 0.0, [&](evw::Timer&, int) {
    CHECK(line->is_active());
    moved.emplace(std::move(*line));
    line.reset();  // the old object is gone
    put(in, 1);
  });
  mover.start();
  CHECK(evw::sync_wait(loop, waiting()) == evw::Event::Read);
  CHECK(resumed);
  CHECK(calls == 1);
  CHECK_FALSE(moved->is_active());  // stopped again after the wait, at its new address

  // A wait cancelled (timed out) after its watcher moved.
  std::optional<evw::GpioLine> moved_again;
  auto timed_out = [&]() -> evw::Task<bool> {
    evw::Timer mover2(loop, 0.001, 0.0, [&](evw::Timer&, int) {
      moved_again.emplace(std::move(*moved));
      moved.reset();
    });
    mover2.start();
    co_return co_await evw::with_timeout(loop, 20ms, moved->edge());
  };
  CHECK_FALSE(evw::sync_wait(loop, timed_out()));
  REQUIRE(moved_again.has_value());
  CHECK_FALSE(moved_again->is_active());
  // Its own callback is back in place.
  moved_again->start();
  put(in, 2);
  REQUIRE(run_until(loop, [&] { return calls == 2; }));
  moved_again->stop();
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("move: Attr and CgroupEvents on a real cgroup deliver a change of around the move once, from the new objects") {
  evw_test::TempCgroup group;
  if (!group.ok()) EVW_SKIP(group.why());
  evw::Loop loop;
  std::vector<std::string> values;
  std::vector<bool> populated;
  std::vector<const void*> who;
  auto attr = std::make_unique<evw::Attr>(loop, group.file("cgroup.events"), [&](evw::Attr& w, int revents) {
    CHECK(revents == evw::Event::Pri);
    values.push_back(w.value());
    who.push_back(&w);
  });
  auto events = std::make_unique<evw::CgroupEvents>(loop, group.path(), [&](evw::CgroupEvents& w, int revents) {
    CHECK(revents == evw::Event::Pri);
    populated.push_back(w.populated());
    who.push_back(&w);
  });
  attr->start();
  events->start();
  const int attr_fd = attr->fd(), events_fd = events->fd();
  evw_test::Kid kid([] { ::pause(); });
  REQUIRE(group.adopt(kid.pid()) == 0);  // populated 1, before the loop runs
  std::optional<evw::Attr> moved_attr;
  std::optional<evw::CgroupEvents> moved_events;
  {
    evw_test::Fault no_epoll_ctl(evw_test::Call::epoll_ctl, EIO, evw_test::any_call(), 1,
                                 evw_test::Fault::kAlways);
    moved_attr.emplace(std::move(*attr));
    moved_events.emplace(std::move(*events));
    CHECK(no_epoll_ctl.matched() == 0);  // the loop's EPOLLPRI table is re-pointed
  }
  attr.reset();  // closes nothing
  events.reset();
  CHECK(moved_attr->fd() == attr_fd);
  CHECK(moved_events->fd() == events_fd);
  CHECK(::fcntl(attr_fd, F_GETFD) >= 0);
  CHECK(::fcntl(events_fd, F_GETFD) >= 0);
  REQUIRE(run_until(loop, [&] { return values.size() == 1 && populated.size() == 1; }));
  CHECK(values[0].rfind("populated 1", 0) == 0);
  CHECK(populated[0]);
  CHECK(std::count(who.begin(), who.end(), &*moved_attr) == 1);
  CHECK(std::count(who.begin(), who.end(), &*moved_events) == 1);
  settle(loop);
  CHECK(values.size() == 1);
  CHECK(populated.size() == 1);
  ::kill(kid.pid(), SIGKILL);
  ::waitpid(kid.pid(), nullptr, 0);
  REQUIRE(run_until(loop, [&] { return values.size() == 2 && populated.size() == 2; }));
  CHECK(values[1].rfind("populated 0", 0) == 0);
  CHECK_FALSE(populated[1]);
  moved_attr->stop();
  moved_events->stop();
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("move: Mounts reports a mount the old watcher had not read, once, from the new object") {
  EVW_CHECK_NAMESPACE_RESULT(evw_test::in_mount_namespace([]() -> std::string {
    std::string failure;
    auto check = [&](bool ok, const char* what) {
      if (!ok && failure.empty()) failure = what;
    };
    evw_test::TempDir dir;
    evw::Loop loop;
    int calls = 0;
    const void* who = nullptr;
    std::vector<evw::MountChange> last;
    auto first = std::make_unique<evw::Mounts>(loop, [&](evw::Mounts& w, int) {
      ++calls;
      who = &w;
      last = w.changes();
    });
    first->start();
    const int fd = first->fd();
    if (::mount("evw-tmpfs", dir.path().c_str(), "tmpfs", 0, nullptr) != 0)
      return std::string("SKIP: mount tmpfs on ") + dir.path() + ": " + std::strerror(errno);
    evw::Mounts moved(std::move(*first));
    first.reset();  // closes neither mountinfo nor its set
    check(moved.fd() == fd && ::fcntl(fd, F_GETFD) >= 0, "the file did not go along");
    check(moved.is_active(), "not active after the move");
    check(run_until(loop, [&] { return calls == 1; }), "no event for the mount");
    check(who == &moved, "not called back on the new object");
    check(last.size() == 1 && last[0].kind == evw::MountChange::Kind::Added && last[0].entry.mount_point == dir.path(),
          "not one Added");
    settle(loop);
    check(calls == 1, "a second event for one mount");
    ::umount(dir.path().c_str());
    check(run_until(loop, [&] { return calls == 2; }), "no event for the unmount");
    check(!last.empty() && last[0].kind == evw::MountChange::Kind::Removed, "not Removed");
    moved.stop();
    return failure;
  }));
}

TEST_CASE("move: Pressure keeps its trigger armed, its file and its state") {
  if (::access("/proc/pressure/cpu", R_OK) != 0) EVW_SKIP("no /proc/pressure/cpu (a kernel without PSI)");
  evw::Loop loop;
  evw::PressureConfig config;
  config.resource = evw::Resource::Cpu;
  config.threshold = std::chrono::milliseconds(100);
  config.window = std::chrono::seconds(2);
  check_move_keeps_all<evw::Pressure>(
      loop, [&](auto cb) { return evw::Pressure(loop, config, cb); },
      [](const evw::Pressure& w) { return std::tuple(w.path(), w.fd(), w.trigger(), w.is_stream()); },
      evw::Event::Pri);
  CHECK(loop.watcher_count() == 0);
}

TEST_CASE("move: a coroutine awaiting next() of an Attr follows the move") {
  evw::Loop loop;
  int calls = 0;
  auto attr = std::make_unique<evw::Attr>(loop, "/proc/self/mountinfo", [&](evw::Attr&, int) { ++calls; });
  std::optional<evw::Attr> moved;
  auto waiting = [&]() -> evw::Task<int> { co_return co_await attr->next(); };
  evw::Timer mover(loop, 0.001, 0.0, [&](evw::Timer&, int) {
    CHECK(attr->is_active());  // started for the wait
    moved.emplace(std::move(*attr));
    attr.reset();
    moved->feed(evw::Event::Pri);
  });
  mover.start();
  CHECK(evw::sync_wait(loop, waiting()) == evw::Event::Pri);
  CHECK(calls == 1);
  CHECK_FALSE(moved->is_active());  // stopped again after the wait, at its new address
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}
