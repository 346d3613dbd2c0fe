// Child's pidfd form: real forked children watched from loops other than the
// default one — exit statuses and signal deaths, other children left unreaped,
// two loops in one thread and two loops in two threads at once, a zombie
// before start, set(), the rules (pid 0, trace, not our child, no such pid),
// priorities, and co_await evw::child_exit(loop, pid) on both kinds of loop.
// (A separate file from test_child.cpp, which covers the default loop's form.)
#include <evw/watchers/child.hpp>
#include <evw/coro/coro.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "kernel_support.hpp"
#include "support.hpp"

using evw_test::Kid;
using evw_test::run_until;

#define REQUIRE_PIDFD()                                                                   \
  if (::syscall(SYS_pidfd_open, ::getpid(), 0) < 0 && errno == ENOSYS)                    \
  EVW_SKIP("this kernel has no pidfd_open (Linux 5.3)")

namespace {

// Reaps pid if it is still there (a test that failed half-way).
void reap(pid_t pid) {
  if (pid > 0) ::waitpid(pid, nullptr, WNOHANG);
}

}  // namespace

TEST_CASE("Child on a non-default loop reports its child's exit status through a pidfd") {
  REQUIRE_PIDFD();
  evw::Loop loop;
  Kid kid([] { ::_exit(7); });
  int calls = 0, last = 0;
  evw::Child child(loop, kid.pid(), [&](evw::Child& w, int revents) {
    ++calls;
    last = revents;
    CHECK_FALSE(w.is_active());  // the pid is gone: the pidfd form stops itself
  });
  CHECK(child.uses_pidfd());
  CHECK(child.priority() == evw::max_priority);
  child.start();
  CHECK(child.is_active());
  kid.release();
  CHECK(run_until(loop, [&] { return calls == 1; }, 5.0));
  CHECK(last == evw::Event::Child);
  CHECK(child.rpid() == kid.pid());
  REQUIRE(WIFEXITED(child.rstatus()));
  CHECK(WEXITSTATUS(child.rstatus()) == 7);
  CHECK_FALSE(child.error());
  CHECK(::waitpid(kid.pid(), nullptr, WNOHANG) < 0);  // reaped by the watcher
  CHECK_FALSE(loop.run(evw::Run::NoWait));            // nothing left active
}

// What the default loop's waitpid(-1, ...) does to a pidfd Child's child
// while it runs (child.hpp's caveat), done here by hand: the child is reaped
// behind the watcher's back. Its pidfd still becomes readable; waitid says
// ECHILD; the watcher stops itself and calls back once with Event::Error,
// error() ECHILD and rpid() the pid, with no status; nothing spins.
TEST_CASE("Child pidfd: a child reaped by someone else first gives Event::Error (ECHILD) once") {
  REQUIRE_PIDFD();
  evw::Loop loop;
  Kid kid([] { ::_exit(5); });
  std::vector<int> got;
  evw::Child child(loop, kid.pid(), [&](evw::Child&, int revents) { got.push_back(revents); });
  child.start();
  kid.release();
  int status = 0;
  REQUIRE(::waitpid(kid.pid(), &status, 0) == kid.pid());  // the status goes to this waitpid
  CHECK(WEXITSTATUS(status) == 5);
  CHECK(run_until(loop, [&] { return !got.empty(); }, 5.0));
  CHECK(got == std::vector<int>{evw::Event::Error});
  CHECK(child.error() == std::error_code(ECHILD, std::generic_category()));
  CHECK(child.rpid() == kid.pid());
  CHECK(child.rstatus() == 0);
  CHECK_FALSE(child.is_active());
  CHECK_FALSE(loop.run(evw::Run::NoWait));  // stopped: nothing left to spin on
  CHECK(got.size() == 1);
  // A restart finds no child to open a pidfd for (the pid is gone or not ours).
  CHECK_THROWS_AS(child.start(), std::system_error);
}

TEST_CASE("Child pidfd: a signal death; the process's other children are left alone") {
  REQUIRE_PIDFD();
  evw::Loop loop;
  Kid watched([] { ::pause(); });
  Kid other([] { ::_exit(3); });
  int calls = 0;
  evw::Child child(loop, watched.pid(), [&](evw::Child&, int) { ++calls; });
  child.start();
  other.release();
  // The other child exits first: no callback, and it stays for its own waitpid.
  siginfo_t info{};
  REQUIRE(::waitid(P_PID, static_cast<id_t>(other.pid()), &info, WEXITED | WNOWAIT) == 0);
  loop.run(evw::Run::NoWait);
  CHECK(calls == 0);
  ::kill(watched.pid(), SIGTERM);
  CHECK(run_until(loop, [&] { return calls == 1; }, 5.0));
  REQUIRE(WIFSIGNALED(child.rstatus()));
  CHECK(WTERMSIG(child.rstatus()) == SIGTERM);
  int status = 0;
  REQUIRE(::waitpid(other.pid(), &status, 0) == other.pid());  // still ours to reap
  CHECK(WEXITSTATUS(status) == 3);
}

TEST_CASE("Child pidfd: two loops in one thread, each waiting for its own child") {
  REQUIRE_PIDFD();
  evw::Loop a, b;
  Kid ka([] { ::_exit(1); });
  Kid kb([] { ::_exit(2); });
  int got_a = -1, got_b = -1;
  evw::Child ca(a, ka.pid(), [&](evw::Child& w, int) { got_a = WEXITSTATUS(w.rstatus()); });
  evw::Child cb(b, kb.pid(), [&](evw::Child& w, int) { got_b = WEXITSTATUS(w.rstatus()); });
  ca.start();
  cb.start();
  kb.release();
  CHECK(run_until(b, [&] { return got_b >= 0; }, 5.0));
  a.run(evw::Run::NoWait);
  CHECK(got_a == -1);  // b's child was not a's business
  ka.release();
  CHECK(run_until(a, [&] { return got_a >= 0; }, 5.0));
  CHECK(got_a == 1);
  CHECK(got_b == 2);
}

TEST_CASE("Child pidfd: two loops in two threads at once") {
  REQUIRE_PIDFD();
  constexpr int kThreads = 2;
  constexpr int kChildrenEach = 3;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &failures] {
      evw::Loop loop;
      std::vector<pid_t> pids;
      std::vector<int> codes;
      std::vector<std::unique_ptr<evw::Child>> children;
      for (int i = 0; i < kChildrenEach; ++i) {
        const int code = 10 * (t + 1) + i;
        const pid_t pid = ::fork();
        if (pid == 0) {
          ::usleep(static_cast<useconds_t>(20000 * (i + 1)));
          ::_exit(code);
        }
        if (pid < 0) {
          ++failures;
          return;
        }
        pids.push_back(pid);
        children.push_back(std::make_unique<evw::Child>(loop, pid, [&codes](evw::Child& w, int revents) {
          codes.push_back(revents == evw::Event::Child && WIFEXITED(w.rstatus()) ? WEXITSTATUS(w.rstatus()) : -1);
        }));
        children.back()->start();
      }
      bool expired = false;
      evw::Timer guard(loop, 5.0, 0.0, [&](evw::Timer&, int) { expired = true; });
      guard.start();
      while (codes.size() < pids.size() && !expired) loop.run(evw::Run::Once);
      // Children exiting in one iteration are delivered in libev's fd order: compare as sets.
      std::vector<int> want;
      for (int i = 0; i < kChildrenEach; ++i) want.push_back(10 * (t + 1) + i);
      std::sort(codes.begin(), codes.end());
      if (codes != want) {
        ++failures;
        std::string got;
        for (int c : codes) got += std::to_string(c) + " ";
        std::fprintf(stderr, "thread %d: exit codes %s(expired: %d)\n", t, got.c_str(), expired ? 1 : 0);
      }
      for (pid_t pid : pids) reap(pid);
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
}

TEST_CASE("Child pidfd: a child that exited before start() is reported at once") {
  REQUIRE_PIDFD();
  evw::Loop loop;
  Kid kid([] { ::_exit(5); });
  kid.release();
  siginfo_t info{};
  REQUIRE(::waitid(P_PID, static_cast<id_t>(kid.pid()), &info, WEXITED | WNOWAIT) == 0);  // a zombie now
  int calls = 0;
  evw::Child child(loop, kid.pid(), [&](evw::Child&, int) { ++calls; });
  child.start();
  CHECK(run_until(loop, [&] { return calls == 1; }));
  CHECK(WEXITSTATUS(child.rstatus()) == 5);
}

TEST_CASE("Child pidfd: set() to another child keeps a pending event; set_priority's rule holds") {
  REQUIRE_PIDFD();
  evw::Loop loop;
  Kid first([] { ::_exit(4); });
  Kid second([] { ::_exit(6); });
  std::vector<int> pids;
  evw::Child child(loop, first.pid(), [&](evw::Child& w, int revents) {
    if (revents == evw::Event::Child && w.rpid() > 0) pids.push_back(w.rpid());
  });
  child.start();
  child.feed(evw::Event::Custom);
  child.set(second.pid());
  CHECK(child.is_active());
  CHECK(child.is_pending());
  CHECK(child.pid() == second.pid());
  CHECK_THROWS_AS(child.set_priority(0), std::invalid_argument);
  CHECK_THROWS_AS(child.set(0), std::logic_error);
  CHECK_THROWS_AS(child.set(second.pid(), true), std::logic_error);
  CHECK(child.pid() == second.pid());
  first.release();
  second.release();
  CHECK(run_until(loop, [&] { return !pids.empty(); }, 5.0));
  CHECK(pids == std::vector<int>{second.pid()});
  int status = 0;
  REQUIRE(::waitpid(first.pid(), &status, 0) == first.pid());  // the old pid was let go
  CHECK(WEXITSTATUS(status) == 4);
}

TEST_CASE("Child pidfd: the rules — pid 0 and trace need the default loop; a stranger or no process throws") {
  REQUIRE_PIDFD();
  evw::Loop loop;
  auto cb = [](evw::Child&, int) {};
  CHECK_THROWS_AS(evw::Child(loop, 0, cb), std::logic_error);
  CHECK_THROWS_AS(evw::Child(loop, 1, true, cb), std::logic_error);
  CHECK(loop.watcher_count() == 0);
  evw::Child init(loop, 1, cb);  // pid 1 exists but is not our child
  try {
    init.start();
    FAIL("a process that is not our child was watched");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::no_child_process);
    CHECK(std::string(e.what()).find("not a child of this process") != std::string::npos);
  }
  CHECK_FALSE(init.is_active());
  Kid kid([] {});
  kid.release();
  REQUIRE(::waitpid(kid.pid(), nullptr, 0) == kid.pid());  // gone for good
  evw::Child gone(loop, kid.pid(), cb);
  try {
    gone.start();
    FAIL("a reaped pid was watched");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::no_such_process);
  }
  const int fds = evw_test::open_fd_count();
  CHECK_THROWS(gone.start());
  CHECK(evw_test::open_fd_count() == fds);  // no pidfd left behind
}

TEST_CASE("Child pidfd: destroyed in its own callback; the child_exit awaitable on both kinds of loop") {
  REQUIRE_PIDFD();
  evw::Loop loop;
  {
    Kid kid([] { ::_exit(9); });
    std::unique_ptr<evw::Child> self;
    int seen = 0;
    self = std::make_unique<evw::Child>(loop, kid.pid(), [&](evw::Child& w, int) {
      seen = WEXITSTATUS(w.rstatus());
      self.reset();
    });
    self->start();
    kid.release();
    CHECK(run_until(loop, [&] { return self == nullptr; }, 5.0));
    CHECK(seen == 9);
  }
  for (evw::Loop* l : {&loop, &evw::Loop::default_loop()}) {
    CAPTURE(l->is_default());
    Kid kid([] { ::_exit(12); });
    int status = -1;
    auto wait = [&](evw::Loop& on, pid_t pid) -> evw::Task<void> { status = co_await evw::child_exit(on, pid); };
    evw::spawn(*l, wait(*l, kid.pid()));
    l->run(evw::Run::NoWait);
    kid.release();
    CHECK(run_until(*l, [&] { return status >= 0; }, 5.0));
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 12);
  }
  CHECK_THROWS_AS((void)evw::child_exit(loop, 0), std::invalid_argument);
  // A stranger: the error comes out of co_await.
  bool threw = false;
  auto stranger = [&]() -> evw::Task<void> {
    try {
      (void)co_await evw::child_exit(loop, 1);
    } catch (const std::system_error& e) {
      threw = e.code() == std::errc::no_child_process;
    }
  };
  evw::spawn(loop, stranger());
  loop.run(evw::Run::NoWait);
  CHECK(threw);
}

TEST_CASE("a moved Child of the pidfd form keeps its pidfd and reports the exit from the new object") {
  REQUIRE_PIDFD();
  evw::Loop loop;
  Kid kid([] { ::_exit(5); });
  int calls = 0;
  evw::Child a(loop, kid.pid(), [&](evw::Child&, int) { ++calls; });
  a.start();
  evw::Child b(std::move(a));
  CHECK(b.uses_pidfd());
  CHECK(b.is_active());
  CHECK_FALSE(a.is_active());
  kid.release();
  CHECK(run_until(loop, [&] { return calls == 1; }, 5.0));
  REQUIRE(WIFEXITED(b.rstatus()));
  CHECK(WEXITSTATUS(b.rstatus()) == 5);
  CHECK_FALSE(b.error());
}
