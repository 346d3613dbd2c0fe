// Fault injection at every system call evw makes (through core/sys.hpp, see
// tests/fault.hpp): each failure at each call site is a std::system_error
// with that errno and a message naming the call, or (EINTR) a retried call
// that succeeds. Afterwards no descriptor has leaked, the watcher is stopped
// (or active and working), and the same watcher, started again without
// injection, receives a real event: nothing half-registered, nothing lost.
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "../tools/gpio-sim/gpio_sim.hpp"
#include "fault.hpp"
#include "kernel_support.hpp"
#include "support.hpp"

using evw_test::Call;
using evw_test::Fault;

namespace {

// The failures that must be reported; EINTR must be retried instead.
constexpr int kFailures[] = {EMFILE, ENOMEM, EIO};

// f() throws std::system_error with errno err and `op` in its message.
template <class F>
void check_throws(F&& f, int err, const std::string& op) {
  try {
    f();
    FAIL("no exception; expected " << std::string(std::strerror(err)) << " from " << op);
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == err);
    CHECK_MESSAGE(std::string(e.what()).find(op) != std::string::npos,
                  "message \"" << e.what() << "\" does not name " << op);
  }
}

bool urgent_pending(int fd) {
  pollfd p{fd, POLLPRI, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLPRI) != 0;
}

// One urgent byte, waited for (bounded) until the receiver sees it.
void send_urgent(int client, int server) {
  const int one = 1;
  ::setsockopt(server, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
  const char c = '!';
  REQUIRE(::send(client, &c, 1, MSG_OOB) == 1);
  for (int i = 0; i < 1000 && !urgent_pending(server); ++i) ::usleep(1000);
  REQUIRE(urgent_pending(server));
}

void take_urgent(int fd) {
  char c;
  (void)::recv(fd, &c, 1, MSG_OOB);
  char buf[64];
  while (::recv(fd, buf, sizeof buf, 0) > 0) {
  }
}

// Runs the loop for `seconds`, so that an event that should not come has its chance.
void settle(evw::Loop& loop, double seconds = 0.02) {
  bool done = false;
  evw::Timer t(loop, seconds, 0.0, [&](evw::Timer&, int) { done = true; });
  t.start();
  while (!done) loop.run(evw::Run::Once);
}

// A Priority watcher on the server side of a loopback TCP pair that counts
// urgent bytes.
struct Urgent {
  std::pair<evw_test::Fd, evw_test::Fd> tcp = evw_test::tcp_pair();
  int calls = 0;
  int revents = 0;
  evw::Priority::Callback callback() {
    return [this](evw::Priority& w, int rev) {
      ++calls;
      revents = rev;
      take_urgent(w.fd());
    };
  }
  int client() const { return tcp.first.get(); }
  int server() const { return tcp.second.get(); }
  void send() { send_urgent(client(), server()); }
};

// The watcher works: one urgent byte, one callback with Event::Pri.
void check_priority_works(evw::Loop& loop, evw::Priority& p, Urgent& u) {
  REQUIRE(p.is_active());
  const int before = u.calls;
  u.send();
  CHECK(evw_test::run_until(loop, [&] { return u.calls == before + 1; }));
  CHECK((u.revents & evw::Event::Pri) != 0);
}

}  // namespace

// ---- the EPOLLPRI backend ----------------------------------------------------------------

TEST_CASE("fault: epoll_create1 at the first Priority start") {
  for (int err : kFailures) {
    CAPTURE(err);
    evw::Loop loop;
    Urgent u;
    evw::Priority p(loop, u.server(), u.callback());
    const int fds = evw_test::open_fd_count();
    {
      Fault f(Call::epoll_create1, err);
      check_throws([&] { p.start(); }, err, "epoll_create1");
      CHECK(f.failed() == 1);
    }
    CHECK_FALSE(p.is_active());
    CHECK(evw_test::open_fd_count() == fds);
    CHECK_FALSE(loop.run(evw::Run::NoWait));  // nothing left active
    p.start();
    check_priority_works(loop, p, u);
    p.stop();
  }
  evw::Loop loop;
  Urgent u;
  evw::Priority p(loop, u.server(), u.callback());
  {
    Fault f(Call::epoll_create1, EINTR);
    p.start();  // retried
    CHECK(f.failed() == 1);
  }
  check_priority_works(loop, p, u);
}

TEST_CASE("fault: epoll_ctl ADD at Priority start") {
  for (int err : kFailures) {
    CAPTURE(err);
    evw::Loop loop;
    Urgent u;
    evw::Priority p(loop, u.server(), u.callback());
    evw::Priority other(loop, u.client(), [](evw::Priority&, int) {});
    other.start();  // the loop's EPOLLPRI set exists already
    const int fds = evw_test::open_fd_count();
    {
      Fault f(Call::epoll_ctl, err, evw_test::op_is(EPOLL_CTL_ADD));
      check_throws([&] { p.start(); }, err, "EPOLL_CTL_ADD");
      CHECK(f.failed() == 1);
    }
    CHECK_FALSE(p.is_active());
    CHECK(evw_test::open_fd_count() == fds);
    // The urgent byte that comes now is for nobody: no callback, no crash.
    u.send();
    settle(loop);
    CHECK(u.calls == 0);
    p.start();  // registered now: the byte still waiting is delivered
    CHECK(evw_test::run_until(loop, [&] { return u.calls == 1; }));
    check_priority_works(loop, p, u);
  }
  evw::Loop loop;
  Urgent u;
  evw::Priority p(loop, u.server(), u.callback());
  {
    Fault f(Call::epoll_ctl, EINTR, evw_test::op_is(EPOLL_CTL_ADD));
    p.start();
    CHECK(f.failed() == 1);
  }
  check_priority_works(loop, p, u);
}

// A second watcher on an fd re-registers it (MOD) with a new tag. If that
// fails, the first watcher must go on receiving events under the old tag, not
// have them taken for stale ones (which costs a rebuild of the EPOLLPRI set,
// and loses them for good when no descriptor is left for it).
// The first exclusive Poll of a loop makes its queue: an epoll, two eventfds,
// the eventfd's registration, and a thread; then the fd's registration.
TEST_CASE("fault: the exclusive queue's epoll_create1, eventfds and epoll_ctl at the first exclusive Poll start") {
  struct Step {
    Call call;
    int nth;
    const char* what;
  };
  const Step steps[] = {{Call::epoll_create1, 1, "epoll_create1"},
                        {Call::eventfd, 1, "eventfd"},
                        {Call::eventfd, 2, "eventfd"},
                        {Call::epoll_ctl, 1, "EPOLL_CTL_ADD"},
                        {Call::epoll_ctl, 2, "EPOLL_CTL_ADD"}};
  for (const Step& step : steps) {
    CAPTURE(evw_test::call_name(step.call));
    CAPTURE(step.nth);
    evw::Loop loop;
    Urgent u;
    evw::Priority level(loop, u.server(), u.callback());
    level.start();  // the side-queue exists: only the exclusive queue is made below
    auto [client, server] = evw_test::tcp_pair();
    int calls = 0;
    evw::Poll p(loop, server.get(), evw::Event::Read, evw::PollMode::Exclusive,
                [&](evw::Poll&, int) { ++calls; });
    const int fds = evw_test::open_fd_count();
    {
      Fault f(step.call, EMFILE, step.call == Call::epoll_ctl ? evw_test::op_is(EPOLL_CTL_ADD) : evw_test::any_call(),
              step.nth);
      check_throws([&] { p.start(); }, EMFILE, step.what);
      CHECK(f.failed() == 1);
    }
    CHECK_FALSE(p.is_active());
    CHECK(evw_test::open_fd_count() == fds);  // no queue, no thread left behind
    p.start();
    CHECK(::send(client.get(), "x", 1, MSG_NOSIGNAL) == 1);
    CHECK(evw_test::run_until(loop, [&] { return calls >= 1; }));
    check_priority_works(loop, level, u);
  }
}

TEST_CASE("fault: epoll_ctl MOD at a second Priority start on the same fd") {
  for (int err : kFailures) {
    CAPTURE(err);
    evw::Loop loop;
    Urgent u;
    evw::Priority first(loop, u.server(), u.callback());
    int second_calls = 0;
    evw::Priority second(loop, u.server(), [&](evw::Priority&, int) { ++second_calls; });
    first.start();
    const int fds = evw_test::open_fd_count();
    {
      Fault f(Call::epoll_ctl, err, evw_test::op_is(EPOLL_CTL_MOD));
      check_throws([&] { second.start(); }, err, "EPOLL_CTL_MOD");
      CHECK(f.failed() == 1);
    }
    CHECK_FALSE(second.is_active());
    CHECK(first.is_active());
    CHECK(evw_test::open_fd_count() == fds);
    {
      // No new EPOLLPRI set may be needed to deliver the next byte.
      Fault no_rebuild(Call::epoll_create1, EMFILE, evw_test::any_call(), 1, Fault::kAlways);
      u.send();
      CHECK(evw_test::run_until(loop, [&] { return u.calls == 1; }));
      CHECK(no_rebuild.matched() == 0);
    }
    CHECK(second_calls == 0);
    second.start();
    u.send();
    CHECK(evw_test::run_until(loop, [&] { return u.calls == 2 && second_calls == 1; }));
  }
  evw::Loop loop;
  Urgent u;
  evw::Priority first(loop, u.server(), u.callback());
  int second_calls = 0;
  evw::Priority second(loop, u.server(), [&](evw::Priority&, int) { ++second_calls; });
  first.start();
  {
    Fault f(Call::epoll_ctl, EINTR, evw_test::op_is(EPOLL_CTL_MOD));
    second.start();
    CHECK(f.failed() == 1);
  }
  u.send();
  CHECK(evw_test::run_until(loop, [&] { return u.calls == 1 && second_calls == 1; }));
}

// stop() cannot throw: a refused DEL leaves the fd registered in the kernel.
// Its events are then stale (nobody's) and never reach a callback, and a
// later start takes the registration over instead of failing with EEXIST.
TEST_CASE("fault: epoll_ctl DEL at Priority stop") {
  for (int err : kFailures) {
    CAPTURE(err);
    evw::Loop loop;
    Urgent u;
    evw::Priority p(loop, u.server(), u.callback());
    p.start();
    const int fds = evw_test::open_fd_count();
    {
      Fault f(Call::epoll_ctl, err, evw_test::op_is(EPOLL_CTL_DEL));
      p.stop();
      CHECK(f.failed() == 1);
    }
    CHECK_FALSE(p.is_active());
    CHECK(evw_test::open_fd_count() == fds);
    CHECK_NOTHROW(p.start());  // the leftover registration is taken over
    check_priority_works(loop, p, u);
    // Stopped with a refused DEL, then an urgent byte: nobody is called.
    {
      Fault f(Call::epoll_ctl, err, evw_test::op_is(EPOLL_CTL_DEL));
      p.stop();
      CHECK(f.failed() == 1);
    }
    u.send();
    settle(loop);
    CHECK(u.calls == 1);
    CHECK(evw_test::open_fd_count() == fds);
    p.start();
    CHECK(evw_test::run_until(loop, [&] { return u.calls == 2; }));
    check_priority_works(loop, p, u);
  }
  evw::Loop loop;
  Urgent u;
  evw::Priority p(loop, u.server(), u.callback());
  p.start();
  {
    Fault f(Call::epoll_ctl, EINTR, evw_test::op_is(EPOLL_CTL_DEL));
    p.stop();
    CHECK(f.failed() == 1);
  }
  p.start();
  check_priority_works(loop, p, u);
}

// The drain runs inside run(), in libev's callback: a failure is thrown out of
// run() like a callback's exception; the condition stays queued and the next
// run() delivers it, with whatever else was ready in that iteration.
TEST_CASE("fault: epoll_wait in the EPOLLPRI drain") {
  for (int err : kFailures) {
    CAPTURE(err);
    evw::Loop loop;
    Urgent u;
    evw::Priority p(loop, u.server(), u.callback());
    auto [a, b] = evw_test::socket_pair();
    int io_calls = 0;
    evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
      ++io_calls;
      char buf[16];
      while (::read(w.fd(), buf, sizeof buf) > 0) {
      }
    });
    p.start();
    io.start();
    const int fds = evw_test::open_fd_count();
    REQUIRE(::write(b.get(), "x", 1) == 1);
    u.send();
    {
      Fault f(Call::epoll_wait, err);
      check_throws([&] { loop.run(evw::Run::Once); }, err, "epoll_wait");
      CHECK(f.failed() == 1);
    }
    CHECK(u.calls == 0);
    CHECK(loop.depth() == 0);
    CHECK(p.is_active());
    CHECK(io.is_active());
    CHECK(evw_test::open_fd_count() == fds);
    // Nothing lost: the urgent byte and the Io event of that iteration come now.
    CHECK(evw_test::run_until(loop, [&] { return u.calls == 1 && io_calls == 1; }));
    check_priority_works(loop, p, u);
  }
  evw::Loop loop;
  Urgent u;
  evw::Priority p(loop, u.server(), u.callback());
  p.start();
  u.send();
  {
    Fault f(Call::epoll_wait, EINTR);
    CHECK(evw_test::run_until(loop, [&] { return u.calls == 1; }));  // retried, no exception
    CHECK(f.failed() == 1);
  }
  check_priority_works(loop, p, u);
}

TEST_CASE("fault: close of the EPOLLPRI set failing with EINTR or EIO is not retried and leaks nothing") {
  for (int err : {EINTR, EIO}) {
    CAPTURE(err);
    const int fds = evw_test::open_fd_count();
    {
      Urgent u;
      Fault f(Call::close, err);
      {
        evw::Loop loop;
        evw::Priority p(loop, u.server(), u.callback());
        p.start();
        check_priority_works(loop, p, u);
      }  // the loop's EPOLLPRI set is closed here
      CHECK(f.failed() == 1);
    }
    CHECK(evw_test::open_fd_count() == fds);
  }
}

namespace {

// Iterations of loop.run() in `seconds` (a timer stops it).
unsigned iterations_in(evw::Loop& loop, double seconds) {
  evw::Timer stop_after(loop, seconds, 0.0, [&](evw::Timer&, int) { loop.stop(); });
  stop_after.start();
  const unsigned before = loop.iteration();
  loop.run();
  return loop.iteration() - before;
}

// A stale EPOLLPRI registration: a Priority watcher's socket closed under it
// while a dup lives on (epoll keeps the registration armed and DEL through
// the closed number cannot reach it). raise() sends urgent data to the file:
// a level-triggered condition nobody will ever read.
struct Stale {
  Urgent u;
  evw_test::Fd dup;
  explicit Stale(evw::Loop& loop) {
    evw::Priority p(loop, u.server(), [](evw::Priority&, int) { FAIL("a stale registration's watcher was called"); });
    p.start();
    dup.reset(::dup(u.server()));
    REQUIRE(dup.get() >= 0);
    u.tcp.second.reset();  // closed under the active watcher
  }  // p's stop: DEL fails (EBADF), the registration stays
  void raise() { send_urgent(u.client(), dup.get()); }
};

}  // namespace

// The cure for a stale registration is a new kernel queue with the live fds
// (the old one is closed); its condition keeps the old queue readable until
// then. Without a descriptor for the new queue the loop used to spin
// (~100,000 iterations in 0.1 s). Now a spare queue made in advance takes the
// rebuild; with no spare either, the queue is left unwatched for 10 ms at a
// time, and live conditions (level-triggered) are delivered late, not lost.
TEST_CASE("fault: epoll_create1 failing with EMFILE under a stale EPOLLPRI registration does not spin") {
  evw::Loop loop;
  Urgent live;
  evw::Priority keep(loop, live.server(), live.callback());
  keep.start();
  check_priority_works(loop, keep, live);  // the loop's EPOLLPRI set is made before counting
  const int fds = evw_test::open_fd_count();
  {
    Stale first(loop);
    std::optional<Stale> second;
    {
      Fault f(Call::epoll_create1, EMFILE, evw_test::any_call(), 1, Fault::kAlways);
      // 1. The spare takes the rebuild; no spare can be made after it.
      first.raise();
      const unsigned spare_used = iterations_in(loop, 0.1);
      MESSAGE("stale registration, EMFILE, spare queue: " << spare_used << " iterations in 0.1 s");
      CHECK(spare_used < 100);
      CHECK(f.failed() >= 1);
      check_priority_works(loop, keep, live);
      // 2. No spare, no descriptor: paused and retried, never spinning.
      second.emplace(loop);
      second->raise();
      const int tries = f.failed();
      const unsigned paused = iterations_in(loop, 0.1);
      MESSAGE("stale registration, EMFILE, no spare: " << paused << " iterations in 0.1 s");
      CHECK(paused < 100);
      CHECK(f.failed() > tries);  // retried
      check_priority_works(loop, keep, live);  // late, not lost
      const int calls = live.calls;
      live.send();  // pending while the queue is paused, delivered after
      settle(loop, 0.05);
      CHECK(live.calls == calls + 1);
    }
    // 3. Descriptors again: the next retry rebuilds, and the loop is quiet.
    settle(loop, 0.05);
    const unsigned quiet = iterations_in(loop, 0.1);
    MESSAGE("after the rebuild: " << quiet << " iterations in 0.1 s");
    CHECK(quiet < 10);
    check_priority_works(loop, keep, live);
  }
  keep.stop();
  CHECK_FALSE(loop.run(evw::Run::NoWait));
  CHECK(evw_test::open_fd_count() == fds);  // the queue and its spare, nothing more
}

// The rebuild's new queue must hold every live fd: one that cannot be added
// for want of memory would fall silent. Then the old queue is kept, paused
// and retried as without a descriptor.
TEST_CASE("fault: epoll_ctl ADD failing with ENOMEM in the rebuild for a stale registration") {
  evw::Loop loop;
  Urgent live;
  evw::Priority keep(loop, live.server(), live.callback());
  keep.start();
  check_priority_works(loop, keep, live);
  const int fds = evw_test::open_fd_count();
  {
    Stale stale(loop);
    {
      Fault f(Call::epoll_ctl, ENOMEM, evw_test::op_is(EPOLL_CTL_ADD), 1, Fault::kAlways);
      stale.raise();
      const unsigned paused = iterations_in(loop, 0.1);
      MESSAGE("stale registration, ENOMEM in the rebuild: " << paused << " iterations in 0.1 s");
      CHECK(paused < 100);
      CHECK(f.failed() > 1);  // retried
      check_priority_works(loop, keep, live);  // still in the old queue: late, not lost
    }
    settle(loop, 0.05);
    CHECK(iterations_in(loop, 0.1) < 10);  // rebuilt
    check_priority_works(loop, keep, live);
  }
  keep.stop();
  CHECK(evw_test::open_fd_count() == fds);
}

// ---- the wakeup probe (eventfd), Io's fd check ------------------------------------------

// Every Loop creates its wakeup descriptor (for post() and signals) when it is
// constructed, so a Signal start needs none; Async still probes for its own.
TEST_CASE("fault: eventfd probe at Loop construction and Async construction and start") {
  for (int err : kFailures) {
    CAPTURE(err);
    evw::Loop loop;
    int signals = 0, asyncs = 0;
    evw::Signal s(loop, SIGUSR2, [&](evw::Signal&, int) { ++signals; });
    const int fds = evw_test::open_fd_count();
    {
      Fault f(Call::eventfd, err, evw_test::any_call(), 1, 2);
      check_throws([&] { evw::Loop failed; }, err, "eventfd");
      check_throws([&] { evw::Async a(loop, [](evw::Async&, int) {}); }, err, "eventfd");
      CHECK(f.failed() == 2);
    }
    CHECK(evw_test::open_fd_count() == fds);
    {
      Fault f(Call::eventfd, err);
      s.start();  // no descriptor needed: the loop's wakeup exists
      CHECK(f.failed() == 0);
    }
    CHECK(s.is_active());
    evw::Async a(loop, [&](evw::Async&, int) { ++asyncs; });
    {
      Fault f(Call::eventfd, err);
      check_throws([&] { a.start(); }, err, "eventfd");
      CHECK(f.failed() == 1);
    }
    CHECK_FALSE(a.is_active());
    a.start();
    ::raise(SIGUSR2);
    a.send();
    CHECK(evw_test::run_until(loop, [&] { return signals == 1 && asyncs == 1; }));
    s.stop();
    a.stop();
  }
  auto made_loop = [&] {
    Fault f(Call::eventfd, EINTR);
    evw::Loop made;  // retried
    return f.failed();
  };
  CHECK(made_loop() == 1);
  evw::Loop loop;
  int signals = 0, asyncs = 0;
  evw::Signal s(loop, SIGUSR2, [&](evw::Signal&, int) { ++signals; });
  s.start();
  auto made = [&] {
    Fault f(Call::eventfd, EINTR);
    evw::Async made_async(loop, [](evw::Async&, int) {});
    return f.failed();
  };
  CHECK(made() == 1);
  evw::Async a(loop, [&](evw::Async&, int) { ++asyncs; });
  {
    Fault f(Call::eventfd, EINTR);
    a.start();
    CHECK(f.failed() == 1);
  }
  ::raise(SIGUSR2);
  a.send();
  CHECK(evw_test::run_until(loop, [&] { return signals == 1 && asyncs == 1; }));
}

TEST_CASE("fault: fcntl(F_GETFD) at Io start") {
  auto [a, b] = evw_test::socket_pair();
  for (int err : kFailures) {
    CAPTURE(err);
    evw::Loop loop;
    int calls = 0;
    evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
      ++calls;
      char buf[16];
      while (::read(w.fd(), buf, sizeof buf) > 0) {
      }
    });
    {
      Fault f(Call::fcntl, err, evw_test::op_is(F_GETFD));
      check_throws([&] { io.start(); }, err, "fcntl(F_GETFD)");
      CHECK(f.failed() == 1);
    }
    CHECK_FALSE(io.is_active());
    io.start();
    REQUIRE(::write(b.get(), "x", 1) == 1);
    CHECK(evw_test::run_until(loop, [&] { return calls == 1; }));
  }
  evw::Loop loop;
  int calls = 0;
  evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io&, int) { ++calls; });
  {
    Fault f(Call::fcntl, EINTR, evw_test::op_is(F_GETFD));
    io.start();
    CHECK(f.failed() == 1);
  }
  REQUIRE(::write(b.get(), "x", 1) == 1);
  CHECK(evw_test::run_until(loop, [&] { return calls == 1; }));
}

// ---- Gpio (sysfs) on gpio-sim ------------------------------------------------------------

namespace {

#define REQUIRE_GPIO_SIM()                                                            \
  if (auto why = evw::sim::GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why); \
  auto sim_ptr = evw::sim::GpioSim::in_temp_dir();                                     \
  evw::sim::GpioSim& sim = *sim_ptr

constexpr int kLine = 5;

bool exported(const evw::sim::GpioSim& sim) {
  struct stat st {};
  return ::stat((sim.root() + "/gpio" + std::to_string(kLine)).c_str(), &st) == 0;
}

evw::GpioConfig both_edges(const evw::sim::GpioSim& sim) {
  return evw::GpioConfig{.sysfs_root = sim.root(), .edge = evw::Edge::Both};
}

struct Edges {
  int calls = 0;
  int revents = 0;
  int value = -1;
  std::error_code error;
  evw::Gpio::Callback callback() {
    return [this](evw::Gpio& g, int rev) {
      ++calls;
      revents = rev;
      value = g.value();
      error = g.error();
    };
  }
};

// The watcher works: an edge driven on the simulator is delivered with its level.
void check_gpio_works(evw::Loop& loop, evw::Gpio& g, evw::sim::GpioSim& sim, Edges& e) {
  REQUIRE(g.is_active());
  const int level = 1 - sim.input(kLine);
  const int before = e.calls;
  sim.set_input(kLine, level);
  CHECK(evw_test::run_until(loop, [&] { return e.calls > before && e.value == level; }));
  CHECK((e.revents & evw::Event::Pri) != 0);
}

// A Gpio made after a failed one works.
void check_fresh_gpio_works(evw::Loop& loop, evw::sim::GpioSim& sim) {
  Edges e;
  evw::Gpio g(loop, kLine, both_edges(sim), e.callback());
  g.start();
  check_gpio_works(loop, g, sim, e);
}

}  // namespace

TEST_CASE("fault: open at each step of Gpio setup") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  for (const char* step : {"/export", "/direction", "/active_low", "/edge", "/value"}) {
    for (int err : kFailures) {
      CAPTURE(step);
      CAPTURE(err);
      const int fds = evw_test::open_fd_count();
      {
        Fault f(Call::open, err, evw_test::file_ends_with(step));
        check_throws([&] { evw::Gpio g(loop, kLine, both_edges(sim), [](evw::Gpio&, int) {}); }, err,
                     std::string("open ") + sim.root());
        CHECK(f.failed() == 1);
      }
      CHECK(evw_test::open_fd_count() == fds);
      CHECK_FALSE(exported(sim));  // unexported again
      check_fresh_gpio_works(loop, sim);
    }
    CAPTURE(step);
    Fault f(Call::open, EINTR, evw_test::file_ends_with(step));
    Edges e;
    evw::Gpio g(loop, kLine, both_edges(sim), e.callback());
    CHECK(f.failed() == 1);
    g.start();
    check_gpio_works(loop, g, sim, e);
  }
}

TEST_CASE("fault: write at each step of Gpio setup and of the unexport") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  for (const char* step : {"/export", "/direction", "/active_low", "/edge"}) {
    for (int err : kFailures) {
      CAPTURE(step);
      CAPTURE(err);
      const int fds = evw_test::open_fd_count();
      {
        Fault f(Call::write, err, evw_test::file_ends_with(step));
        check_throws([&] { evw::Gpio g(loop, kLine, both_edges(sim), [](evw::Gpio&, int) {}); }, err,
                     std::string("write ") + sim.root());
        CHECK(f.failed() == 1);
      }
      CHECK(evw_test::open_fd_count() == fds);
      CHECK_FALSE(exported(sim));
      check_fresh_gpio_works(loop, sim);
    }
    CAPTURE(step);
    Fault f(Call::write, EINTR, evw_test::file_ends_with(step));
    Edges e;
    evw::Gpio g(loop, kLine, both_edges(sim), e.callback());
    CHECK(f.failed() == 1);
    g.start();
    check_gpio_works(loop, g, sim, e);
  }
  // The destructor's unexport cannot throw: the line stays exported, nothing leaks.
  for (int err : kFailures) {
    CAPTURE(err);
    const int fds = evw_test::open_fd_count();
    {
      Fault f(Call::write, err, evw_test::file_ends_with("/unexport"));
      { evw::Gpio g(loop, kLine, both_edges(sim), [](evw::Gpio&, int) {}); }
      CHECK(f.failed() == 1);
    }
    CHECK(evw_test::open_fd_count() == fds);
    CHECK(exported(sim));
    {
      // Already exported (EBUSY): this Gpio does not unexport it either.
      Edges e;
      evw::Gpio g(loop, kLine, both_edges(sim), e.callback());
      CHECK_FALSE(g.exported());
      g.start();
      check_gpio_works(loop, g, sim, e);
    }
    evw_test::Fd unexport(::open((sim.root() + "/unexport").c_str(), O_WRONLY | O_CLOEXEC));
    const std::string line = std::to_string(kLine);
    REQUIRE(::write(unexport.get(), line.data(), line.size()) == static_cast<ssize_t>(line.size()));
    CHECK_FALSE(exported(sim));
  }
}

TEST_CASE("fault: lseek and read of Gpio's priming read") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  for (Call call : {Call::lseek, Call::read}) {
    const std::string name = evw_test::call_name(call);
    for (int err : kFailures) {
      CAPTURE(name);
      CAPTURE(err);
      const int fds = evw_test::open_fd_count();
      {
        Fault f(call, err, evw_test::file_ends_with("/value"));
        check_throws([&] { evw::Gpio g(loop, kLine, both_edges(sim), [](evw::Gpio&, int) {}); }, err,
                     name + " " + sim.root());
        CHECK(f.failed() == 1);
      }
      CHECK(evw_test::open_fd_count() == fds);
      CHECK_FALSE(exported(sim));
      check_fresh_gpio_works(loop, sim);
    }
    CAPTURE(name);
    Fault f(call, EINTR, evw_test::file_ends_with("/value"));
    Edges e;
    evw::Gpio g(loop, kLine, both_edges(sim), e.callback());
    CHECK(f.failed() == 1);
    g.start();
    check_gpio_works(loop, g, sim, e);
  }
}

// On an edge, the read runs inside run(): a failure stops the watcher and
// calls back once with Event::Error and error() (documented in gpio.hpp). The edge is
// still latched in the file, so a restart delivers it.
TEST_CASE("fault: lseek and read of Gpio's value at an edge") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  for (Call call : {Call::lseek, Call::read}) {
    const std::string name = evw_test::call_name(call);
    for (int err : kFailures) {
      CAPTURE(name);
      CAPTURE(err);
      Edges e;
      evw::Gpio g(loop, kLine, both_edges(sim), e.callback());
      g.start();
      const int fds = evw_test::open_fd_count();
      const int level = 1 - sim.input(kLine);
      {
        Fault f(call, err, evw_test::file_ends_with("/value"));
        sim.set_input(kLine, level);
        CHECK(evw_test::run_until(loop, [&] { return e.calls == 1; }));
        CHECK(f.failed() == 1);
      }
      CHECK(e.revents == evw::Event::Error);
      CHECK(e.error.value() == err);
      CHECK_FALSE(g.is_active());
      CHECK(evw_test::open_fd_count() == fds);
      g.start();
      CHECK(evw_test::run_until(loop, [&] { return e.calls == 2; }));  // the latched edge
      CHECK((e.revents & evw::Event::Pri) != 0);
      CHECK(e.value == level);
      CHECK(g.error().value() == 0);
      check_gpio_works(loop, g, sim, e);
    }
    CAPTURE(name);
    Edges e;
    evw::Gpio g(loop, kLine, both_edges(sim), e.callback());
    g.start();
    {
      Fault f(call, EINTR, evw_test::file_ends_with("/value"));
      check_gpio_works(loop, g, sim, e);
      CHECK(f.failed() == 1);
    }
    CHECK(g.is_active());
  }
}

// set() on the same line rewrites the attributes and re-reads the level while
// the watcher is frozen; on failure it must be thawed, active and working.
TEST_CASE("fault: write and read in Gpio::set keep the watcher working") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  Edges e;
  evw::Gpio g(loop, kLine, both_edges(sim), e.callback());
  g.start();
  const int fds = evw_test::open_fd_count();
  struct Step {
    Call call;
    const char* file;
    const char* op;
  };
  for (const Step& step : {Step{Call::write, "/edge", "write"}, Step{Call::open, "/active_low", "open"},
                           Step{Call::lseek, "/value", "lseek"}, Step{Call::read, "/value", "read"}}) {
    for (int err : kFailures) {
      CAPTURE(step.op);
      CAPTURE(step.file);
      CAPTURE(err);
      {
        Fault f(step.call, err, evw_test::file_ends_with(step.file));
        check_throws([&] { g.set(kLine, both_edges(sim)); }, err, std::string(step.op) + " " + sim.root());
        CHECK(f.failed() == 1);
      }
      CHECK(g.is_active());
      CHECK(evw_test::open_fd_count() == fds);
      check_gpio_works(loop, g, sim, e);
    }
    CAPTURE(step.op);
    Fault f(step.call, EINTR, evw_test::file_ends_with(step.file));
    g.set(kLine, both_edges(sim));
    CHECK(f.failed() == 1);
    CHECK(g.is_active());
    check_gpio_works(loop, g, sim, e);
  }
}

// set() on the same line first polls the value file: an edge latched there
// and not yet seen by the loop must not be cleared by set()'s re-read. If the
// poll fails nothing is known, so set() throws before touching anything.
TEST_CASE("fault: poll in Gpio::set keeps the watcher working and a latched edge") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  Edges e;
  evw::Gpio g(loop, kLine, both_edges(sim), e.callback());
  g.start();
  const int fds = evw_test::open_fd_count();
  for (int err : kFailures) {
    CAPTURE(err);
    const int level = 1 - sim.input(kLine);
    const int before = e.calls;
    sim.set_input(kLine, level);  // an edge the loop has not seen yet
    for (int i = 0; i < 1000 && !urgent_pending(g.fd()); ++i) ::usleep(1000);
    REQUIRE(urgent_pending(g.fd()));
    {
      Fault f(Call::poll, err, evw_test::file_ends_with("/value"));
      check_throws([&] { g.set(kLine, both_edges(sim)); }, err, "poll " + sim.root());
      CHECK(f.failed() == 1);
    }
    CHECK(g.is_active());
    CHECK(evw_test::open_fd_count() == fds);
    CHECK(evw_test::run_until(loop, [&] { return e.calls == before + 1; }));  // the latched edge
    CHECK((e.revents & evw::Event::Pri) != 0);
    CHECK(e.value == level);
    settle(loop);
    CHECK(e.calls == before + 1);  // once
    check_gpio_works(loop, g, sim, e);
  }
  {
    Fault f(Call::poll, EINTR, evw_test::file_ends_with("/value"));
    g.set(kLine, both_edges(sim));  // retried
    CHECK(f.failed() == 1);
  }
  CHECK(g.is_active());
  check_gpio_works(loop, g, sim, e);
}

// read_value() opens `value` anew, seeks and reads it, and closes it (the
// watched file keeps its latched edge). Whichever fails, the call throws
// naming it and the file: value() is unchanged, no descriptor is left open,
// and the latched edge is delivered once by the loop all the same. A failing
// close is not retried and changes nothing.
TEST_CASE("fault: open, lseek, read and close of Gpio::read_value keep a latched edge") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  Edges e;
  evw::Gpio g(loop, kLine, both_edges(sim), e.callback());
  g.start();
  const int fds = evw_test::open_fd_count();
  // An edge the loop has not seen yet; returns its level.
  auto latch = [&] {
    const int level = 1 - sim.input(kLine);
    sim.set_input(kLine, level);
    for (int i = 0; i < 1000 && !urgent_pending(g.fd()); ++i) ::usleep(1000);
    REQUIRE(urgent_pending(g.fd()));
    return level;
  };
  for (Call call : {Call::open, Call::lseek, Call::read}) {
    const std::string name = evw_test::call_name(call);
    for (int err : kFailures) {
      CAPTURE(name);
      CAPTURE(err);
      const int before = e.calls;
      const int old_value = g.value();
      const int level = latch();
      {
        Fault f(call, err, evw_test::file_ends_with("/value"));
        check_throws([&] { (void)g.read_value(); }, err, name + " " + sim.root());
        CHECK(f.failed() == 1);
      }
      CHECK(g.value() == old_value);
      CHECK(urgent_pending(g.fd()));  // still latched in the file
      CHECK(g.is_active());
      CHECK_FALSE(g.is_pending());
      CHECK(evw_test::open_fd_count() == fds);
      CHECK(evw_test::run_until(loop, [&] { return e.calls == before + 1; }));
      CHECK(e.revents == evw::Event::Pri);
      CHECK(e.value == level);
      settle(loop);
      CHECK(e.calls == before + 1);  // once
    }
    CAPTURE(name);
    const int before = e.calls;
    const int level = latch();
    {
      Fault f(call, EINTR, evw_test::file_ends_with("/value"));
      CHECK(g.read_value() == level);  // retried
      CHECK(f.failed() == 1);
    }
    CHECK(g.value() == level);
    CHECK(evw_test::run_until(loop, [&] { return e.calls == before + 1; }));  // the latched edge, once
    settle(loop);
    CHECK(e.calls == before + 1);
    check_gpio_works(loop, g, sim, e);
  }
  for (int err : {EINTR, EIO}) {
    CAPTURE(err);
    const int before = e.calls;
    const int level = latch();
    {
      Fault f(Call::close, err, evw_test::file_ends_with("/value"));
      CHECK(g.read_value() == level);
      CHECK(f.failed() == 1);
      CHECK(f.matched() == 1);  // not retried
    }
    CHECK(evw_test::open_fd_count() == fds);
    CHECK(evw_test::run_until(loop, [&] { return e.calls == before + 1; }));
    CHECK(e.value == level);
  }
  g.stop();
}

// A Gpio that fails after it began to use a line (the line counted in the
// process's registry) gives that use back: the line stays exported for the
// others, and the last of them unexports it. A leaked use would leave it
// exported for ever.
TEST_CASE("fault: a Gpio setup failing on a line others use releases its use") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  check_fresh_gpio_works(loop, sim);  // the loop's EPOLLPRI set is made before counting
  const int fds = evw_test::open_fd_count();
  {
    Edges e;
    evw::Gpio holder(loop, kLine, both_edges(sim), e.callback());  // exports the line
    auto make = [&] { evw::Gpio g(loop, kLine, both_edges(sim), [](evw::Gpio&, int) {}); };
    for (const char* step : {"/direction", "/edge", "/value"}) {
      for (int err : kFailures) {
        CAPTURE(step);
        CAPTURE(err);
        Fault f(Call::open, err, evw_test::file_ends_with(step));
        check_throws(make, err, std::string("open ") + sim.root());
        CHECK(f.failed() == 1);
      }
      CHECK(exported(sim));
      holder.start();
      check_gpio_works(loop, holder, sim, e);
      holder.stop();
    }
    // set() from another line onto it, failing after the claim: the same.
    evw::Gpio mover(loop, kLine + 1, both_edges(sim), [](evw::Gpio&, int) {});
    {
      Fault f(Call::lseek, EIO, evw_test::file_ends_with("/gpio" + std::to_string(kLine) + "/value"));
      check_throws([&] { mover.set(kLine, both_edges(sim)); }, EIO, "lseek " + sim.root());
      CHECK(f.failed() == 1);
    }
    CHECK(mover.line() == kLine + 1);
    CHECK(exported(sim));
  }
  CHECK_FALSE(exported(sim));
  CHECK(evw_test::open_fd_count() == fds);
}

// A line already exported (EBUSY from export) is used as it is if gpioN
// exists, which Gpio checks with stat(). A failing stat is reported as such;
// ENOENT means no gpioN (the line is held elsewhere): the export's EBUSY.
TEST_CASE("fault: stat of gpioN when the line is already exported") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  Edges held;
  evw::Gpio holder(loop, kLine, both_edges(sim), held.callback());  // exports the line
  REQUIRE(holder.exported());
  const std::string dir = "/gpio" + std::to_string(kLine);
  auto make = [&] { evw::Gpio g(loop, kLine, both_edges(sim), [](evw::Gpio&, int) {}); };
  for (int err : kFailures) {
    CAPTURE(err);
    const int fds = evw_test::open_fd_count();
    {
      Fault f(Call::stat, err, evw_test::file_ends_with(dir));
      check_throws(make, err, "stat " + sim.root() + dir);
      CHECK(f.failed() == 1);
    }
    CHECK(evw_test::open_fd_count() == fds);
    CHECK(exported(sim));  // the holder's export is untouched
    holder.start();
    check_gpio_works(loop, holder, sim, held);
    holder.stop();
  }
  {
    Fault f(Call::stat, ENOENT, evw_test::file_ends_with(dir));
    check_throws(make, EBUSY, "write " + sim.root() + "/export");
    CHECK(f.failed() == 1);
  }
  {
    Fault f(Call::stat, EINTR, evw_test::file_ends_with(dir));
    Edges e;
    evw::Gpio g(loop, kLine, both_edges(sim), e.callback());  // retried
    CHECK(f.failed() == 1);
    CHECK(g.exported());  // the holder's export: evw's, counted for both
    g.start();
    check_gpio_works(loop, g, sim, e);
  }
  CHECK(exported(sim));
}

TEST_CASE("fault: close of Gpio's files failing with EINTR or EIO is not retried and leaks nothing") {
  REQUIRE_GPIO_SIM();
  evw::Loop loop;
  check_fresh_gpio_works(loop, sim);  // the loop's EPOLLPRI set is made before counting
  for (int err : {EINTR, EIO}) {
    CAPTURE(err);
    const int fds = evw_test::open_fd_count();
    {
      Fault f(Call::close, err, evw_test::any_call(), 1, Fault::kAlways);
      Edges e;
      evw::Gpio g(loop, kLine, both_edges(sim), e.callback());
      g.start();
      check_gpio_works(loop, g, sim, e);
      g.stop();
    }
    CHECK(evw_test::open_fd_count() == fds);
    CHECK_FALSE(exported(sim));
  }
}

// ---- GpioLine: the decoder's pipe, the chip's open and ioctls ---------------------------

namespace {

gpio_v2_line_event record(std::uint32_t line_seqno) {
  gpio_v2_line_event e{};
  e.id = GPIO_V2_LINE_EVENT_RISING_EDGE;
  e.offset = 4;
  e.seqno = line_seqno;
  e.line_seqno = line_seqno;
  return e;
}

void put(int fd, std::uint32_t first, std::uint32_t count) {
  std::vector<gpio_v2_line_event> events;
  for (std::uint32_t i = 0; i < count; ++i) events.push_back(record(first + i));
  const auto size = static_cast<ssize_t>(events.size() * sizeof(gpio_v2_line_event));
  REQUIRE(::write(fd, events.data(), static_cast<std::size_t>(size)) == size);
}

struct Pipe {
  evw_test::Fd read_end, write_end;
  Pipe() {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);  // blocking: GpioLine must make it nonblocking
    read_end.reset(p[0]);
    write_end.reset(p[1]);
  }
};

struct Records {
  std::vector<std::uint32_t> seqnos;
  int calls = 0;
  int revents = 0;
  std::error_code error;
  evw::GpioLine::Callback callback() {
    return [this](evw::GpioLine& l, int rev) {
      ++calls;
      revents = rev;
      error = l.error();
      for (const evw::GpioEvent& e : l.last_events()) seqnos.push_back(e.line_seqno);
    };
  }
};

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

}  // namespace

TEST_CASE("fault: read of GpioLine's event records") {
  for (int err : kFailures) {
    CAPTURE(err);
    evw::Loop loop;
    Pipe pipe;
    Records r;
    evw::GpioLine line(loop, evw::GpioLine::RequestFd{pipe.read_end.release()}, r.callback());
    line.start();
    const int fds = evw_test::open_fd_count();
    put(pipe.write_end.get(), 1, 2);
    {
      Fault f(Call::read, err, [&](const evw_test::CallInfo& c) { return c.fd == line.fd(); });
      CHECK(evw_test::run_until(loop, [&] { return r.calls == 1; }));
      CHECK(f.failed() == 1);
    }
    CHECK(r.revents == evw::Event::Error);
    CHECK(r.error.value() == err);
    CHECK_FALSE(line.is_active());
    CHECK(evw_test::open_fd_count() == fds);
    // The records are still in the pipe: a restart delivers them, then new ones.
    line.start();
    CHECK(line.error().value() == 0);
    CHECK(evw_test::run_until(loop, [&] { return r.seqnos.size() == 2; }));
    put(pipe.write_end.get(), 3, 1);
    CHECK(evw_test::run_until(loop, [&] { return r.seqnos.size() == 3; }));
    CHECK(r.seqnos == std::vector<std::uint32_t>{1, 2, 3});
    CHECK(line.lost() == 0);
  }
  evw::Loop loop;
  Pipe pipe;
  Records r;
  evw::GpioLine line(loop, evw::GpioLine::RequestFd{pipe.read_end.release()}, r.callback());
  line.start();
  put(pipe.write_end.get(), 1, 2);
  {
    Fault f(Call::read, EINTR, [&](const evw_test::CallInfo& c) { return c.fd == line.fd(); });
    CHECK(evw_test::run_until(loop, [&] { return r.seqnos.size() == 2; }));
    CHECK(f.failed() == 1);
  }
  CHECK(r.calls == 1);
  CHECK(line.is_active());
}

// A descriptor GpioLine cannot make nonblocking would block the loop on a
// spurious wakeup: the constructor refuses it (and closes it, as it owns it).
TEST_CASE("fault: fcntl(F_GETFL) and fcntl(F_SETFL) at GpioLine construction") {
  for (int cmd : {F_GETFL, F_SETFL}) {
    const std::string op = cmd == F_GETFL ? "fcntl(F_GETFL)" : "fcntl(F_SETFL";
    for (int err : kFailures) {
      CAPTURE(op);
      CAPTURE(err);
      evw::Loop loop;
      Pipe pipe;
      const int fd = pipe.read_end.release();
      const int fds = evw_test::open_fd_count();
      {
        Fault f(Call::fcntl, err, evw_test::op_is(static_cast<unsigned long>(cmd)));
        check_throws([&] { evw::GpioLine line(loop, evw::GpioLine::RequestFd{fd}, [](evw::GpioLine&, int) {}); },
                     err, op);
        CHECK(f.failed() == 1);
      }
      CHECK_FALSE(is_open(fd));  // owned, so closed
      CHECK(evw_test::open_fd_count() == fds - 1);
      // A GpioLine made afterwards works.
      Pipe again;
      Records r;
      evw::GpioLine line(loop, evw::GpioLine::RequestFd{again.read_end.release()}, r.callback());
      CHECK((::fcntl(line.fd(), F_GETFL) & O_NONBLOCK) != 0);
      line.start();
      put(again.write_end.get(), 1, 1);
      CHECK(evw_test::run_until(loop, [&] { return r.seqnos.size() == 1; }));
    }
    CAPTURE(op);
    evw::Loop loop;
    Pipe pipe;
    Records r;
    Fault f(Call::fcntl, EINTR, evw_test::op_is(static_cast<unsigned long>(cmd)));
    evw::GpioLine line(loop, evw::GpioLine::RequestFd{pipe.read_end.release()}, r.callback());
    CHECK(f.failed() == 1);
    CHECK((::fcntl(line.fd(), F_GETFL) & O_NONBLOCK) != 0);
    line.start();
    put(pipe.write_end.get(), 1, 1);
    CHECK(evw_test::run_until(loop, [&] { return r.seqnos.size() == 1; }));
  }
}

TEST_CASE("fault: fcntl(F_GETFD) at GpioLine start") {
  for (int err : kFailures) {
    CAPTURE(err);
    evw::Loop loop;
    Pipe pipe;
    Records r;
    evw::GpioLine line(loop, evw::GpioLine::RequestFd{pipe.read_end.release()}, r.callback());
    {
      Fault f(Call::fcntl, err, evw_test::op_is(F_GETFD));
      check_throws([&] { line.start(); }, err, "fcntl(F_GETFD)");
      CHECK(f.failed() == 1);
    }
    CHECK_FALSE(line.is_active());
    line.start();
    put(pipe.write_end.get(), 1, 1);
    CHECK(evw_test::run_until(loop, [&] { return r.seqnos.size() == 1; }));
  }
  evw::Loop loop;
  Pipe pipe;
  Records r;
  evw::GpioLine line(loop, evw::GpioLine::RequestFd{pipe.read_end.release()}, r.callback());
  {
    Fault f(Call::fcntl, EINTR, evw_test::op_is(F_GETFD));
    line.start();
    CHECK(f.failed() == 1);
  }
  put(pipe.write_end.get(), 1, 1);
  CHECK(evw_test::run_until(loop, [&] { return r.seqnos.size() == 1; }));
}

// Without a GPIO chip, /dev/null stands in for one: it opens, and answers the
// chip-info ioctl with ENOTTY, which is what an uninjected run must report.
TEST_CASE("fault: open and GPIO_GET_CHIPINFO_IOCTL of GpioLine's chip") {
  evw::Loop loop;
  const std::string chip = "/dev/null";
  auto make = [&] { evw::GpioLine line(loop, chip, 0, evw::GpioLineConfig{}, [](evw::GpioLine&, int) {}); };
  const int fds = evw_test::open_fd_count();
  for (int err : kFailures) {
    CAPTURE(err);
    {
      Fault f(Call::open, err, evw_test::file_ends_with(chip));
      check_throws(make, err, "open " + chip);
      CHECK(f.failed() == 1);
    }
    {
      Fault f(Call::ioctl, err, evw_test::op_is(GPIO_GET_CHIPINFO_IOCTL));
      check_throws(make, err, "GPIO_GET_CHIPINFO_IOCTL");
      CHECK(f.failed() == 1);
    }
    CHECK(evw_test::open_fd_count() == fds);
  }
  {
    Fault f(Call::open, EINTR, evw_test::file_ends_with(chip));
    check_throws(make, ENOTTY, "GPIO_GET_CHIPINFO_IOCTL");  // retried: the real chip's answer
    CHECK(f.failed() == 1);
  }
  {
    Fault f(Call::ioctl, EINTR, evw_test::op_is(GPIO_GET_CHIPINFO_IOCTL));
    check_throws(make, ENOTTY, "GPIO_GET_CHIPINFO_IOCTL");
    CHECK(f.failed() == 1);
    CHECK(f.matched() == 2);
  }
  CHECK(evw_test::open_fd_count() == fds);
}

TEST_CASE("fault: GPIO_V2_LINE_GET_VALUES_IOCTL of GpioLine::read_value") {
  evw::Loop loop;
  Pipe pipe;
  Records r;
  evw::GpioLine line(loop, evw::GpioLine::RequestFd{pipe.read_end.release()}, r.callback());
  line.start();
  for (int err : kFailures) {
    CAPTURE(err);
    Fault f(Call::ioctl, err, evw_test::op_is(GPIO_V2_LINE_GET_VALUES_IOCTL));
    check_throws([&] { (void)line.read_value(); }, err, "GPIO_V2_LINE_GET_VALUES_IOCTL");
    CHECK(f.failed() == 1);
  }
  {
    Fault f(Call::ioctl, EINTR, evw_test::op_is(GPIO_V2_LINE_GET_VALUES_IOCTL));
    check_throws([&] { (void)line.read_value(); }, ENOTTY, "GPIO_V2_LINE_GET_VALUES_IOCTL");  // a pipe's answer
    CHECK(f.failed() == 1);
    CHECK(f.matched() == 2);
  }
  CHECK(line.is_active());
  put(pipe.write_end.get(), 1, 1);
  CHECK(evw_test::run_until(loop, [&] { return r.seqnos.size() == 1; }));
}

namespace {
// A GPIO chip without hardware: /dev/null opened as the "chip", its two
// ioctls answered through the seam (8 lines; a line request returns the read
// end of a pipe whose write end the test keeps). Install before a Fault: the
// Fault passes the calls it does not fail on to this one.
class FakeChip {
 public:
  static constexpr const char* kPath = "/dev/null";
  FakeChip() : saved_(evw::detail::sys::table) {
    active_ = this;
    evw::detail::sys::table.ioctl = ioctl;
  }
  ~FakeChip() {
    evw::detail::sys::table = saved_;
    active_ = nullptr;
  }
  FakeChip(const FakeChip&) = delete;
  FakeChip& operator=(const FakeChip&) = delete;
  int requests = 0;
  evw_test::Fd write_end;  // of the last request's pipe

 private:
  static int ioctl(int fd, unsigned long request, void* arg) {
    if (request == GPIO_GET_CHIPINFO_IOCTL) {
      auto* info = static_cast<gpiochip_info*>(arg);
      *info = gpiochip_info{};
      std::strcpy(info->name, "fakechip");
      info->lines = 8;
      return 0;
    }
    if (request == GPIO_V2_GET_LINE_IOCTL) {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) return -1;
      static_cast<gpio_v2_line_request*>(arg)->fd = p[0];
      active_->write_end.reset(p[1]);
      ++active_->requests;
      return 0;
    }
    return active_->saved_.ioctl(fd, request, arg);
  }
  evw::detail::sys::Table saved_;
  static inline FakeChip* active_ = nullptr;
};
}  // namespace

TEST_CASE("fault: GPIO_V2_GET_LINE_IOCTL of GpioLine's request") {
  FakeChip chip;
  evw::Loop loop;
  const int fds = evw_test::open_fd_count();
  auto make = [&](Records& r) { return evw::GpioLine(loop, FakeChip::kPath, 3, evw::GpioLineConfig{}, r.callback()); };
  for (int err : kFailures) {
    CAPTURE(err);
    Records r;
    Fault f(Call::ioctl, err, evw_test::op_is(GPIO_V2_GET_LINE_IOCTL));
    check_throws([&] { (void)make(r); }, err, "GPIO_V2_GET_LINE_IOCTL");
    CHECK(f.failed() == 1);
    CHECK(evw_test::open_fd_count() == fds);  // the chip closed, no request fd
  }
  CHECK(chip.requests == 0);
  {
    Records r;
    Fault f(Call::ioctl, EINTR, evw_test::op_is(GPIO_V2_GET_LINE_IOCTL));
    evw::GpioLine line = make(r);  // retried
    CHECK(f.failed() == 1);
    CHECK(f.matched() == 2);
    CHECK(chip.requests == 1);
    line.start();
    put(chip.write_end.get(), 1, 1);  // an edge on the request fd reaches the watcher
    CHECK(evw_test::run_until(loop, [&] { return r.seqnos.size() == 1; }));
  }
  chip.write_end.reset();
  CHECK(evw_test::open_fd_count() == fds);
}

// ---- the kernel's other POLLPRI sources: Attr, CgroupEvents, Mounts, Pressure, Child's pidfd ----

namespace {

// Runs f, which must throw std::system_error with err; no descriptor may be left open.
template <class F>
void check_throws_no_leak(F&& f, int err, const std::string& op) {
  const int fds = evw_test::open_fd_count();
  check_throws(std::forward<F>(f), err, op);
  CHECK(evw_test::open_fd_count() == fds);
}

bool psi_available() { return ::access("/proc/pressure/cpu", R_OK) == 0; }

evw::PressureConfig cpu_trigger() {
  evw::PressureConfig c;
  c.resource = evw::Resource::Cpu;
  c.threshold = std::chrono::milliseconds(100);
  c.window = std::chrono::seconds(2);
  return c;
}

}  // namespace

TEST_CASE("fault: open, lseek and read of an Attr's priming read, and at an event") {
  evw::Loop loop;
  const std::string path = "/proc/self/mountinfo";  // any readable file will do for the reads
  auto cb = [](evw::Attr&, int) {};
  for (int err : kFailures) {
    CAPTURE(err);
    {
      Fault f(Call::open, err, evw_test::file_ends_with("mountinfo"));
      check_throws_no_leak([&] { evw::Attr a(loop, path, cb); }, err, "open " + path);
      CHECK(f.failed() == 1);
    }
    for (Call call : {Call::lseek, Call::read}) {
      Fault f(call, err, evw_test::file_ends_with("mountinfo"));
      check_throws_no_leak([&] { evw::Attr a(loop, path, cb); }, err, f.name());
      CHECK(f.failed() == 1);
    }
    // At an event (fed here): the watcher stops, one Event::Error, error() = errno.
    std::vector<int> got;
    evw::Attr a(loop, path, [&](evw::Attr&, int revents) { got.push_back(revents); });
    {
      Fault f(Call::read, err, evw_test::file_ends_with("mountinfo"));
      a.feed(evw::Event::Pri);
      loop.run(evw::Run::NoWait);
      CHECK(f.failed() == 1);
    }
    CHECK(got == std::vector<int>{evw::Event::Error});
    CHECK(a.error().value() == err);
    CHECK_FALSE(a.is_active());
    a.feed(evw::Event::Pri);  // and it works again
    loop.run(evw::Run::NoWait);
    CHECK(got.size() == 2);
    CHECK(got[1] == evw::Event::Pri);
  }
  Fault f(Call::read, EINTR, evw_test::file_ends_with("mountinfo"));
  evw::Attr a(loop, path, cb);  // retried
  CHECK(f.failed() == 1);
  CHECK_FALSE(a.value().empty());
}

TEST_CASE("fault: CgroupEvents' open and read") {
  evw_test::TempCgroup group;
  if (!group.ok()) EVW_SKIP(group.why());
  evw::Loop loop;
  for (int err : kFailures) {
    CAPTURE(err);
    for (Call call : {Call::open, Call::read}) {
      Fault f(call, err, evw_test::file_ends_with("cgroup.events"));
      check_throws_no_leak([&] { evw::CgroupEvents e(loop, group.path(), [](evw::CgroupEvents&, int) {}); }, err,
                           f.name());
      CHECK(f.failed() == 1);
    }
    int errors = 0;
    evw::CgroupEvents e(loop, group.path(), [&](evw::CgroupEvents& w, int revents) {
      if (revents == evw::Event::Error && w.error().value() == err) ++errors;
    });
    e.start();
    {
      Fault f(Call::lseek, err, evw_test::file_ends_with("cgroup.events"));
      e.feed(evw::Event::Pri);
      loop.run(evw::Run::NoWait);
      CHECK(f.failed() == 1);
    }
    CHECK(errors == 1);
    CHECK_FALSE(e.is_active());
  }
}

TEST_CASE("fault: Mounts' open, its own epoll set and read, at construction and at an event") {
  evw::Loop loop;
  auto cb = [](evw::Mounts&, int) {};
  for (int err : kFailures) {
    CAPTURE(err);
    for (Call call : {Call::open, Call::epoll_create1, Call::epoll_ctl, Call::epoll_wait, Call::read}) {
      Fault f(call, err);
      check_throws_no_leak([&] { evw::Mounts m(loop, cb); }, err, f.name());
      CHECK(f.failed() == 1);
    }
    std::vector<int> got;
    evw::Mounts m(loop, [&](evw::Mounts&, int revents) { got.push_back(revents); });
    m.start();
    for (Call call : {Call::epoll_wait, Call::read}) {
      CAPTURE(call_name(call));
      {
        Fault f(call, err);
        m.feed(evw::Event::Pri);
        loop.run(evw::Run::NoWait);
        CHECK(f.failed() == 1);
      }
      REQUIRE(!got.empty());
      CHECK(got.back() == evw::Event::Error);
      CHECK(m.error().value() == err);
      CHECK_FALSE(m.is_active());
      m.start();
    }
    m.feed(evw::Event::Pri);  // working again
    loop.run(evw::Run::NoWait);
    CHECK(got.back() == evw::Event::Pri);
    CHECK(m.changes().empty());
    m.stop();
  }
  Fault f(Call::epoll_ctl, EINTR);
  evw::Mounts m(loop, cb);  // retried
  CHECK(f.failed() == 1);
}

TEST_CASE("fault: Pressure's open, write, read, poll and own epoll set at setup; epoll_wait and read at an event") {
  if (!psi_available()) EVW_SKIP("no PSI in this kernel (/proc/pressure)");
  evw::Loop loop;
  auto cb = [](evw::Pressure&, int) {};
  for (int err : kFailures) {
    CAPTURE(err);
    for (Call call : {Call::open, Call::write, Call::read, Call::poll, Call::epoll_create1, Call::epoll_ctl,
                      Call::epoll_wait}) {
      Fault f(call, err);
      check_throws_no_leak([&] { evw::Pressure p(loop, cpu_trigger(), cb); }, err, f.name());
      CHECK(f.failed() == 1);
    }
    std::vector<int> got;
    evw::Pressure p(loop, cpu_trigger(), [&](evw::Pressure&, int revents) { got.push_back(revents); });
    p.start();
    for (Call call : {Call::epoll_wait, Call::read, Call::lseek}) {
      CAPTURE(call_name(call));
      {
        Fault f(call, err);
        p.feed(evw::Event::Pri);
        loop.run(evw::Run::NoWait);
        CHECK(f.failed() == 1);
      }
      REQUIRE(!got.empty());
      CHECK(got.back() == evw::Event::Error);
      CHECK(p.error().value() == err);
      CHECK_FALSE(p.is_active());
      p.start();
      CHECK_FALSE(p.error());
    }
    // set() that fails keeps the old trigger working.
    {
      Fault f(Call::write, err);
      check_throws([&] { p.set(cpu_trigger()); }, err, "write");
    }
    CHECK(p.is_active());
    p.feed(evw::Event::Pri);
    loop.run(evw::Run::NoWait);
    CHECK(got.back() == evw::Event::Pri);
  }
  Fault f(Call::write, EINTR);
  evw::Pressure p(loop, cpu_trigger(), cb);  // retried
  CHECK(f.failed() == 1);
}

TEST_CASE("fault: Pressure::from_environment's stat, socket, connect, fstatfs and write") {
  evw_test::TempDir dir;
  const std::string sock = dir.path() + "/pressure.sock";
  evw_test::Fd server(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, sock.c_str());
  REQUIRE(::bind(server.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(server.get(), 8) == 0);
  evw::Loop loop;
  auto cb = [](evw::Pressure&, int) {};
  evw_test::Env write("MEMORY_PRESSURE_WRITE", "c29tZSAxNTAwMDAgMjAwMDAwMAA=");  // "some 150000 2000000\0"
  evw_test::Env watch("MEMORY_PRESSURE_WATCH", sock.c_str());
  for (int err : kFailures) {
    CAPTURE(err);
    for (Call call : {Call::stat, Call::socket, Call::connect, Call::write}) {
      Fault f(call, err);
      check_throws_no_leak([&] { (void)evw::Pressure::from_environment(loop, cb); }, err, f.name());
      CHECK(f.failed() == 1);
    }
  }
  evw::Pressure works = evw::Pressure::from_environment(loop, cb);
  CHECK(works.is_stream());
  if (psi_available()) {
    evw_test::Env psi("MEMORY_PRESSURE_WATCH", "/proc/pressure/memory");
    for (int err : kFailures) {
      Fault f(Call::fstatfs, err);
      check_throws_no_leak([&] { (void)evw::Pressure::from_environment(loop, cb); }, err, "fstatfs");
      CHECK(f.failed() == 1);
    }
  }
}

TEST_CASE("fault: Child's pidfd_open and waitid at start, and waitid at the exit") {
  if (::syscall(SYS_pidfd_open, ::getpid(), 0) < 0 && errno == ENOSYS) EVW_SKIP("no pidfd_open (Linux 5.3)");
  evw::Loop loop;
  evw_test::Kid kid([] { ::_exit(4); });
  std::vector<int> got;
  evw::Child child(loop, kid.pid(), [&](evw::Child&, int revents) { got.push_back(revents); });
  for (int err : {EMFILE, ENOMEM, EIO, ENOSYS}) {
    CAPTURE(err);
    Fault f(Call::pidfd_open, err);
    check_throws_no_leak([&] { child.start(); }, err, "pidfd_open");
    CHECK(f.failed() == 1);
    CHECK_FALSE(child.is_active());
  }
  for (int err : kFailures) {
    CAPTURE(err);
    Fault f(Call::waitid, err);
    check_throws_no_leak([&] { child.start(); }, err, "waitid");
    CHECK(f.failed() == 1);
    CHECK_FALSE(child.is_active());
  }
  {
    Fault f(Call::pidfd_open, EINTR);  // not retried by evw: pidfd_open does not fail with EINTR
    CHECK_THROWS_AS(child.start(), std::system_error);
  }
  child.start();
  kid.release();
  {
    // The exit: its waitid fails (as when someone else reaped it): one Event::Error.
    Fault f(Call::waitid, ECHILD, evw_test::op_is(WEXITED | WNOHANG));
    CHECK(evw_test::run_until(loop, [&] { return !got.empty(); }, 5.0));
    CHECK(f.failed() == 1);
  }
  CHECK(got == std::vector<int>{evw::Event::Error});
  CHECK(child.error() == std::errc::no_child_process);
  CHECK_FALSE(child.is_active());
  CHECK(::waitpid(kid.pid(), nullptr, 0) == kid.pid());  // still there for whoever reaps it
}
