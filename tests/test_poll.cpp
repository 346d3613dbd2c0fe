// Poll: every epoll flag through the loop's side-queue, on real sockets:
// EPOLLRDHUP after shutdown and close, edge-triggered, one-shot with rearm(),
// EPOLLEXCLUSIVE over four loops on four threads, and Poll beside Io and
// Priority on one fd.
#include <evw/watchers/poll.hpp>
#include <evw/evw.hpp>
#include <evw/coro/coro.hpp>

#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <any>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "support.hpp"

using evw_test::Fd;
using evw_test::run_until;

namespace {

void put(int fd, const char* s) { REQUIRE(::send(fd, s, std::strlen(s), MSG_NOSIGNAL) == static_cast<ssize_t>(std::strlen(s))); }

// Reads what is there (nonblocking fd); returns it.
std::string drain(int fd) {
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

void spin(evw::Loop& loop, int times = 10) {
  for (int i = 0; i < times; ++i) loop.run(evw::Run::NoWait);
}

// Loopback delivers synchronously, but give the stack a moment to raise the condition.
void settle() { ::usleep(2000); }

}  // namespace

TEST_CASE("Poll Event::RdHup after the peer's shutdown(SHUT_WR), with its data still unread") {
  evw::Loop loop;
  auto [client, server] = evw_test::tcp_pair();
  int calls = 0, rev = 0;
  evw::Poll p(loop, server.get(), evw::Event::RdHup, [&](evw::Poll& w, int revents) {
    ++calls;
    rev = revents;
    w.stop();  // level-triggered: RDHUP lasts
  });
  CHECK(p.events() == evw::Event::RdHup);
  CHECK(p.mode() == evw::PollMode::Level);
  p.start();
  put(client.get(), "last words");
  settle();
  spin(loop);
  CHECK(calls == 0);  // data alone is not a hang-up
  REQUIRE(::shutdown(client.get(), SHUT_WR) == 0);
  CHECK(run_until(loop, [&] { return calls == 1; }));
  CHECK(rev == evw::Event::RdHup);  // only what it asked: no Event::Read
  CHECK(drain(server.get()) == "last words");
  put(server.get(), "still open the other way");
  CHECK(drain(client.get()) == "still open the other way");
}

TEST_CASE("Poll Event::RdHup after the peer's close(), with data unread on either side") {
  SUBCASE("the peer's data is unread here: FIN") {
    evw::Loop loop;
    auto [client, server] = evw_test::tcp_pair();
    int rev = 0;
    evw::Poll p(loop, server.get(), evw::Event::Read | evw::Event::RdHup, [&](evw::Poll& w, int revents) {
      rev = revents;
      w.stop();
    });
    p.start();
    put(client.get(), "bye");
    client.reset();
    CHECK(run_until(loop, [&] { return (rev & evw::Event::RdHup) != 0; }));
    CHECK(rev == (evw::Event::Read | evw::Event::RdHup));
    CHECK(drain(server.get()) == "bye");
  }
  SUBCASE("our data is unread by the peer: it resets, Hup and Error come too") {
    evw::Loop loop;
    auto [client, server] = evw_test::tcp_pair();
    int rev = 0;
    evw::Poll p(loop, server.get(), evw::Event::RdHup, [&](evw::Poll& w, int revents) {
      rev = revents;
      w.stop();
    });
    p.start();
    put(server.get(), "never read");
    settle();
    client.reset();  // close() with unread data sends RST
    CHECK(run_until(loop, [&] { return rev != 0; }));
    CHECK((rev & evw::Event::RdHup) != 0);
    CHECK((rev & evw::Event::Hup) != 0);
    CHECK((rev & evw::Event::Error) != 0);
    CHECK((rev & evw::Event::Read) == 0);  // not asked
  }
}

TEST_CASE("PollMode::Edge: one call per write burst, none while the data stays unread, a new one on new data") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  int calls = 0, rev = 0;
  evw::Poll p(loop, b.get(), evw::Event::Read, evw::PollMode::Edge, [&](evw::Poll&, int revents) {
    ++calls;
    rev = revents;  // reads nothing
  });
  CHECK(p.mode() == evw::PollMode::Edge);
  p.start();
  for (int i = 0; i < 5; ++i) put(a.get(), "burst");
  CHECK(run_until(loop, [&] { return calls == 1; }));
  CHECK(rev == evw::Event::Read);
  spin(loop, 20);
  CHECK(calls == 1);  // level-triggered would be called on every iteration
  put(a.get(), "more");
  CHECK(run_until(loop, [&] { return calls == 2; }));
  spin(loop, 20);
  CHECK(calls == 2);
  CHECK(drain(b.get()).size() == 5 * 5 + 4);

  // The same without Edge, for contrast: the unread data calls again and again.
  int level = 0;
  evw::Poll q(loop, a.get(), evw::Event::Write, [&](evw::Poll&, int) { ++level; });
  q.start();
  spin(loop, 5);
  CHECK(level == 5);
}

TEST_CASE("PollMode::OneShot: one event, then silence until rearm()") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  int calls = 0;
  evw::Poll p(loop, b.get(), evw::Event::Read, evw::PollMode::OneShot, [&](evw::Poll&, int revents) {
    ++calls;
    CHECK(revents == evw::Event::Read);
  });
  p.rearm();  // stopped: nothing to do
  p.start();
  put(a.get(), "x");
  CHECK(run_until(loop, [&] { return calls == 1; }));
  put(a.get(), "y");
  spin(loop, 20);
  CHECK(calls == 1);  // disarmed, though data is there
  CHECK(p.is_active());
  p.rearm();
  CHECK(run_until(loop, [&] { return calls == 2; }));  // level-triggered: the data is still there
  spin(loop, 5);
  CHECK(calls == 2);
  CHECK(drain(b.get()) == "xy");
  p.rearm();
  spin(loop, 5);
  CHECK(calls == 2);  // armed, nothing to read
  put(a.get(), "z");
  CHECK(run_until(loop, [&] { return calls == 3; }));
  spin(loop, 5);
  CHECK(calls == 3);
  // set() re-registers: armed again.
  p.set_events(evw::Event::Read | evw::Event::RdHup);
  CHECK(run_until(loop, [&] { return calls == 4; }));
}

namespace {

// A nonblocking loopback listening socket.
struct Listener {
  Fd fd;
  sockaddr_in addr{};
  explicit Listener(int backlog = 64) : fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) {
    REQUIRE(fd.get() >= 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    REQUIRE(::listen(fd.get(), backlog) == 0);
  }
  Fd connect() const {
    Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (client.get() >= 0 && ::connect(client.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
      client.reset();
    return client;
  }
};

struct HerdResult {
  long switches = 0;   // the loop threads' voluntary context switches: each is a sleep after a wakeup
  long process = 0;    // all threads' but the connecting one's (with the exclusive queues' waiters)
  long callbacks = 0;  // Poll callbacks
  long empty = 0;      // callbacks whose first accept() found nothing (another loop took it)
};

long voluntary_switches(int who = RUSAGE_THREAD) {
  rusage usage{};
  REQUIRE(::getrusage(who, &usage) == 0);
  return usage.ru_nvcsw;
}

// kLoops loops, one thread each, watch one nonblocking listening socket; the
// main thread makes kConnections connections, each once the one before was
// accepted, so that every connection finds all the loops asleep. Userspace
// cannot count the herd itself: a loop woken for a connection another loop
// has accepted meanwhile finds nothing in epoll_wait (level-triggered items
// are polled again) and sleeps again without returning; its thread's
// voluntary context switches count it.
HerdResult herd(int mode) {
  constexpr int kLoops = 4;
  constexpr int kConnections = 1000;
  const Listener listener(1024);

  std::atomic<int> accepted{0}, ready{0};
  struct Counts {
    long switches = 0, callbacks = 0, empty = 0;
  };
  std::vector<Counts> counts(kLoops);
  std::vector<std::unique_ptr<evw::LoopThread>> loops;
  for (int i = 0; i < kLoops; ++i) {
    loops.push_back(std::make_unique<evw::LoopThread>());
    Counts& c = counts[static_cast<size_t>(i)];
    evw::LoopThread* thread = loops.back().get();  // not loops[i]: the vector grows meanwhile
    thread->post([&, thread] {
      evw::Loop& loop = thread->loop();
      loop.add<evw::Poll>(listener.fd.get(), evw::Event::Read, mode, [&](evw::Poll& w, int) {
            ++c.callbacks;
            bool first = true;
            for (;;) {
              const int fd = ::accept4(w.fd(), nullptr, nullptr, SOCK_CLOEXEC);
              if (fd < 0) break;  // EAGAIN: drained (or another loop took it)
              ::close(fd);
              ++accepted;
              first = false;
            }
            if (first) ++c.empty;
          })
          .start();
      c.switches = -voluntary_switches();
      ++ready;
    });
  }
  while (ready < kLoops) std::this_thread::yield();
  ::usleep(10000);  // let the threads go to sleep in epoll_wait
  const long process_before = voluntary_switches(RUSAGE_SELF) - voluntary_switches();
  for (int i = 0; i < kConnections; ++i) {
    const Fd client = listener.connect();
    REQUIRE(client.get() >= 0);
    // Not a timing: a bound, so that a lost connection fails instead of hanging.
    for (int spins = 0; accepted <= i && spins < 2000000; ++spins) std::this_thread::yield();
    REQUIRE(accepted == i + 1);
  }
  const long process_after = voluntary_switches(RUSAGE_SELF) - voluntary_switches();
  std::atomic<int> counted{0};
  for (int i = 0; i < kLoops; ++i)
    loops[static_cast<size_t>(i)]->post([&, i] {
      counts[static_cast<size_t>(i)].switches += voluntary_switches() - 1;  // this post's own wakeup
      ++counted;
    });
  for (auto& l : loops) {
    l->stop();
    l->join();
  }
  CHECK(counted == kLoops);
  HerdResult result;
  result.process = process_after - process_before;
  for (const Counts& c : counts) {
    result.switches += c.switches;
    result.callbacks += c.callbacks;
    result.empty += c.empty;
  }
  return result;
}

}  // namespace

// The loop threads' wakeups per connection: about 4 without EPOLLEXCLUSIVE
// (every loop wakes), about 1 with it. The bounds leave room for a machine
// where a loop is still busy with one connection when the next arrives (then
// the kernel passes it on, and the busy loop may find it taken afterwards).
TEST_CASE("PollMode::Exclusive: four loops on four threads, one listening socket, 1,000 connections") {
  const HerdResult level = herd(evw::PollMode::Level);
  const HerdResult exclusive = herd(evw::PollMode::Exclusive);
  const auto per = [](long n) { return std::to_string(static_cast<double>(n) / 1000.0); };
  MESSAGE("per accepted connection, 4 loops: level: loop thread wakeups ", per(level.switches),
          ", all threads' ", per(level.process), ", callbacks ", per(level.callbacks), ", empty callbacks ",
          per(level.empty), "; exclusive: loop thread wakeups ", per(exclusive.switches), ", all threads' ",
          per(exclusive.process), ", callbacks ", per(exclusive.callbacks), ", empty callbacks ",
          per(exclusive.empty));
  CHECK(level.callbacks >= 1000);
  CHECK(exclusive.callbacks >= 1000);
  CHECK(level.switches >= 2000);      // the herd: more than two loops wake per connection
  CHECK(exclusive.switches <= 1500);  // one loop wakes per connection, give or take
  CHECK(exclusive.empty <= 500);
}

TEST_CASE("Poll and Io on one fd: each gets its own events") {
  evw::Loop loop;
  auto [client, server] = evw_test::tcp_pair();
  std::string data;
  int reads = 0, hangups = 0, rev = 0;
  evw::Io io(loop, server.get(), evw::Event::Read, [&](evw::Io& w, int revents) {
    CHECK(revents == evw::Event::Read);
    ++reads;
    char buf[64];
    const ssize_t n = ::recv(w.fd(), buf, sizeof buf, 0);
    if (n > 0) data.append(buf, static_cast<size_t>(n));
    if (n == 0) w.stop();
  });
  evw::Poll p(loop, server.get(), evw::Event::RdHup, [&](evw::Poll& w, int revents) {
    ++hangups;
    rev = revents;
    w.stop();
  });
  io.start();
  p.start();
  put(client.get(), "hello");
  CHECK(run_until(loop, [&] { return data == "hello"; }));
  CHECK(hangups == 0);
  REQUIRE(::shutdown(client.get(), SHUT_WR) == 0);
  CHECK(run_until(loop, [&] { return hangups == 1 && !io.is_active(); }));
  CHECK(rev == evw::Event::RdHup);
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("Poll watchers of one fd: the fd is registered for the union, each is called with its own bits") {
  evw::Loop loop;
  auto [client, server] = evw_test::tcp_pair();
  int reads = 0, writes = 0, pris = 0;
  evw::Poll r(loop, server.get(), evw::Event::Read, [&](evw::Poll&, int revents) {
    CHECK(revents == evw::Event::Read);
    ++reads;
    drain(server.get());
  });
  evw::Poll w(loop, server.get(), evw::Event::Write, [&](evw::Poll&, int revents) {
    CHECK(revents == evw::Event::Write);
    ++writes;
  });
  evw::Priority p(loop, server.get(), [&](evw::Priority& self, int revents) {
    CHECK(revents == evw::Event::Pri);
    ++pris;
    char c;
    CHECK(::recv(self.fd(), &c, 1, MSG_OOB) == 1);
  });
  r.start();
  w.start();
  p.start();
  loop.run(evw::Run::NoWait);
  CHECK(writes == 1);
  CHECK(reads == 0);
  CHECK(pris == 0);
  w.stop();  // the registration narrows: no Write event wakes the loop any more
  put(client.get(), "x");
  CHECK(run_until(loop, [&] { return reads == 1; }));
  char c = '!';
  REQUIRE(::send(client.get(), &c, 1, MSG_OOB) == 1);
  CHECK(run_until(loop, [&] { return pris == 1; }));
  CHECK(writes == 1);

  // Nothing is ready now: one blocking iteration waits for the timer, which
  // a registration still asking for EPOLLOUT would not.
  bool fired = false;
  evw::Timer t(loop, 0.01, 0.0, [&](evw::Timer&, int) { fired = true; });
  t.start();
  drain(server.get());
  loop.run(evw::Run::Once);
  CHECK(fired);
}

TEST_CASE("Poll rejects bad arguments and the kernel's forbidden combinations") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  auto noop = [](evw::Poll&, int) {};
  const int fd = a.get();
  using evw::Event;
  using evw::PollMode;
  CHECK_THROWS_AS(evw::Poll(loop, -1, Event::Read, noop), std::invalid_argument);
  CHECK_THROWS_AS(evw::Poll(loop, fd, 0, noop), std::invalid_argument);
  CHECK_THROWS_AS(evw::Poll(loop, fd, Event::Timer, noop), std::invalid_argument);
  CHECK_THROWS_AS(evw::Poll(loop, fd, Event::Read | Event::Hup, noop), std::invalid_argument);
  CHECK_THROWS_AS(evw::Poll(loop, fd, Event::Read, 0x8, noop), std::invalid_argument);
  CHECK_THROWS_AS(evw::Poll(loop, fd, Event::Read, -1, noop), std::invalid_argument);
  CHECK_THROWS_AS(evw::Poll(loop, fd, Event::Read, PollMode::Exclusive | PollMode::OneShot, noop),
                  std::invalid_argument);
  CHECK_THROWS_AS(evw::Poll(loop, fd, Event::Read | Event::RdHup, PollMode::Exclusive, noop), std::invalid_argument);
  CHECK_THROWS_AS(evw::Poll(loop, fd, Event::Pri, PollMode::Exclusive, noop), std::invalid_argument);
  CHECK_THROWS_AS(evw::Poll(loop, fd, Event::Read, evw::Poll::Callback{}), std::invalid_argument);
  try {
    evw::Poll(loop, fd, Event::Read, PollMode::Exclusive | PollMode::OneShot, noop);
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("Poll") != std::string::npos);
    CHECK(std::string(e.what()).find("OneShot") != std::string::npos);
  }
  // What the kernel allows is accepted.
  evw::Poll ok(loop, fd, Event::Read | Event::Write, PollMode::Exclusive | PollMode::Edge, noop);
  ok.start();
  CHECK(ok.is_active());
  // set() checks the same, and a refused set() changes nothing.
  CHECK_THROWS_AS(ok.set(fd, Event::Read, PollMode::Exclusive | PollMode::OneShot), std::invalid_argument);
  CHECK(ok.is_active());
  CHECK(ok.mode() == (PollMode::Exclusive | PollMode::Edge));
  // An exclusive registration cannot be modified in the kernel: set() adds it anew.
  ok.set(fd, Event::Write, PollMode::Exclusive);
  CHECK(ok.is_active());
  int writes = 0;
  ok.set_callback([&](evw::Poll&, int revents) {
    CHECK(revents == Event::Write);
    ++writes;
  });
  CHECK(run_until(loop, [&] { return writes > 0; }));

  // One registration per fd and loop: its watchers agree on the mode.
  evw::Poll edge(loop, fd, Event::Read, PollMode::Edge, noop);
  CHECK_THROWS_AS(edge.start(), std::logic_error);
  CHECK_FALSE(edge.is_active());
  evw::Priority pri(loop, fd, [](evw::Priority&, int) {});
  CHECK_THROWS_AS(pri.start(), std::logic_error);  // Priority is level-triggered
  ok.stop();
  edge.start();  // alone now
  CHECK(edge.is_active());
  CHECK_THROWS_AS(pri.start(), std::logic_error);
  edge.stop();
  pri.start();
  CHECK(pri.is_active());

  // A regular file: epoll refuses it.
  char path[] = "/tmp/evw-poll-XXXXXX";
  Fd file(::mkstemp(path));
  ::unlink(path);
  evw::Poll f(loop, file.get(), Event::Read, noop);
  try {
    f.start();
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == EPERM);
    CHECK(std::string(e.what()).find("fd " + std::to_string(file.get())) != std::string::npos);
  }
  CHECK_FALSE(f.is_active());
}

TEST_CASE("Poll start/stop, feed, user data and the move constructor") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  int calls = 0, rev = 0;
  evw::Poll p(loop, b.get(), evw::Event::Read, [&](evw::Poll& w, int revents) {
    ++calls;
    rev = revents;
    CHECK(std::any_cast<int>(w.data()) == 42);
    drain(w.fd());
  });
  p.data() = 42;
  CHECK_FALSE(p.is_active());
  CHECK_FALSE(loop.run(evw::Run::NoWait));
  p.start();
  p.start();  // again: nothing changes
  CHECK(p.is_active());
  put(a.get(), "x");
  CHECK(run_until(loop, [&] { return calls == 1; }));
  CHECK(rev == evw::Event::Read);
  p.feed(evw::Event::Custom);
  CHECK(p.is_pending());
  loop.run(evw::Run::NoWait);
  CHECK(calls == 2);
  CHECK(rev == evw::Event::Custom);

  evw::Poll moved(std::move(p));
  CHECK(moved.is_active());
  CHECK_FALSE(p.is_active());
  CHECK_THROWS_AS(p.start(), std::logic_error);
  CHECK(moved.fd() == b.get());
  CHECK(std::any_cast<int>(moved.data()) == 42);
  put(a.get(), "y");
  CHECK(run_until(loop, [&] { return calls == 3; }));
  std::vector<evw::Poll> many;
  for (int i = 0; i < 8; ++i) many.emplace_back(loop, b.get(), evw::Event::Write, [](evw::Poll& w, int) { w.stop(); });
  for (auto& w : many) w.start();  // the vector grows no more: addresses are stable from here
  loop.run(evw::Run::NoWait);
  for (auto& w : many) CHECK_FALSE(w.is_active());
  moved.stop();
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("Poll set() and set_priority() while active and while pending keep the event") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  auto [c, d] = evw_test::socket_pair();
  int calls = 0, rev = 0;
  evw::Poll p(loop, b.get(), evw::Event::Read, [&](evw::Poll&, int revents) {
    ++calls;
    rev = revents;
  });
  p.start();
  p.set(d.get(), evw::Event::Read | evw::Event::RdHup);  // active, not pending
  CHECK(p.is_active());
  CHECK(p.fd() == d.get());
  put(c.get(), "x");
  CHECK(run_until(loop, [&] { return calls == 1; }));
  drain(d.get());
  p.feed(evw::Event::Custom);
  REQUIRE(p.is_pending());
  p.set(b.get(), evw::Event::Write);  // pending: delivered once, after the change
  CHECK(p.is_pending());
  p.set_priority(2);
  CHECK(p.is_pending());
  p.stop();
  CHECK_FALSE(p.is_pending());
  p.feed(evw::Event::Custom);
  p.set_priority(-1);
  loop.run(evw::Run::NoWait);
  CHECK(calls == 2);
  CHECK(rev == evw::Event::Custom);
}

TEST_CASE("Poll watchers ready in one iteration run by priority, across watcher types") {
  for (bool poll_first : {true, false}) {
    evw::Loop loop;
    auto [a, b] = evw_test::socket_pair();
    auto [c, d] = evw_test::socket_pair();
    std::vector<std::string> order;
    evw::Io io(loop, b.get(), evw::Event::Read, [&](evw::Io& w, int) {
      order.push_back("io");
      drain(w.fd());
    });
    evw::Poll hi(loop, d.get(), evw::Event::Read, [&](evw::Poll& w, int) {
      order.push_back("poll");
      drain(w.fd());
    });
    evw::Poll lo(loop, d.get(), evw::Event::Read, [&](evw::Poll&, int) { order.push_back("poll2"); });
    hi.set_priority(poll_first ? 2 : -1);
    lo.set_priority(poll_first ? 1 : -2);
    io.start();
    hi.start();
    lo.start();
    put(a.get(), "x");
    put(c.get(), "y");
    loop.run(evw::Run::Once);
    REQUIRE(order.size() == 3);
    if (poll_first) CHECK(order == std::vector<std::string>{"poll", "poll2", "io"});
    else CHECK(order == std::vector<std::string>{"io", "poll", "poll2"});
  }
}

TEST_CASE("a Poll destroying itself or a pending one in its callback, and a loop destroyed under Poll watchers") {
  auto [a, b] = evw_test::socket_pair();
  auto [c, d] = evw_test::socket_pair();
  {
    evw::Loop loop;
    int first = 0, victim_calls = 0;
    std::unique_ptr<evw::Poll> self, victim;
    self = std::make_unique<evw::Poll>(loop, b.get(), evw::Event::Read, [&](evw::Poll&, int) {
      ++first;
      victim.reset();
      self.reset();
    });
    victim = std::make_unique<evw::Poll>(loop, d.get(), evw::Event::Read, [&](evw::Poll&, int) { ++victim_calls; });
    self->set_priority(2);
    self->start();
    victim->start();
    put(a.get(), "x");
    put(c.get(), "y");
    CHECK(run_until(loop, [&] { return !self; }));
    spin(loop, 3);
    CHECK(first == 1);
    CHECK(victim_calls == 0);
    CHECK_FALSE(loop.run(evw::Run::NoWait));
  }
  auto user = std::make_unique<evw::Poll>(evw::Loop::default_loop(), b.get(), evw::Event::Read, [](evw::Poll&, int) {});
  {
    auto loop = std::make_unique<evw::Loop>();
    evw::Poll p(*loop, b.get(), evw::Event::Read | evw::Event::RdHup, [](evw::Poll&, int) {});
    p.start();
    loop->add<evw::Poll>(d.get(), evw::Event::Read, [](evw::Poll&, int) {}).start();
    loop.reset();
    CHECK_FALSE(p.is_attached());
    CHECK_FALSE(p.is_active());
    CHECK_THROWS_AS(p.start(), std::logic_error);
    p.stop();
  }
  user.reset();
}

TEST_CASE("Poll after loop.fork() is registered again with its events and mode") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  int calls = 0, rev = 0;
  evw::Poll p(loop, b.get(), evw::Event::Read | evw::Event::RdHup, evw::PollMode::Edge, [&](evw::Poll&, int revents) {
    ++calls;
    rev = revents;
  });
  p.start();
  loop.fork();  // rebuilds the side-queue in this process too
  put(a.get(), "x");
  CHECK(run_until(loop, [&] { return calls == 1; }));
  spin(loop, 5);
  CHECK(calls == 1);  // still edge-triggered
  a.reset();
  CHECK(run_until(loop, [&] { return calls == 2; }));
  CHECK((rev & evw::Event::RdHup) != 0);
}

namespace {

int accept_all(int fd) {
  int n = 0;
  for (int c; (c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0; ++n) ::close(c);
  return n;
}

}  // namespace

// Exclusive registrations live in a queue of their own with a thread asleep
// on it (core/exclusive_queue.hpp): the ordinary semantics hold through it.
TEST_CASE("PollMode::Exclusive on one loop: events, an exception out of run(), destruction in the callback") {
  evw::Loop loop;
  Listener listener;
  int calls = 0, accepted = 0;
  bool throw_once = true;
  evw::Poll p(loop, listener.fd.get(), evw::Event::Read, evw::PollMode::Exclusive, [&](evw::Poll& w, int revents) {
    ++calls;
    CHECK(revents == evw::Event::Read);
    accepted += accept_all(w.fd());
    if (std::exchange(throw_once, false)) throw std::runtime_error("from an exclusive Poll");
  });
  p.data() = 7;
  p.set_priority(2);
  p.start();
  Fd c1 = listener.connect();
  REQUIRE(c1.get() >= 0);
  CHECK_THROWS_WITH_AS(run_until(loop, [&] { return calls == 1; }), "from an exclusive Poll", std::runtime_error);
  CHECK(accepted == 1);
  // The waiter is let go on again after the failed run: the next connection comes.
  Fd c2 = listener.connect();
  CHECK(run_until(loop, [&] { return calls == 2; }));
  CHECK(accepted == 2);
  CHECK(std::any_cast<int>(p.data()) == 7);
  // Nothing more while nothing is queued.
  spin(loop, 5);
  CHECK(calls == 2);
  // set() while active re-registers (DEL and ADD: exclusive refuses MOD).
  p.set(listener.fd.get(), evw::Event::Read, evw::PollMode::Exclusive);
  Fd c3 = listener.connect();
  CHECK(run_until(loop, [&] { return calls == 3; }));
  // A stopped watcher hears nothing; started again, the waiting connection comes.
  p.stop();
  Fd c4 = listener.connect();
  settle();
  spin(loop, 5);
  CHECK(calls == 3);
  p.start();
  CHECK(run_until(loop, [&] { return calls == 4; }));
  CHECK(accepted == 4);

  // A watcher destroying itself in its callback.
  p.stop();
  std::unique_ptr<evw::Poll> own;
  own = std::make_unique<evw::Poll>(loop, listener.fd.get(), evw::Event::Read, evw::PollMode::Exclusive,
                                    [&](evw::Poll& w, int) {
                                      accepted += accept_all(w.fd());
                                      own.reset();
                                    });
  own->start();
  Fd c5 = listener.connect();
  CHECK(run_until(loop, [&] { return own == nullptr; }));
  CHECK(accepted == 5);
  Fd c6 = listener.connect();
  settle();
  spin(loop, 5);
  CHECK(accepted == 5);
  // The queue, its thread and descriptors last as long as an exclusive watcher.
  const int fds = evw_test::open_fd_count();
  evw::Poll again(loop, listener.fd.get(), evw::Event::Read, evw::PollMode::Exclusive, [&](evw::Poll& w, int) {
    accepted += accept_all(w.fd());
  });
  again.start();
  CHECK(evw_test::open_fd_count() == fds + 3);  // the queue's epoll and two eventfds
  CHECK(run_until(loop, [&] { return accepted == 6; }));
  again.stop();
  CHECK(evw_test::open_fd_count() == fds);
}

TEST_CASE("PollMode::Exclusive: a loop destroyed by the callback and under an active watcher") {
  Listener listener;
  {
    auto loop = std::make_unique<evw::Loop>();
    int calls = 0;
    loop->add<evw::Poll>(listener.fd.get(), evw::Event::Read, evw::PollMode::Exclusive, [&](evw::Poll& w, int) {
          ++calls;
          accept_all(w.fd());
          loop.reset();  // joins the exclusive queue's thread
        })
        .start();
    Fd c = listener.connect();
    evw::Loop* raw = loop.get();
    for (int i = 0; i < 200 && loop != nullptr; ++i) raw->run(evw::Run::Once);
    CHECK(loop == nullptr);
    CHECK(calls == 1);
  }
  {
    evw::Poll* kept = nullptr;
    {
      evw::Loop loop;
      kept = &loop.add<evw::Poll>(listener.fd.get(), evw::Event::Read, evw::PollMode::Exclusive,
                                  [](evw::Poll&, int) {});
      kept->start();
      Fd c = listener.connect();
      settle();  // the waiter has published: the loop is destroyed with records in hand
    }
  }
  CHECK(accept_all(listener.fd.get()) == 1);
}

TEST_CASE("PollMode::Exclusive after fork(): the child gets its own queue and thread") {
#if defined(__SANITIZE_THREAD__)
  EVW_SKIP("ThreadSanitizer cannot start threads in the child of a threaded fork (the child's waiter)");
#endif
  evw::Loop loop;
  Listener listener;
  int calls = 0;
  evw::Poll p(loop, listener.fd.get(), evw::Event::Read, evw::PollMode::Exclusive, [&](evw::Poll& w, int) {
    ++calls;
    accept_all(w.fd());
  });
  p.start();
  Fd c1 = listener.connect();
  REQUIRE(run_until(loop, [&] { return calls == 1; }));
  int go[2];
  REQUIRE(::pipe(go) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    bool ok = false;
    try {
      ::close(go[1]);
      loop.fork();  // the parent's waiter does not exist here: a new queue, a new waiter
      char byte;
      ok = ::read(go[0], &byte, 1) == 1;  // the parent's registration is gone: a fair race
      Fd c2 = listener.connect();
      ok = ok && c2.get() >= 0 && run_until(loop, [&] { return calls == 2; }, 5.0);
    } catch (...) {
    }
    ::_exit(ok ? 0 : 1);
  }
  ::close(go[0]);
  // The parent's waiter sleeps on the same listener: exclusive wakes only one,
  // so it leaves the connection to the child.
  p.stop();
  REQUIRE(::write(go[1], "g", 1) == 1);
  ::close(go[1]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  // And the parent's own queue works on.
  p.start();
  Fd c3 = listener.connect();
  CHECK(run_until(loop, [&] { return calls == 2; }));
}

TEST_CASE("PollMode::Exclusive: a listener closed under a stopped watcher, a dup alive, does not make the loop spin") {
  evw::Loop loop;
  Listener listener;
  Fd dup(::dup(listener.fd.get()));
  REQUIRE(dup.get() >= 0);
  int calls = 0;
  evw::Poll p(loop, listener.fd.get(), evw::Event::Read, evw::PollMode::Exclusive, [&](evw::Poll&, int) { ++calls; });
  p.start();
  spin(loop, 2);
  listener.fd.reset();  // epoll keeps the registration: the dup holds the file open
  p.stop();             // DEL fails (EBADF): the registration is stale
  Fd c = listener.connect();
  REQUIRE(c.get() >= 0);
  // The stale record is dropped: a new queue is made without it.
  settle();
  const unsigned start = loop.iteration();
  evw::Timer t(loop, 0.05, 0, [](evw::Timer&, int) {});
  t.start();
  loop.run();
  CHECK(loop.iteration() - start < 20);  // a spin would take thousands
  CHECK(calls == 0);
  CHECK(accept_all(dup.get()) == 1);
}

TEST_CASE("co_await evw::peer_hangup(loop, fd) ends when the peer shuts down writing") {
  evw::Loop loop;
  auto [client, server] = evw_test::tcp_pair();
  auto task = [&]() -> evw::Task<int> { co_return co_await evw::peer_hangup(loop, server.get()); };
  evw::Timer t(loop, 0.001, 0.0, [&](evw::Timer&, int) { REQUIRE(::shutdown(client.get(), SHUT_WR) == 0); });
  t.start();
  CHECK(evw::sync_wait(loop, task()) == evw::Event::RdHup);


  // A Poll awaited many times, edge-triggered: one event per new data.
  auto [a, b] = evw_test::socket_pair();
  put(a.get(), "x");
  auto watch = [&]() -> evw::Task<int> {
    evw::Watch<evw::Poll> w(loop, b.get(), evw::Event::Read, evw::PollMode::Edge);
    const int first = co_await w.next();
    if (::send(a.get(), "y", 1, 0) != 1) co_return -1;
    co_return first + co_await w.next();
  };
  CHECK(evw::sync_wait(loop, watch()) == 2 * evw::Event::Read);
  CHECK(drain(b.get()) == "xy");
}
