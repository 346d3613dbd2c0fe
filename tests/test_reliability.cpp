// Reliability under abuse: descriptors closed (and reused) under active
// watchers, descriptor exhaustion (RLIMIT_NOFILE), a flood of signals from
// another process, fork() with a loop in use, and garbage written to every
// file of gpio-sim. Whatever the outcome, the process must not crash or
// abort, no event may reach a watcher of another descriptor, and everything
// must work again once the abuse stops.
//
// Cases that could abort (libev calls abort() when it cannot create its
// wakeup descriptor) run in a forked child, whose death by a signal is a
// failure here. A child reports through a pipe and its exit status; it leaves
// with _exit(), so nothing of the parent (a gpio-sim mount) is torn down twice.
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "../tools/gpio-sim/gpio_sim.hpp"
#include "support.hpp"

using evw_test::Fd;
using evw_test::run_until;

namespace {

// ---- children ------------------------------------------------------------

struct ChildResult {
  bool exited = false;
  int status = -1;      // exit status when exited
  int signal = 0;       // the signal that killed it, if any
  bool timed_out = false;
  std::string report;   // what the child wrote
};

// Runs body() in a forked child. body returns "" for success, or what went
// wrong; an exception is a failure too. The child ends with _exit().
ChildResult in_child(const std::function<std::string()>& body, int timeout_ms = 30000) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string report;
    try {
      report = body();
    } catch (const std::exception& e) {
      report = std::string("exception: ") + e.what();
    } catch (...) {
      report = "unknown exception";
    }
    if (!report.empty()) (void)!::write(fds[1], report.data(), report.size());
    ::_exit(report.empty() ? 0 : 1);
  }
  ::close(fds[1]);
  ChildResult result;
  char buf[512];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    pollfd p{fds[0], POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;  // the child closed its end: it has exited
    result.report.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result.exited = true;
    result.status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

void check_child(const ChildResult& r) {
  INFO("child report: " << r.report);
  CHECK_FALSE(r.timed_out);
  CHECK_MESSAGE(r.signal == 0, "the child died of signal " << r.signal << " (" << ::strsignal(r.signal) << ")");
  CHECK(r.exited);
  CHECK(r.status == 0);
}

// ---- descriptors ---------------------------------------------------------

bool urgent_pending(int fd) {
  pollfd p{fd, POLLPRI, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLPRI) != 0;
}

// Sends one urgent byte and waits (bounded) until it has left the sender:
// the receiver is asked to ACK at once, else a full congestion window of
// unacknowledged urgent bytes holds the next one back for a delayed ACK.
void send_urgent(int client, int server, char c = '!') {
  const int one = 1;
  ::setsockopt(server, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
  REQUIRE(::send(client, &c, 1, MSG_OOB) == 1);
  for (int i = 0; i < 1000 && !urgent_pending(server); ++i) ::usleep(1000);
}

void take_urgent(int fd) {
  char c;
  (void)::recv(fd, &c, 1, MSG_OOB);
  char buf[64];
  while (::recv(fd, buf, sizeof buf, 0) > 0) {
  }
}

// UBSan's vptr check, on a miss in its type cache, needs a descriptor (it
// probes memory through a pipe): with none left it reports a false "invalid
// vptr". So each case first rehearses what it does under exhaustion, on
// other objects of the same types, which fills the cache.
void warm_sanitizer_type_cache() {
  try {
    throw std::system_error(EMFILE, std::generic_category(), "warm-up");
  } catch (const std::system_error& e) {
    (void)(e.code().value() == EMFILE && e.code().category() == std::generic_category());
    (void)e.what();
  }
}

// Lowers RLIMIT_NOFILE to the highest open descriptor + 1 and fills every
// free number below it, so that the next descriptor anyone asks for fails
// with EMFILE. restore() closes the fillers and puts the limit back.
class Exhaust {
 public:
  Exhaust() {
    warm_sanitizer_type_cache();
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    int highest = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
      const int own = ::dirfd(d);
      while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        const int fd = std::atoi(e->d_name);
        if (fd != own && fd > highest) highest = fd;
      }
      ::closedir(d);
    }
    rlimit lower = saved_;
    lower.rlim_cur = static_cast<rlim_t>(highest) + 1;
    ::setrlimit(RLIMIT_NOFILE, &lower);
    for (;;) {
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) break;
      fillers_.push_back(fd);
    }
    exhausted_ = errno == EMFILE;
  }
  ~Exhaust() { restore(); }
  bool exhausted() const { return exhausted_; }
  void restore() {
    for (int fd : fillers_) ::close(fd);
    fillers_.clear();
    ::setrlimit(RLIMIT_NOFILE, &saved_);
  }

 private:
  rlimit saved_{};
  std::vector<int> fillers_;
  bool exhausted_ = false;
};

// What an operation under exhaustion may do: work, or throw
// std::system_error(EMFILE). Anything else (another exception, an abort) is a
// failure. Returns "" or a description of what went wrong; `outcome` says which.
std::string works_or_emfile(const char* what, const std::function<void()>& op, std::string& outcome) {
  try {
    op();
    outcome += std::string(what) + ": worked; ";
    return "";
  } catch (const std::system_error& e) {
    if (e.code().value() == EMFILE && e.code().category() == std::generic_category()) {
      outcome += std::string(what) + ": EMFILE (\"" + e.what() + "\"); ";
      return "";
    }
    return std::string(what) + " threw system_error " + std::to_string(e.code().value()) + ": " + e.what();
  } catch (const std::exception& e) {
    return std::string(what) + " threw " + e.what();
  }
}

#define REQUIRE_GPIO_SIM()                                                             \
  if (auto why = evw::sim::GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why); \
  auto sim_ptr = evw::sim::GpioSim::in_temp_dir();                                      \
  evw::sim::GpioSim& sim = *sim_ptr

}  // namespace

// ---------------------------------------------------------------------------
// 1. A descriptor closed, or closed and reused, under active watchers.
//
// Observed (libev 4.33, Linux epoll), and what the README documents:
// - close(fd) with Io and Priority watchers still active on it: the kernel
//   drops the file from both epoll sets by itself; evw and libev still count
//   the watchers active, and they never fire again. Nothing crashes.
// - The number reused by a new socket: the old watchers stay silent for the
//   new file too (the kernel registration is gone, and neither libev nor evw
//   re-registers a number it believes registered) ...
// - ... until a watcher is started on that number: libev (EPOLL_CTL_MOD ->
//   ENOENT -> ADD) and evw's EPOLLPRI backend (the same) then register the
//   new file, and from then on every watcher of that number, old or new,
//   gets its events: watchers watch a number, not a file. Stop watchers
//   before closing their descriptor.
// - An event never reaches a watcher of another descriptor.

TEST_CASE("reliability: an fd closed and reused under active Io and Priority watchers") {
  evw::Loop loop;
  auto [client, server] = evw_test::tcp_pair();
  auto [other_client, other_server] = evw_test::tcp_pair();  // a bystander on another fd
  const int number = server.get();
  int io_old = 0, pri_old = 0, io_other = 0, pri_other = 0;
  evw::Io io(loop, number, evw::Event::Read, [&](evw::Io&, int) { ++io_old; });
  evw::Priority pri(loop, number, [&](evw::Priority&, int) { ++pri_old; });
  evw::Io io_by(loop, other_server.get(), evw::Event::Read, [&](evw::Io& w, int) {
    ++io_other;
    char buf[64];
    while (::recv(w.fd(), buf, sizeof buf, 0) > 0) {
    }
  });
  evw::Priority pri_by(loop, other_server.get(), [&](evw::Priority& w, int) {
    ++pri_other;
    take_urgent(w.fd());
  });
  io.start();
  pri.start();
  io_by.start();
  pri_by.start();
  loop.run(evw::Run::NoWait);
  REQUIRE(io_old + pri_old == 0);

  // Closed: no callback, no crash, the watchers still say they are active.
  server.reset();
  client.reset();
  for (int i = 0; i < 5; ++i) loop.run(evw::Run::NoWait);
  CHECK(io_old == 0);
  CHECK(pri_old == 0);
  CHECK(io.is_active());
  CHECK(pri.is_active());

  // Reused: a new TCP connection one of whose ends gets the number.
  Fd watched, peer;
  std::vector<Fd> spare;
  for (int tries = 0; tries < 8 && watched.get() != number; ++tries) {
    auto [c, s] = evw_test::tcp_pair();
    if (c.get() == number || s.get() == number) {
      const bool client_side = c.get() == number;
      watched = std::move(client_side ? c : s);
      peer = std::move(client_side ? s : c);
    } else {
      spare.push_back(std::move(c));
      spare.push_back(std::move(s));
    }
  }
  REQUIRE_MESSAGE(watched.get() == number, "the kernel did not hand out fd " << number << " again");
  spare.clear();
  send_urgent(peer.get(), watched.get(), 'u');
  REQUIRE(::send(peer.get(), "data", 4, 0) == 4);
  for (int i = 0; i < 5; ++i) loop.run(evw::Run::NoWait);
  MESSAGE("reused fd " << number << " before any restart: old Io called " << io_old << " times, old Priority "
                       << pri_old << " times (expected: 0, the new file is not registered)");
  CHECK(io_old == 0);
  CHECK(pri_old == 0);

  // A new watcher on the number registers the new file, for every watcher of it.
  int io_new = 0, pri_new = 0;
  evw::Io io2(loop, number, evw::Event::Read, [&](evw::Io&, int) { ++io_new; });
  evw::Priority pri2(loop, number, [&](evw::Priority&, int) { ++pri_new; });
  io2.start();
  pri2.start();
  for (int i = 0; i < 3; ++i) loop.run(evw::Run::NoWait);
  MESSAGE("after starting new watchers on fd " << number << ": new Io " << io_new << ", new Priority " << pri_new
                                               << ", old Io " << io_old << ", old Priority " << pri_old);
  CHECK(io_new == 3);   // level-triggered: the data and the urgent byte stay unread
  CHECK(pri_new == 3);
  CHECK(io_old == io_new);   // the old watchers watch the same number: they are called too
  CHECK(pri_old == pri_new);
  // The bystander saw nothing of all this, and still works.
  CHECK(io_other == 0);
  CHECK(pri_other == 0);
  send_urgent(other_client.get(), other_server.get());
  CHECK(run_until(loop, [&] { return pri_other == 1; }));
  CHECK(io_other == 0);  // the urgent byte alone is no ordinary data
  io.stop();
  pri.stop();
  io2.stop();
  pri2.stop();
  io_by.stop();
  pri_by.stop();
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

// The same mistake with a duplicate of the descriptor alive elsewhere (dup(),
// or a child process that inherited it): close() then no longer takes the
// file out of epoll, and EPOLL_CTL_DEL through the closed number cannot reach
// it. libev notices such a stale registration and rebuilds its epoll set;
// evw's EPOLLPRI backend must do the same, else with urgent data pending the
// loop spins (found here: ~200,000 iterations in 0.2 s) and a new Priority
// watcher that gets the number is called for the *old* file.
TEST_CASE("reliability: a dup'ed fd closed under a Priority watcher leaves no stale registration") {
  evw::Loop loop;
  auto [client, server] = evw_test::tcp_pair();
  auto [other_client, other_server] = evw_test::tcp_pair();
  int calls = 0;
  evw::Priority p(loop, server.get(), [&](evw::Priority&, int) { ++calls; });
  p.start();
  const int number = server.get();
  Fd dup(::dup(number));  // the file stays open through this
  server.reset();
  p.stop();  // the right order would be stop, then close: this is the mistake
  int other = 0;
  evw::Priority keep(loop, other_server.get(), [&](evw::Priority&, int) { ++other; });
  keep.start();  // keeps the backend watched
  send_urgent(client.get(), dup.get());
  evw::Timer stop_after(loop, 0.2, 0.0, [&](evw::Timer&, int) { loop.stop(); });
  stop_after.start();
  const unsigned before = loop.iteration();
  loop.run();
  const unsigned iterations = loop.iteration() - before;
  MESSAGE("0.2 s with a stale EPOLLPRI registration: " << iterations << " loop iterations");
  // A new socket that gets the closed number, watched by a new watcher.
  Fd reuse(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int wrong = 0, wrong_revents = 0;
  std::unique_ptr<evw::Priority> fresh;
  if (reuse.get() == number) {
    fresh = std::make_unique<evw::Priority>(loop, number, [&](evw::Priority&, int revents) {
      if (revents & evw::Event::Pri) ++wrong;  // an unconnected socket has no urgent data: Event::Pri is the old file's
      wrong_revents = revents;
    });
    fresh->start();
    for (int i = 0; i < 3; ++i) loop.run(evw::Run::NoWait);
    fresh->stop();
  }
  keep.stop();
  CHECK(calls == 0);
  CHECK(other == 0);
  CHECK(iterations < 1000);  // no busy loop
  INFO("revents of the new watcher: " << wrong_revents);
  CHECK(wrong == 0);  // nothing of the old file for the new watcher
}

// The same stale registration with RLIMIT_NOFILE used up: its cure, a new
// EPOLLPRI queue, needs a descriptor the process does not have. The loop used
// to spin until one was freed; a spare queue made in advance takes the
// rebuild, and the next spare gets the number the old queue frees, so a
// second stale registration is cured as well. Live watchers keep working.
TEST_CASE("reliability: a stale EPOLLPRI registration with RLIMIT_NOFILE exhausted does not spin") {
  const ChildResult r = in_child([]() -> std::string {
    evw::Loop loop;
    std::pair<Fd, Fd> live = evw_test::tcp_pair();
    int live_calls = 0;
    evw::Priority keep(loop, live.second.get(), [&](evw::Priority& w, int) {
      ++live_calls;
      take_urgent(w.fd());
    });
    keep.start();
    auto iterations_in = [&](double seconds) {
      evw::Timer stop_after(loop, seconds, 0.0, [&](evw::Timer&, int) { loop.stop(); });
      stop_after.start();
      const unsigned before = loop.iteration();
      loop.run();
      return loop.iteration() - before;
    };
    std::pair<Fd, Fd> first = evw_test::tcp_pair(), second = evw_test::tcp_pair();
    Fd first_dup(::dup(first.second.get())), second_dup(::dup(second.second.get()));
    {
      evw::Priority p(loop, first.second.get(), [](evw::Priority&, int) {});
      p.start();
      first.second.reset();  // closed under the watcher; the dup keeps the file
    }
    std::string outcome;
    {
      Exhaust exhaust;
      if (!exhaust.exhausted()) return "could not exhaust descriptors";
      send_urgent(first.first.get(), first_dup.get());
      const unsigned spin1 = iterations_in(0.1);
      outcome += "first stale: " + std::to_string(spin1) + " iterations in 0.1 s; ";
      if (spin1 >= 10) return "the loop spins on a stale registration: " + outcome;
      // Another one, still exhausted: the closed socket's number is taken again.
      {
        evw::Priority p(loop, second.second.get(), [](evw::Priority&, int) {});
        p.start();
        second.second.reset();
        const int filler = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (filler < 0 || ::open("/dev/null", O_RDONLY | O_CLOEXEC) >= 0) return "could not exhaust again";
        second.second.reset(filler);  // closed when the limit is back
      }
      send_urgent(second.first.get(), second_dup.get());
      const unsigned spin2 = iterations_in(0.1);
      outcome += "second stale: " + std::to_string(spin2) + " iterations in 0.1 s";
      if (spin2 >= 10) return "no spare for a second stale registration: " + outcome;
      send_urgent(live.first.get(), live.second.get());
      if (!run_until(loop, [&] { return live_calls == 1; })) return "a live watcher lost its event: " + outcome;
    }
    send_urgent(live.first.get(), live.second.get());
    if (!run_until(loop, [&] { return live_calls == 2; })) return "a live watcher lost its event after";
    keep.stop();
    std::printf("  %s\n", outcome.c_str());
    std::fflush(stdout);
    return "";
  });
  check_child(r);
}

// ---------------------------------------------------------------------------
// 2. Descriptor exhaustion. Each case in a child: libev aborts when it cannot
// create its wakeup descriptor, and evw must get there first.

TEST_CASE("reliability: with RLIMIT_NOFILE exhausted a Loop works or throws EMFILE and works after") {
  const ChildResult r = in_child([]() -> std::string {
    std::string outcome;
    std::unique_ptr<evw::Loop> loop;
    {
      evw::Loop rehearsal;
      evw::Timer t(rehearsal, 0.0, 0.0, [](evw::Timer&, int) {});
      t.start();
      rehearsal.run(evw::Run::Once);
    }
    {
      Exhaust exhaust;
      if (!exhaust.exhausted()) return "could not exhaust descriptors";
      if (auto e = works_or_emfile("Loop()", [&] { loop = std::make_unique<evw::Loop>(); }, outcome); !e.empty())
        return e;
      if (loop) {
        // libev falls back from epoll to poll(), which needs no descriptor.
        outcome += "backend " + std::to_string(loop->backend()) + "; ";
        int fired = 0;
        evw::Timer t(*loop, 0.0, 0.0, [&](evw::Timer&, int) { ++fired; });
        t.start();
        loop->run(evw::Run::Once);
        if (fired != 1) return "the loop made under exhaustion did not run its timer";
      }
    }
    evw::Loop after;
    int fired = 0;
    evw::Timer t(after, 0.0, 0.0, [&](evw::Timer&, int) { ++fired; });
    t.start();
    after.run();
    if (fired != 1) return "a Loop made after the limit was raised did not run";
    std::printf("  under exhaustion: %s\n", outcome.c_str());
    std::fflush(stdout);
    return "";
  });
  check_child(r);
}

TEST_CASE("reliability: with RLIMIT_NOFILE exhausted the first Priority start throws EMFILE") {
  const ChildResult r = in_child([]() -> std::string {
    std::string outcome;
    evw::Loop loop;
    auto [client, server] = evw_test::tcp_pair();
    int calls = 0;
    evw::Priority p(loop, server.get(), [&](evw::Priority& w, int) {
      ++calls;
      take_urgent(w.fd());
    });
    {
      evw::Loop rehearsal;
      evw::Priority other(rehearsal, server.get(), [](evw::Priority&, int) {});
      other.start();
      other.stop();
    }
    {
      Exhaust exhaust;
      if (!exhaust.exhausted()) return "could not exhaust descriptors";
      if (auto e = works_or_emfile("Priority::start", [&] { p.start(); }, outcome); !e.empty()) return e;
      if (!p.is_active() && loop.run(evw::Run::NoWait)) return "a failed start left something active";
    }
    p.start();
    send_urgent(client.get(), server.get());
    if (!run_until(loop, [&] { return calls == 1; })) return "Priority did not work after the limit was raised";
    std::printf("  under exhaustion: %s\n", outcome.c_str());
    std::fflush(stdout);
    return "";
  });
  check_child(r);
}

TEST_CASE("reliability: with RLIMIT_NOFILE exhausted the first Signal of a new loop throws EMFILE") {
  const ChildResult r = in_child([]() -> std::string {
    std::string outcome;
    evw::Loop loop;
    int calls = 0;
    evw::Signal s(loop, SIGUSR1, [&](evw::Signal&, int) { ++calls; });
    {
      evw::Loop rehearsal;
      evw::Signal other(rehearsal, SIGUSR1, [](evw::Signal&, int) {});
      other.start();
      other.stop();
    }
    {
      Exhaust exhaust;
      if (!exhaust.exhausted()) return "could not exhaust descriptors";
      if (auto e = works_or_emfile("Signal::start", [&] { s.start(); }, outcome); !e.empty()) return e;
      if (s.is_active()) {
        ::raise(SIGUSR1);
        loop.run(evw::Run::NoWait);
      }
    }
    s.start();
    ::raise(SIGUSR1);
    if (!run_until(loop, [&] { return calls >= 1; })) return "Signal did not work after the limit was raised";
    s.stop();
    std::printf("  under exhaustion: %s\n", outcome.c_str());
    std::fflush(stdout);
    return "";
  });
  check_child(r);
}

TEST_CASE("reliability: with RLIMIT_NOFILE exhausted an Async throws EMFILE") {
  const ChildResult r = in_child([]() -> std::string {
    std::string outcome;
    evw::Loop loop;
    int calls = 0;
    std::unique_ptr<evw::Async> a;
    {
      evw::Loop rehearsal;
      evw::Async other(rehearsal, [](evw::Async&, int) {});
      other.start();
      other.send();
      rehearsal.run(evw::Run::NoWait);
    }
    {
      Exhaust exhaust;
      if (!exhaust.exhausted()) return "could not exhaust descriptors";
      if (auto e = works_or_emfile("Async()", [&] {
            a = std::make_unique<evw::Async>(loop, [&](evw::Async&, int) { ++calls; });
          }, outcome); !e.empty())
        return e;
      if (a) a->send();  // must be safe even now
    }
    if (!a) a = std::make_unique<evw::Async>(loop, [&](evw::Async&, int) { ++calls; });
    a->start();
    a->send();
    if (!run_until(loop, [&] { return calls >= 1; })) return "Async did not work after the limit was raised";
    std::printf("  under exhaustion: %s\n", outcome.c_str());
    std::fflush(stdout);
    return "";
  });
  check_child(r);
}

TEST_CASE("reliability: with RLIMIT_NOFILE exhausted a Gpio on gpio-sim throws EMFILE") {
  REQUIRE_GPIO_SIM();  // mounted by this process, before the limit is lowered in the child
  const std::string root = sim.root();
  const ChildResult r = in_child([&root]() -> std::string {
    std::string outcome;
    evw::Loop loop;
    auto [client, server] = evw_test::tcp_pair();
    evw::Priority warm(loop, server.get(), [](evw::Priority&, int) {});
    warm.start();  // the loop's EPOLLPRI queue exists: only the Gpio's own files are missing
    std::unique_ptr<evw::Gpio> g;
    const evw::GpioConfig config{.sysfs_root = root, .edge = evw::Edge::Both};
    int calls = 0;
    // One Gpio set up and destroyed first, for the sanitizers' type cache.
    std::make_unique<evw::Gpio>(loop, 22, config, [](evw::Gpio&, int) {}).reset();
    {
      Exhaust exhaust;
      if (!exhaust.exhausted()) return "could not exhaust descriptors";
      if (auto e = works_or_emfile("Gpio()", [&] {
            g = std::make_unique<evw::Gpio>(loop, 21, config, [&](evw::Gpio&, int) { ++calls; });
          }, outcome); !e.empty())
        return e;
    }
    if (!g) g = std::make_unique<evw::Gpio>(loop, 21, config, [&](evw::Gpio&, int) { ++calls; });
    g->start();
    // The sim is served by the parent: drive the line through its control file.
    Fd level(::open((root + "/sim/gpio21").c_str(), O_WRONLY | O_CLOEXEC));
    if (level.get() < 0 || ::write(level.get(), "1", 1) != 1) return "cannot drive sim/gpio21";
    if (!run_until(loop, [&] { return calls == 1; })) return "Gpio did not work after the limit was raised";
    if (g->value() != 1) return "Gpio value() is not 1";
    warm.stop();
    g.reset();  // unexports
    std::printf("  under exhaustion: %s\n", outcome.c_str());
    std::fflush(stdout);
    return "";
  });
  check_child(r);
}

// ---------------------------------------------------------------------------
// 3. A flood of signals from another process.

namespace {
void marker_handler(int) {}

// libev keeps a process-wide "signal received" flag that outlives watchers and
// loops: a signal an earlier test raised and never dispatched would reach this
// test's watcher (a phantom SIGUSR2 would end it at once). Flush them first.
void flush_signal_flags() {
  evw::Loop flush;
  evw::Signal a(flush, SIGUSR1, [](evw::Signal&, int) {});
  evw::Signal b(flush, SIGUSR2, [](evw::Signal&, int) {});
  a.start();
  b.start();
  ::raise(SIGUSR1);
  ::raise(SIGUSR2);
  flush.run(evw::Run::NoWait);
}
}  // namespace

TEST_CASE("reliability: 100k SIGUSR1 from another process; the loop survives and coalesces") {
  constexpr int kSignals = 100000;
  flush_signal_flags();
  // A disposition of our own, to see that evw puts it back.
  struct sigaction marker {}, saved1{}, saved2{};
  marker.sa_handler = marker_handler;
  ::sigemptyset(&marker.sa_mask);
  ::sigaction(SIGUSR1, &marker, &saved1);
  ::sigaction(SIGUSR2, &marker, &saved2);
  {
    evw::Loop loop;
    long usr1 = 0, ticks = 0;
    bool done = false;
    evw::Signal s1(loop, SIGUSR1, [&](evw::Signal&, int) { ++usr1; });
    evw::Signal s2(loop, SIGUSR2, [&](evw::Signal&, int) { done = true; });  // the child's last signal
    evw::Timer tick(loop, 0.001, 0.001, [&](evw::Timer&, int) { ++ticks; });
    s1.start();
    s2.start();
    tick.start();
    std::fflush(nullptr);
    const auto t0 = std::chrono::steady_clock::now();
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      for (int i = 0; i < kSignals; ++i) ::kill(parent, SIGUSR1);
      ::kill(parent, SIGUSR2);
      ::_exit(0);
    }
    const bool finished = run_until(loop, [&] { return done; }, 60.0);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(finished);
    CHECK(WIFEXITED(status));
    CHECK(usr1 >= 1);
    CHECK(usr1 <= kSignals);
    MESSAGE(kSignals << " SIGUSR1 sent by another process gave " << usr1 << " callbacks (coalesced "
                     << (usr1 > 0 ? kSignals / usr1 : 0) << ":1) in " << seconds << " s; timer ticks meanwhile: "
                     << ticks);
    // The loop is still fine.
    int fired = 0;
    evw::Timer once(loop, 0.0, 0.0, [&](evw::Timer&, int) { ++fired; });
    once.start();
    loop.run(evw::Run::Once);
    CHECK(fired == 1);
    s1.stop();
    s2.stop();
    tick.stop();
    struct sigaction now {};
    ::sigaction(SIGUSR1, nullptr, &now);
    CHECK((now.sa_handler == marker_handler));
    ::sigaction(SIGUSR2, nullptr, &now);
    CHECK((now.sa_handler == marker_handler));
  }
  ::sigaction(SIGUSR1, &saved1, nullptr);
  ::sigaction(SIGUSR2, &saved2, nullptr);
}

// ---------------------------------------------------------------------------
// 4. fork(): the child goes on with the loop, the parent is not disturbed.

TEST_CASE("reliability: after fork and loop.fork the child keeps using Io Timer and Priority") {
  evw::Loop loop;
  // Plain references, not structured bindings: lambdas capture them (clang < 16 refuses bindings).
  auto a_pair = evw_test::socket_pair();  // the child's Io
  auto b_pair = evw_test::socket_pair();  // the parent's Io
  auto t1_pair = evw_test::tcp_pair();    // the child's Priority
  auto t2_pair = evw_test::tcp_pair();    // the parent's Priority
  auto &a_here = a_pair.first, &a_there = a_pair.second;
  auto &b_here = b_pair.first, &b_there = b_pair.second;
  auto &t1_client = t1_pair.first, &t1_server = t1_pair.second;
  auto &t2_client = t2_pair.first, &t2_server = t2_pair.second;
  int io_a = 0, io_b = 0, pri_1 = 0, pri_2 = 0, ticks = 0;
  evw::Io ia(loop, a_here.get(), evw::Event::Read, [&](evw::Io& w, int) {
    ++io_a;
    char buf[16];
    while (::read(w.fd(), buf, sizeof buf) > 0) {
    }
  });
  evw::Io ib(loop, b_here.get(), evw::Event::Read, [&](evw::Io& w, int) {
    ++io_b;
    char buf[16];
    while (::read(w.fd(), buf, sizeof buf) > 0) {
    }
  });
  evw::Priority p1(loop, t1_server.get(), [&](evw::Priority& w, int) {
    ++pri_1;
    take_urgent(w.fd());
  });
  evw::Priority p2(loop, t2_server.get(), [&](evw::Priority& w, int) {
    ++pri_2;
    take_urgent(w.fd());
  });
  evw::Timer tick(loop, 0.005, 0.005, [&](evw::Timer&, int) { ++ticks; });
  ia.start();
  ib.start();
  p1.start();
  p2.start();
  tick.start();
  loop.run(evw::Run::NoWait);
  int ready[2];
  REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
  Fd ready_r(ready[0]), ready_w(ready[1]);

  const ChildResult r = in_child([&]() -> std::string {
    loop.fork();
    // The parent's watchers are not ours: stopping them must not touch the parent.
    ib.stop();
    p2.stop();
    loop.run(evw::Run::NoWait);  // libev rebuilds its own epoll set here
    if (::write(ready_w.get(), "r", 1) != 1) return "cannot tell the parent";
    if (::write(a_there.get(), "x", 1) != 1) return "write";
    send_urgent(t1_client.get(), t1_server.get());
    const int ticks_before = ticks;
    if (!run_until(loop, [&] { return io_a == 1 && pri_1 == 1 && ticks > ticks_before + 2; }, 5.0))
      return "child: Io " + std::to_string(io_a) + ", Priority " + std::to_string(pri_1) + ", ticks " +
             std::to_string(ticks - ticks_before);
    if (io_b != 0 || pri_2 != 0) return "child got the parent's events";
    return "";
  });
  // in_child() returns once the child is done; the parent's part comes after.
  // The child stopped its copies of the parent's watchers: after loop.fork()
  // that touched only the child's own kernel queues.
  check_child(r);
  char c;
  REQUIRE(::read(ready_r.get(), &c, 1) == 1);
  ia.stop();
  p1.stop();
  CHECK(::write(b_there.get(), "y", 1) == 1);
  send_urgent(t2_client.get(), t2_server.get());
  CHECK(run_until(loop, [&] { return io_b == 1 && pri_2 == 1; }));
  CHECK(io_a == 0);
  CHECK(pri_1 == 0);
  ib.stop();
  p2.stop();
  tick.stop();
}

TEST_CASE("reliability: after fork and loop.fork the child keeps using a Gpio on gpio-sim") {
  REQUIRE_GPIO_SIM();
  const std::string root = sim.root();
  evw::Loop loop;
  sim.set_input(23, 0);
  int calls = 0, last = -1;
  evw::Gpio g(loop, 23, evw::GpioConfig{.sysfs_root = root, .edge = evw::Edge::Both},
              [&](evw::Gpio& w, int) {
                ++calls;
                last = w.value();
              });
  g.start();
  auto [client, server] = evw_test::tcp_pair();
  int parent_pri = 0;
  evw::Priority mine(loop, server.get(), [&](evw::Priority& w, int) {
    ++parent_pri;
    take_urgent(w.fd());
  });
  mine.start();
  const ChildResult r = in_child([&]() -> std::string {
    loop.fork();
    mine.stop();  // the parent's: after loop.fork() this must not touch the parent's loop
    Fd level(::open((root + "/sim/gpio23").c_str(), O_WRONLY | O_CLOEXEC));
    if (level.get() < 0) return "cannot open sim/gpio23";
    for (int v : {1, 0, 1}) {
      const int want = calls + 1;
      const char text = static_cast<char>('0' + v);
      if (::write(level.get(), &text, 1) != 1) return "cannot drive sim/gpio23";
      if (!run_until(loop, [&] { return calls == want; }))
        return "child: no Gpio callback for level " + std::to_string(v);
      if (last != v) return "child: value() " + std::to_string(last) + " for level " + std::to_string(v);
    }
    return "";
  });
  check_child(r);
  // The parent's loop and Gpio still work (the child only ever read the file).
  CHECK(sim.input(23) == 1);
  send_urgent(client.get(), server.get());
  CHECK(run_until(loop, [&] { return parent_pri == 1; }));
  loop.run(evw::Run::NoWait);
  const int before = calls;
  sim.set_input(23, 0);
  CHECK(run_until(loop, [&] { return calls == before + 1; }));
  CHECK(g.value() == 0);
  mine.stop();
  g.stop();
}

// ---------------------------------------------------------------------------
// 5. gpio-sim under garbage: random writes to every file, checked against the
// kernel's rules, and the simulator still works after.

namespace {

// kstrtol(s, 0): an independent rendition of lib/kstrtox.c. 0, EINVAL or ERANGE.
int kstrtol_oracle(std::string_view s, long& out) {
  std::size_t i = 0;
  bool negative = false;
  if (i < s.size() && s[i] == '-') {
    negative = true;
    ++i;
  } else if (i < s.size() && s[i] == '+') {
    ++i;
  }
  const auto at = [&](std::size_t k) -> char { return k < s.size() ? s[k] : '\0'; };
  unsigned base = 10;
  if (at(i) == '0') {
    const char x = at(i + 1);
    if ((x == 'x' || x == 'X') && std::isxdigit(static_cast<unsigned char>(at(i + 2)))) {
      base = 16;
      i += 2;
    } else {
      base = 8;
    }
  }
  unsigned long long value = 0;
  bool overflow = false;
  std::size_t digits = 0;
  for (; i < s.size(); ++i, ++digits) {
    const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
    unsigned d;
    if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
    else break;
    if (d >= base) break;
    if (value > (ULLONG_MAX - d) / base) overflow = true;
    value = value * base + d;
  }
  if (overflow) return ERANGE;
  if (digits == 0) return EINVAL;
  if (i < s.size() && s[i] == '\n') ++i;
  if (i != s.size()) return EINVAL;
  constexpr unsigned long long kMin = static_cast<unsigned long long>(LONG_MAX) + 1;  // |LONG_MIN|
  if (negative) {
    if (value > kMin) return ERANGE;
    out = value == kMin ? LONG_MIN : -static_cast<long>(value);
  } else {
    if (value > static_cast<unsigned long long>(LONG_MAX)) return ERANGE;
    out = static_cast<long>(value);
  }
  return 0;
}

bool word_is(std::string_view s, std::string_view word) {
  return s == word || (s.size() == word.size() + 1 && s.back() == '\n' && s.substr(0, word.size()) == word);
}

enum class File { Export, Unexport, SimLine, Direction, Edge, Value, ActiveLow, ChipRO };

// What the kernel says to `text` (as the store sees it: the first page, up to
// a NUL). `ok` lists what a valid text may get (the line's state decides).
struct Verdict {
  int error;                 // the errno garbage must get; 0 if the text is valid
  std::vector<int> ok;       // outcomes allowed for a valid text
};

Verdict judge(File file, std::string_view text, unsigned lines, bool is_output) {
  long n = 0;
  switch (file) {
    case File::Export:
    case File::Unexport: {
      if (int e = kstrtol_oracle(text, n)) return {e, {}};
      if (n < 0 || n >= static_cast<long>(lines)) return {EINVAL, {}};
      return {0, file == File::Export ? std::vector<int>{0, EBUSY} : std::vector<int>{0, EINVAL}};
    }
    case File::SimLine:
      return word_is(text, "0") || word_is(text, "1") ? Verdict{0, {0}} : Verdict{EINVAL, {}};
    case File::Direction:
      for (const char* w : {"in", "out", "high", "low"})
        if (word_is(text, w)) return {0, {0, EIO}};
      return {EINVAL, {}};
    case File::Edge:
      for (const char* w : {"none", "rising", "falling", "both"})
        if (word_is(text, w)) return {0, {0, EIO}};
      return {EINVAL, {}};
    case File::Value:
      if (!is_output) return {EPERM, {}};  // checked before the text
      if (int e = kstrtol_oracle(text, n)) return {e, {}};
      return {0, {0}};
    case File::ActiveLow:
      if (int e = kstrtol_oracle(text, n)) return {e, {}};
      return {0, {0}};
    case File::ChipRO: return {EACCES, {}};
  }
  return {EINVAL, {}};
}

std::string random_text(std::mt19937_64& rng, File file) {
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  static const char* const words[] = {"in", "out", "high", "low", "none", "rising", "falling", "both", "0", "1"};
  switch (pick(9)) {
    case 0: {  // random bytes, any length up to 64 (0: an empty write)
      std::string s(pick(65), '\0');
      for (char& c : s) c = static_cast<char>(rng());
      return s;
    }
    case 1: {  // huge numbers
      std::string s = pick(3) == 0 ? "-" : pick(2) ? "" : "+";
      if (pick(3) == 0) s += "0x";
      const std::size_t digits = 19 + pick(40);
      for (std::size_t i = 0; i < digits; ++i) s += static_cast<char>('1' + pick(9));
      if (pick(2)) s += '\n';
      return s;
    }
    case 2: {  // numbers at the edges of long
      static const char* const edges[] = {"9223372036854775807", "9223372036854775808", "-9223372036854775808",
                                          "-9223372036854775809", "18446744073709551615", "18446744073709551616",
                                          "0x7fffffffffffffff", "0x8000000000000000", "-0x8000000000000000",
                                          "077777777777777777777", "01777777777777777777777", "-0", "+0", "0x"};
      return edges[pick(sizeof edges / sizeof edges[0])];
    }
    case 3: {  // almost a word
      std::string s = words[pick(10)];
      switch (pick(6)) {
        case 0: s = " " + s; break;
        case 1: s += " "; break;
        case 2: s += "\n\n"; break;
        case 3: s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0]))); break;
        case 4: s.pop_back(); break;
        default: s += "x"; break;
      }
      return s;
    }
    case 4: {  // a word with a NUL and junk after it (the store stops at the NUL)
      std::string s = words[pick(10)];
      s += '\0';
      s += "junk";
      return s;
    }
    case 5: {  // longer than a page: the store sees 4096 bytes
      std::string s(4096 + pick(4096), 'z');
      if (pick(2)) s.replace(0, 2, "1\n");
      return s;
    }
    case 6: return std::string(1, static_cast<char>(rng()));
    case 7: {  // a valid value for the file, now and then, so that the state moves
      switch (file) {
        case File::Direction: return pick(3) ? "in" : words[1 + pick(3)];
        case File::Edge: return words[4 + pick(4)];
        case File::SimLine: case File::Value: case File::ActiveLow: return words[8 + pick(2)];
        default: return std::to_string(pick(70));
      }
    }
    default: {  // a number written in some base
      const long v = static_cast<long>(rng() % 200) - 50;
      char buf[32];
      std::snprintf(buf, sizeof buf, pick(3) == 0 ? "%lo" : pick(2) ? "%ld" : "0x%lx", v);
      return buf;
    }
  }
}

bool dir_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string slurp(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return "";
  char buf[64];
  const ssize_t n = ::read(fd.get(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

}  // namespace

TEST_CASE("reliability: random garbage written to every gpio-sim file gets kernel errors only") {
  REQUIRE_GPIO_SIM();
  const std::string root = sim.root();
  const unsigned lines = sim.line_count();
  constexpr int kLine = 7;
  std::random_device rd;
  std::uint64_t seed = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  if (const char* v = std::getenv("EVW_SEED"); v != nullptr && *v != '\0') seed = std::strtoull(v, nullptr, 0);
  MESSAGE("gpio-sim garbage: seed " << seed << " (replay: EVW_SEED=" << seed << ")");
  std::mt19937_64 rng(seed);
  int writes = 0, rejected = 0, accepted = 0, empty = 0, partial = 0;
  for (int i = 0; i < 4000; ++i) {
    const auto file = static_cast<File>(rng() % 8);
    std::string path;
    switch (file) {
      case File::Export: path = root + "/export"; break;
      case File::Unexport: path = root + "/unexport"; break;
      case File::SimLine: path = root + "/sim/gpio" + std::to_string(rng() % lines); break;
      case File::ChipRO: {
        static const char* const names[] = {"base", "ngpio", "label"};
        path = root + "/gpiochip0/" + names[rng() % 3];
        break;
      }
      default: {
        // The line's files exist only while it is exported.
        if (!dir_exists(root + "/gpio" + std::to_string(kLine))) {
          Fd e(::open((root + "/export").c_str(), O_WRONLY | O_CLOEXEC));
          REQUIRE(e.get() >= 0);
          REQUIRE(::write(e.get(), "7", 1) == 1);
        }
        static const char* const names[] = {"direction", "edge", "value", "active_low"};
        path = root + "/gpio7/" + names[static_cast<int>(file) - static_cast<int>(File::Direction)];
        break;
      }
    }
    const std::string text = random_text(rng, file);
    CAPTURE(path);
    CAPTURE(text);
    Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (file == File::ChipRO) {
      CHECK(fd.get() < 0);
      CHECK(errno == EACCES);
      ++writes;
      ++rejected;
      continue;
    }
    REQUIRE_MESSAGE(fd.get() >= 0, path << ": " << std::strerror(errno));
    // A word split over two writes is two stores, each judged alone.
    std::vector<std::string> parts{text};
    if (text.size() >= 2 && rng() % 6 == 0) {
      const std::size_t cut = 1 + rng() % (text.size() - 1);
      parts = {text.substr(0, cut), text.substr(cut)};
      ++partial;
    }
    for (const std::string& part : parts) {
      const bool is_output_now = slurp(root + "/gpio7/direction") == "out\n";
      std::string_view seen(part.data(), std::min<std::size_t>(part.size(), 4096));
      seen = seen.substr(0, seen.find('\0'));
      const Verdict v = judge(file, seen, lines, is_output_now);
      // sysfs ignores the offset: a pwrite at some offset is the same store.
      const ssize_t n = rng() % 4 == 0 ? ::pwrite(fd.get(), part.data(), part.size(), static_cast<off_t>(rng() % 9000))
                                       : ::write(fd.get(), part.data(), part.size());
      const int err = n < 0 ? errno : 0;
      ++writes;
      if (part.empty()) {  // an empty write never reaches the store
        CHECK(n == 0);
        ++empty;
        continue;
      }
      if (v.error != 0) {
        CHECK_MESSAGE(n < 0, "garbage was accepted");
        CHECK(err == v.error);
        ++rejected;
      } else {
        const bool allowed = std::find(v.ok.begin(), v.ok.end(), err) != v.ok.end();
        CHECK_MESSAGE(allowed, "a valid text got errno " << err);
        if (n >= 0) CHECK(n == static_cast<ssize_t>(std::min<std::size_t>(part.size(), 4096)));
        ++accepted;
      }
    }
  }
  MESSAGE("gpio-sim garbage: " << writes << " writes (" << rejected << " rejected with the kernel's errno, "
                               << accepted << " valid, " << empty << " empty; " << partial
                               << " texts split over two writes)");
  CHECK(sim.serving());
  // Clean up whatever got exported, then the simulator must still work.
  for (unsigned n = 0; n < lines; ++n) {
    if (!dir_exists(root + "/gpio" + std::to_string(n))) continue;
    const std::string dir = root + "/gpio" + std::to_string(n) + "/";
    for (auto [file, text] : {std::pair{"edge", "none"}, {"direction", "in"}, {"active_low", "0"}}) {
      Fd fd(::open((dir + file).c_str(), O_WRONLY | O_CLOEXEC));
      if (fd.get() >= 0) (void)!::write(fd.get(), text, std::strlen(text));
    }
    Fd un(::open((root + "/unexport").c_str(), O_WRONLY | O_CLOEXEC));
    REQUIRE(un.get() >= 0);
    const std::string number = std::to_string(n);
    CHECK(::write(un.get(), number.data(), number.size()) == static_cast<ssize_t>(number.size()));
  }
  evw::Loop loop;
  sim.set_input(kLine, 0);
  int calls = 0;
  evw::Gpio g(loop, kLine, evw::GpioConfig{.sysfs_root = root, .edge = evw::Edge::Both},
              [&](evw::Gpio&, int) { ++calls; });
  g.start();
  for (int level : {1, 0, 1, 0}) {
    const int want = calls + 1;
    sim.set_input(kLine, level);
    CHECK(run_until(loop, [&] { return calls == want; }));
    CHECK(g.value() == level);
  }
  g.stop();
}
