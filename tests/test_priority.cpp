// Priority: EPOLLPRI through the loop's exceptional-condition backend, driven
// by real TCP urgent data over loopback (send(..., MSG_OOB)).
#include <evw/watchers/priority.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <climits>
#include <functional>
#include <memory>
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "support.hpp"

using evw_test::Fd;
using evw_test::run_until;

namespace {

void urgent(int fd, char c = '!') { REQUIRE(::send(fd, &c, 1, MSG_OOB) == 1); }

// Read the urgent byte, clearing EPOLLPRI. Returns it, or -1.
int take_urgent(int fd) {
  char c;
  return ::recv(fd, &c, 1, MSG_OOB) == 1 ? c : -1;
}

// Loopback delivers synchronously, but give the stack a moment to raise EPOLLPRI.
void settle() { ::usleep(2000); }

}  // namespace

TEST_CASE("one urgent byte gives exactly one Event::Pri callback, and no busy loop after it is read") {
  evw::Loop loop;
  auto [client, server] = evw_test::tcp_pair();
  int calls = 0, rev = 0, byte = 0;
  evw::Priority p(loop, server.get(), [&](evw::Priority& w, int revents) {
    ++calls;
    rev = revents;
    byte = take_urgent(w.fd());
  });
  CHECK_FALSE(p.is_active());
  CHECK(p.fd() == server.get());
  p.start();
  CHECK(p.is_active());
  urgent(client.get(), 'u');
  CHECK(run_until(loop, [&] { return calls == 1; }));
  CHECK(rev == evw::Event::Pri);
  CHECK(byte == 'u');
  for (int i = 0; i < 20; ++i) loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  p.stop();
  CHECK_FALSE(p.is_active());
  CHECK_FALSE(loop.run(evw::Run::NoWait));  // the backend's internal watcher stopped too
}

TEST_CASE("Io Event::Read and Priority on the same fd each get their own events") {
  evw::Loop loop;
  auto [client, server] = evw_test::tcp_pair();
  std::string data;
  int pri = 0, reads = 0;
  evw::Io io(loop, server.get(), evw::Event::Read, [&](evw::Io& w, int revents) {
    CHECK(revents == evw::Event::Read);
    ++reads;
    char buf[64];
    ssize_t n = ::recv(w.fd(), buf, sizeof buf, 0);
    if (n > 0) data.append(buf, static_cast<size_t>(n));
  });
  evw::Priority p(loop, server.get(), [&](evw::Priority& w, int revents) {
    CHECK(revents == evw::Event::Pri);
    ++pri;
    CHECK(take_urgent(w.fd()) == '!');
  });
  io.start();
  p.start();
  REQUIRE(::send(client.get(), "hello", 5, 0) == 5);
  CHECK(run_until(loop, [&] { return data == "hello"; }));
  CHECK(pri == 0);
  urgent(client.get());
  CHECK(run_until(loop, [&] { return pri == 1; }));
  for (int i = 0; i < 5; ++i) loop.run(evw::Run::NoWait);
  CHECK(pri == 1);
  CHECK(data == "hello");
}

TEST_CASE("several Priority watchers on one fd all fire; stopping one leaves the others") {
  evw::Loop loop;
  auto [client, server] = evw_test::tcp_pair();
  int counts[3] = {0, 0, 0};
  std::vector<std::unique_ptr<evw::Priority>> ps;
  for (int i = 0; i < 3; ++i)
    ps.push_back(std::make_unique<evw::Priority>(loop, server.get(), [&counts, i](evw::Priority&, int) { ++counts[i]; }));
  for (auto& p : ps) p->start();
  urgent(client.get());
  CHECK(run_until(loop, [&] { return counts[0] && counts[1] && counts[2]; }));
  CHECK(take_urgent(server.get()) == '!');
  loop.run(evw::Run::NoWait);
  CHECK((counts[0] == 1 && counts[1] == 1 && counts[2] == 1));
  ps[1]->stop();
  urgent(client.get());
  CHECK(run_until(loop, [&] { return counts[0] == 2 && counts[2] == 2; }));
  CHECK(take_urgent(server.get()) == '!');
  CHECK(counts[1] == 1);
  ps[0].reset();  // destroying one unregisters only it
  urgent(client.get());
  CHECK(run_until(loop, [&] { return counts[2] == 3; }));
  CHECK(take_urgent(server.get()) == '!');
}

TEST_CASE("priorities hold across watcher types: Priority and Io ready in one iteration") {
  for (bool priority_first : {true, false}) {
    evw::Loop loop;
    auto [client, server] = evw_test::tcp_pair();
    auto [a, b] = evw_test::socket_pair();
    std::vector<std::string> order;
    evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
      order.push_back("io");
      char c;
      while (::read(w.fd(), &c, 1) > 0) {}
    });
    evw::Priority p(loop, server.get(), [&](evw::Priority& w, int) {
      order.push_back("pri");
      take_urgent(w.fd());
    });
    p.set_priority(priority_first ? 2 : -1);
    io.set_priority(priority_first ? 0 : 1);
    io.start();
    p.start();
    REQUIRE(::write(b.get(), "x", 1) == 1);
    urgent(client.get());
    settle();
    loop.run(evw::Run::Once);  // both are ready before this one iteration
    REQUIRE(order.size() == 2);
    if (priority_first) CHECK(order == std::vector<std::string>{"pri", "io"});
    else CHECK(order == std::vector<std::string>{"io", "pri"});
  }
}

TEST_CASE("a Priority watcher destroying itself or another pending one in its callback is safe") {
  evw::Loop loop;
  auto [c1, s1] = evw_test::tcp_pair();
  auto [c2, s2] = evw_test::tcp_pair();
  auto [c3, s3] = evw_test::tcp_pair();
  int first = 0, victim_calls = 0, third = 0;
  std::unique_ptr<evw::Priority> self, victim;
  self = std::make_unique<evw::Priority>(loop, s1.get(), [&](evw::Priority& w, int) {
    ++first;
    take_urgent(w.fd());
    victim.reset();
    self.reset();
  });
  victim = std::make_unique<evw::Priority>(loop, s2.get(), [&](evw::Priority&, int) { ++victim_calls; });
  evw::Priority other(loop, s3.get(), [&](evw::Priority& w, int) {
    ++third;
    take_urgent(w.fd());
  });
  self->set_priority(2);
  self->start();
  victim->start();
  other.start();
  urgent(c1.get());
  urgent(c2.get());
  urgent(c3.get());
  settle();
  CHECK(run_until(loop, [&] { return third == 1 && !self; }));
  CHECK(first == 1);
  CHECK(victim_calls == 0);  // destroyed while pending: never called

  // stopping (not destroying) itself inside the callback
  int stops = 0;
  other.set_callback([&](evw::Priority& w, int) {
    ++stops;
    w.stop();
  });
  urgent(c3.get());
  CHECK(run_until(loop, [&] { return stops == 1; }));
  for (int i = 0; i < 5; ++i) loop.run(evw::Run::NoWait);
  CHECK(stops == 1);
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("Priority start() on a regular file or a closed fd throws system_error naming the fd") {
  evw::Loop loop;
  char path[] = "/tmp/evw-priority-XXXXXX";
  Fd file(::mkstemp(path));
  ::unlink(path);
  evw::Priority p(loop, file.get(), [](evw::Priority&, int) {});
  try {
    p.start();
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == EPERM);
    CHECK(std::string(e.what()).find("fd " + std::to_string(file.get())) != std::string::npos);
  }
  CHECK_FALSE(p.is_active());
  int closed = ::dup(file.get());
  ::close(closed);
  evw::Priority q(loop, closed, [](evw::Priority&, int) {});
  try {
    q.start();
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == EBADF);
  }
  // Any int may come in: a number far beyond every open fd is EBADF too, not
  // a table sized after it (INT_MAX slots would be 32 GiB: bad_alloc or worse).
  evw::Priority huge(loop, INT_MAX, [](evw::Priority&, int) {});
  try {
    huge.start();
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == EBADF);
  }
  CHECK_FALSE(loop.run(evw::Run::NoWait));  // nothing stayed registered
  CHECK_THROWS_AS(evw::Priority(loop, -1, [](evw::Priority&, int) {}), std::invalid_argument);
  // and the loop still works
  auto [client, server] = evw_test::tcp_pair();
  int got = 0;
  evw::Priority ok(loop, server.get(), [&](evw::Priority& w, int) { ++got; take_urgent(w.fd()); });
  ok.start();
  urgent(client.get());
  CHECK(run_until(loop, [&] { return got == 1; }));
}

TEST_CASE("Priority reports Event::Hup when the peer is gone and Event::Error for a socket error") {
  evw::Loop loop;
  auto [a, b] = evw_test::socket_pair();
  int rev = 0;
  evw::Priority p(loop, a.get(), [&](evw::Priority& w, int revents) {
    rev = revents;
    w.stop();
  });
  p.start();
  b.reset();
  CHECK(run_until(loop, [&] { return rev != 0; }));
  CHECK((rev & evw::Event::Hup) != 0);
  CHECK((rev & evw::Event::Pri) == 0);

  // a refused connection: EPOLLERR without EPOLLPRI
  Fd listener(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), len);
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  listener.reset();  // the port is now closed
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  ::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), len);
  rev = 0;
  evw::Priority e(loop, s.get(), [&](evw::Priority& w, int revents) {
    rev = revents;
    w.stop();
  });
  e.start();
  CHECK(run_until(loop, [&] { return rev != 0; }));
  CHECK((rev & evw::Event::Error) != 0);
  CHECK((rev & evw::Event::Pri) == 0);
}

TEST_CASE("Priority set() and set_priority() while active or pending keep the event") {
  evw::Loop loop;
  auto [c1, s1] = evw_test::tcp_pair();
  auto [c2, s2] = evw_test::tcp_pair();
  std::vector<int> fds;
  evw::Priority p(loop, s1.get(), [&](evw::Priority& w, int) {
    fds.push_back(w.fd());
    take_urgent(w.fd());
  });
  p.start();
  p.set(s2.get());
  CHECK(p.is_active());
  urgent(c1.get());  // the old fd: no longer watched
  urgent(c2.get());
  CHECK(run_until(loop, [&] { return fds.size() == 1; }));
  loop.run(evw::Run::NoWait);
  CHECK(fds == std::vector<int>{s2.get()});
  p.feed(evw::Event::Pri);
  p.set(s1.get());
  p.set_priority(1);
  CHECK(p.is_pending());
  loop.run(evw::Run::NoWait);
  CHECK(fds.size() == 2);
  CHECK(fds.back() == s1.get());
  CHECK(take_urgent(s1.get()) == -1);  // the callback consumed the old byte already
  p.data() = std::string("ud");
  CHECK(std::any_cast<std::string>(p.data()) == "ud");
}

TEST_CASE("loop-owned Priority watchers and a loop destroyed while one is active") {
  auto [client, server] = evw_test::tcp_pair();
  auto loop = std::make_unique<evw::Loop>();
  int got = 0;
  auto& owned = loop->add<evw::Priority>(server.get(), [&](evw::Priority& w, int) {
    ++got;
    take_urgent(w.fd());
    w.loop().remove(w);
  });
  owned.start();
  urgent(client.get());
  CHECK(run_until(*loop, [&] { return got == 1; }));
  CHECK(loop->watcher_count() == 0);
  evw::Priority user(*loop, server.get(), [](evw::Priority&, int) {});
  user.start();
  loop->add<evw::Priority>(server.get(), [](evw::Priority&, int) {}).start();
  loop.reset();
  CHECK_FALSE(user.is_active());
  CHECK_THROWS_AS(user.start(), std::logic_error);
}

namespace {

// After fork(), parent and child each watch their own connection with a
// Priority watcher of `watched` (run through `runner`) and must get only their
// own urgent data. give_child_own_queue runs first in the child.
void check_fork_isolation(evw::Loop& runner, evw::Loop& watched,
                          const std::function<void()>& give_child_own_queue) {
  auto [c1, s1] = evw_test::tcp_pair();  // the parent's
  auto [c2, s2] = evw_test::tcp_pair();  // the child's
  int got1 = 0, got2 = 0;
  evw::Priority p1(watched, s1.get(), [&](evw::Priority& w, int) { ++got1; take_urgent(w.fd()); });
  evw::Priority p2(watched, s2.get(), [&](evw::Priority& w, int) { ++got2; take_urgent(w.fd()); });
  p1.start();
  p2.start();
  runner.run(evw::Run::NoWait);
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t child = ::fork();
  if (child == 0) {
    give_child_own_queue();
    p1.stop();  // the child watches only its own connection
    char c = 'r';
    (void)!::write(ready[1], &c, 1);
    bool ok = run_until(runner, [&] { return got2 == 1; }, 5.0);
    for (int i = 0; i < 5; ++i) runner.run(evw::Run::NoWait);
    ::_exit(ok && got1 == 0 && got2 == 1 ? 0 : 1);
  }
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 1);  // the child has its own queue now
  p2.stop();  // with a shared queue this would unregister the child's fd too
  urgent(c2.get(), 'c');
  urgent(c1.get(), 'p');
  CHECK(run_until(runner, [&] { return got1 == 1; }));
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(got2 == 0);
  ::close(ready[0]);
  ::close(ready[1]);
}

}  // namespace

TEST_CASE("after fork() and loop.fork() parent and child each get only their own events") {
  evw::Loop loop;
  check_fork_isolation(loop, loop, [&] { loop.fork(); });
}

TEST_CASE("with LoopFlag::ForkCheck the child gets its own EPOLLPRI queue without loop.fork()") {
  evw::Loop loop(evw::LoopFlag::ForkCheck);
  // libev notices the new pid: the queue is rebuilt in this first iteration.
  check_fork_isolation(loop, loop, [&] { loop.run(evw::Run::NoWait); });
}

TEST_CASE("an embedded loop's EPOLLPRI queue is the child's own after the outer loop's fork()") {
  // libev's Embed re-forks the inner loop itself (embed_fork_cb), never
  // through evw::Loop::fork(): the inner table's fork watcher rebuilds it.
  evw::Loop outer;
  evw::Loop inner(evw::Backend::Epoll);
  evw::Embed embed(outer, inner, [](evw::Embed& e, int) { e.sweep(); });
  embed.start();
  check_fork_isolation(outer, inner, [&] {
    outer.fork();
    outer.run(evw::Run::NoWait);  // the Embed re-forks the inner loop here
  });
}

TEST_CASE("10,000 Priority watchers on 10,000 connections start, deliver and stop") {
  constexpr int kConnections = 10000;
  constexpr int kUrgent = 500;
  constexpr int kStride = kConnections / kUrgent;
  // The client ends live in a child process, so this one needs ~10,000 fds.
  rlimit old{};
  ::getrlimit(RLIMIT_NOFILE, &old);
  rlimit want = old;
  want.rlim_cur = std::max<rlim_t>(old.rlim_cur, kConnections + 200);
  if (want.rlim_cur > old.rlim_max || ::setrlimit(RLIMIT_NOFILE, &want) != 0)
    EVW_SKIP("cannot raise RLIMIT_NOFILE to " + std::to_string(want.rlim_cur) +
             " (hard limit " + std::to_string(old.rlim_max) + ")");
  {
    Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0);
    REQUIRE(::listen(listener.get(), 4096) == 0);
    ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    int go[2];
    REQUIRE(::pipe(go) == 0);
    pid_t child = ::fork();
    if (child == 0) {
      ::close(go[1]);
      std::vector<int> clients;
      for (int i = 0; i < kConnections; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) ::_exit(2);
        clients.push_back(fd);
      }
      char c;
      if (::read(go[0], &c, 1) != 1) ::_exit(3);  // the parent is watching: send
      for (int i = 0; i < kUrgent; ++i)
        if (::send(clients[i * kStride], "!", 1, MSG_OOB) != 1) ::_exit(4);
      (void)!::read(go[0], &c, 1);  // wait for the parent to finish before closing
      ::_exit(0);
    }
    ::close(go[0]);
    Fd go_write(go[1]);
    // accept order equals connect order for one client connecting serially
    std::vector<Fd> servers;
    servers.reserve(kConnections);
    for (int i = 0; i < kConnections; ++i) {
      servers.emplace_back(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      REQUIRE(servers.back().get() >= 0);
    }
    evw::Loop loop;
    std::vector<int> hits(kConnections, 0);
    int total = 0;
    std::vector<std::unique_ptr<evw::Priority>> ps;
    ps.reserve(kConnections);
    for (int i = 0; i < kConnections; ++i) {
      ps.push_back(std::make_unique<evw::Priority>(loop, servers[i].get(), [&, i](evw::Priority& w, int) {
        ++hits[i];
        ++total;
        take_urgent(w.fd());
      }));
      ps.back()->start();
    }
    REQUIRE(::write(go_write.get(), "g", 1) == 1);
    CHECK(run_until(loop, [&] { return total == kUrgent; }, 20.0));
    for (int i = 0; i < 5; ++i) loop.run(evw::Run::NoWait);
    CHECK(total == kUrgent);
    int wrong = 0;
    for (int i = 0; i < kConnections; ++i) wrong += hits[i] != (i % kStride == 0 ? 1 : 0);
    CHECK(wrong == 0);
    for (auto& p : ps) p->stop();
    CHECK_FALSE(loop.run(evw::Run::NoWait));
    go_write.reset();
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  ::setrlimit(RLIMIT_NOFILE, &old);
}

// Watchers ready in one drain are called directly when nothing else is
// pending; these pin down that this is indistinguishable from libev's queue.
namespace {
struct Three {
  evw::Loop loop;
  std::pair<Fd, Fd> c[3] = {evw_test::tcp_pair(), evw_test::tcp_pair(), evw_test::tcp_pair()};
  std::vector<std::string> order;
  std::unique_ptr<evw::Priority> p[3];
  Three(int p0, int p1, int p2) {
    int pris[3] = {p0, p1, p2};
    for (int i = 0; i < 3; ++i) {
      p[i] = std::make_unique<evw::Priority>(loop, c[i].second.get(), [this, i](evw::Priority& w, int) {
        order.push_back("p" + std::to_string(i));
        take_urgent(w.fd());
      });
      p[i]->set_priority(pris[i]);
      p[i]->start();
    }
  }
  void fire() {
    for (auto& pair : c) urgent(pair.first.get());
    settle();
  }
};
}  // namespace

TEST_CASE("Priority watchers ready together run highest priority first") {
  Three t(-1, 2, 0);
  t.fire();
  t.loop.run(evw::Run::Once);
  CHECK(t.order == std::vector<std::string>{"p1", "p2", "p0"});
}

TEST_CASE("inside a batch, later ready watchers are pending and keep their event through set()") {
  Three t(2, 0, -1);
  bool pending_seen = false;
  t.p[0]->set_callback([&](evw::Priority& w, int) {
    t.order.push_back("p0");
    take_urgent(w.fd());
    pending_seen = t.p[1]->is_pending() && t.p[2]->is_pending();
    t.p[1]->set_priority(1);  // freeze/thaw of a watcher waiting in the batch
    t.p[2]->set(t.c[2].second.get());
  });
  t.fire();
  t.loop.run(evw::Run::Once);
  for (int i = 0; i < 3; ++i) t.loop.run(evw::Run::NoWait);
  CHECK(pending_seen);
  CHECK(t.order == std::vector<std::string>{"p0", "p1", "p2"});
}

TEST_CASE("inside a batch, stop(), clear_pending() and destruction of later watchers take effect") {
  Three t(2, 0, -1);
  int cleared = 0;
  t.p[0]->set_callback([&](evw::Priority& w, int) {
    t.order.push_back("p0");
    take_urgent(w.fd());
    t.p[1]->stop();
    cleared = t.p[2]->clear_pending();
    take_urgent(t.c[2].second.get());  // or the level-triggered condition fires again
  });
  t.fire();
  t.loop.run(evw::Run::Once);
  CHECK_FALSE(t.p[2]->is_pending());
  t.loop.run(evw::Run::NoWait);
  CHECK(cleared == evw::Event::Pri);
  CHECK(t.order == std::vector<std::string>{"p0"});
  take_urgent(t.c[1].second.get());
}

TEST_CASE("an event fed inside a batch at higher priority overtakes the rest of the batch") {
  Three t(2, 0, -1);
  evw::Timer high(t.loop, 100.0, 0.0, [&](evw::Timer&, int) { t.order.push_back("timer"); });
  high.set_priority(1);
  t.p[0]->set_callback([&](evw::Priority& w, int) {
    t.order.push_back("p0");
    take_urgent(w.fd());
    high.feed(evw::Event::Timer);
    t.p[2]->feed(evw::Event::Pri);  // already waiting: still delivered once
  });
  t.fire();
  t.loop.run(evw::Run::Once);
  for (int i = 0; i < 3; ++i) t.loop.run(evw::Run::NoWait);
  CHECK(t.order == std::vector<std::string>{"p0", "timer", "p1", "p2"});
}

TEST_CASE("a nested run() inside a batch delivers each ready watcher once") {
  Three t(2, 0, -1);
  t.p[0]->set_callback([&](evw::Priority& w, int) {
    t.order.push_back("p0");
    take_urgent(w.fd());
    t.loop.run(evw::Run::NoWait);
  });
  t.fire();
  t.loop.run(evw::Run::Once);
  for (int i = 0; i < 3; ++i) t.loop.run(evw::Run::NoWait);
  CHECK(t.order == std::vector<std::string>{"p0", "p1", "p2"});
}

TEST_CASE("an exception inside a batch keeps the rest for the next run()") {
  Three t(2, 0, -1);
  t.p[0]->set_callback([&](evw::Priority& w, int) {
    t.order.push_back("p0");
    take_urgent(w.fd());
    throw std::runtime_error("first");
  });
  t.fire();
  CHECK_THROWS_AS(t.loop.run(evw::Run::Once), std::runtime_error);
  CHECK(t.order == std::vector<std::string>{"p0"});
  CHECK(t.p[1]->is_pending());
  t.loop.run(evw::Run::NoWait);
  t.loop.run(evw::Run::NoWait);
  CHECK(t.order == std::vector<std::string>{"p0", "p1", "p2"});
}

// The same guarantees on the lazy path: one priority in the table and one
// watcher per fd, where records are looked up as they are delivered. The
// order among equal priorities is not specified, so the first watcher called
// acts on the two others, whichever they are.
namespace {
struct Same : Three {
  int first = -1;
  int calls[3] = {0, 0, 0};
  Same() : Three(0, 0, 0) {}
  // Replace every callback: count, clear the condition, and let the first
  // one called run act(i, j, k) with j, k the two others.
  template <class F>
  void on_first(F act) {
    for (int i = 0; i < 3; ++i)
      p[i]->set_callback([this, i, act](evw::Priority& w, int) {
        ++calls[i];
        order.push_back("p" + std::to_string(i));
        take_urgent(w.fd());
        if (first < 0) {
          first = i;
          act(i, (i + 1) % 3, (i + 2) % 3);
        }
      });
  }
  int total() const { return calls[0] + calls[1] + calls[2]; }
};
}  // namespace

TEST_CASE("lazy batch: later watchers are pending") {
  Same t;
  bool pending_seen = false;
  t.on_first([&](int, int j, int k) { pending_seen = t.p[j]->is_pending() && t.p[k]->is_pending(); });
  t.fire();
  t.loop.run(evw::Run::Once);
  CHECK(pending_seen);
  CHECK(t.total() == 3);
}

TEST_CASE("lazy batch: later watchers keep their event through set(), lose it to clear_pending()") {
  Same t;
  int cleared = 0;
  int kept = -1, dropped = -1;
  t.on_first([&](int, int j, int k) {
    kept = j, dropped = k;
    t.p[j]->set(t.c[j].second.get());  // freeze/thaw while waiting in the batch
    cleared = t.p[k]->clear_pending();
    take_urgent(t.c[k].second.get());  // or the level-triggered condition fires again
  });
  t.fire();
  t.loop.run(evw::Run::Once);
  REQUIRE(kept >= 0);
  CHECK(t.calls[kept] == 1);  // in the same iteration: the event was kept, not found again
  for (int i = 0; i < 3; ++i) t.loop.run(evw::Run::NoWait);
  CHECK(cleared == evw::Event::Pri);
  CHECK(t.calls[kept] == 1);
  CHECK(t.calls[dropped] == 0);
  CHECK(t.total() == 2);
}

TEST_CASE("lazy batch: stopping or destroying later watchers in a callback is safe and takes effect") {
  Same t;
  t.on_first([&](int, int j, int k) {
    t.p[j]->stop();
    t.p[k].reset();
  });
  t.fire();
  t.loop.run(evw::Run::Once);
  t.loop.run(evw::Run::NoWait);
  CHECK(t.total() == 1);
  for (auto& pair : t.c) take_urgent(pair.second.get());
}

TEST_CASE("lazy batch: a watcher started on a pending watcher's fd does not take its event") {
  Same t;
  int k_fd = -1, extra_calls = 0, k_index = -1;
  std::unique_ptr<evw::Priority> extra;
  t.on_first([&](int, int, int k) {
    k_index = k;
    k_fd = t.c[k].second.get();
    extra = std::make_unique<evw::Priority>(t.loop, k_fd, [&](evw::Priority&, int) { ++extra_calls; });
    extra->start();  // a second watcher on k's fd: new kernel registration tag
  });
  t.fire();
  t.loop.run(evw::Run::Once);
  REQUIRE(k_index >= 0);
  CHECK(t.calls[k_index] == 1);  // delivered in the same iteration, not lost
  CHECK(t.total() == 3);
}

TEST_CASE("lazy batch: a fed higher-priority event overtakes the rest") {
  Same t;
  evw::Timer high(t.loop, 100.0, 0.0, [&](evw::Timer&, int) { t.order.push_back("timer"); });
  high.set_priority(1);
  t.on_first([&](int, int, int) { high.feed(evw::Event::Timer); });
  t.fire();
  t.loop.run(evw::Run::Once);
  for (int i = 0; i < 3; ++i) t.loop.run(evw::Run::NoWait);
  CHECK(t.total() == 3);
  // The timer ran after the first watcher and before the two others.
  REQUIRE(t.order.size() == 4);
  CHECK(t.order[0] == "p" + std::to_string(t.first));
  CHECK(t.order[1] == "timer");
}

TEST_CASE("lazy batch: a nested run() delivers each ready watcher once") {
  Same t;
  t.on_first([&](int, int, int) { t.loop.run(evw::Run::NoWait); });
  t.fire();
  t.loop.run(evw::Run::Once);
  for (int i = 0; i < 3; ++i) t.loop.run(evw::Run::NoWait);
  CHECK(t.calls[0] == 1);
  CHECK(t.calls[1] == 1);
  CHECK(t.calls[2] == 1);
}

TEST_CASE("lazy batch: an exception keeps the rest for the next run()") {
  Same t;
  int pending_after = 0;
  t.on_first([&](int, int, int) { throw std::runtime_error("first"); });
  t.fire();
  CHECK_THROWS_AS(t.loop.run(evw::Run::Once), std::runtime_error);
  CHECK(t.total() == 1);
  for (int i = 0; i < 3; ++i) pending_after += t.p[i]->is_pending() ? 1 : 0;
  CHECK(pending_after == 2);
  t.loop.run(evw::Run::NoWait);
  t.loop.run(evw::Run::NoWait);
  CHECK(t.calls[0] == 1);
  CHECK(t.calls[1] == 1);
  CHECK(t.calls[2] == 1);
}

TEST_CASE("a loop-owned Priority active when its loop is destroyed is destroyed with it") {
  auto [client, server] = evw_test::tcp_pair();
  auto loop = std::make_unique<evw::Loop>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> alive = token;
  loop->add<evw::Priority>(server.get(), [token](evw::Priority&, int) {}).start();
  urgent(client.get());
  settle();
  token.reset();
  REQUIRE_FALSE(alive.expired());  // held by the watcher's callback
  loop.reset();
  CHECK(alive.expired());
  CHECK(take_urgent(server.get()) == '!');  // never delivered
}

TEST_CASE("Priority user data is kept and reachable from its callback") {
  evw::Loop loop;
  auto [client, server] = evw_test::tcp_pair();
  std::string got;
  evw::Priority p(loop, server.get(), [&](evw::Priority& w, int) {
    got = std::any_cast<std::string>(w.data());
    take_urgent(w.fd());
    w.stop();
  });
  CHECK_FALSE(p.data().has_value());
  p.data() = std::string("urgent");
  p.set_priority(1);  // reconfiguration keeps it
  p.start();
  urgent(client.get());
  CHECK(run_until(loop, [&] { return !got.empty(); }));
  CHECK(got == "urgent");
}
