// Attr: notifying kernel attributes, on the real kernel (cgroup v2's
// cgroup.events, a group's and its parent's) and on gpio-sim's `value` (the file
// Gpio watches): the priming read, the reread at each event, a change while
// stopped, the file removed under the watcher, set(), priorities, feed,
// coroutines, bad input.
#include <evw/watchers/attr.hpp>
#include <evw/coro/coro.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "../tools/gpio-sim/gpio_sim.hpp"
#include "kernel_support.hpp"
#include "support.hpp"

using evw_test::run_until;

#define REQUIRE_CGROUP(name)                  \
  evw_test::TempCgroup name;                  \
  if (!name.ok()) EVW_SKIP(name.why())

namespace {

void settle(evw::Loop& loop, double seconds = 0.05) {
  bool done = false;
  evw::Timer t(loop, seconds, 0.0, [&](evw::Timer&, int) { done = true; });
  t.start();
  while (!done) loop.run(evw::Run::Once);
}

}  // namespace

TEST_CASE("Attr reads a cgroup's cgroup.events at each change, without its trailing newline") {
  REQUIRE_CGROUP(group);
  evw::Loop loop;
  std::vector<std::string> values;
  evw::Attr attr(loop, group.file("cgroup.events"), [&](evw::Attr& w, int revents) {
    CHECK(revents == evw::Event::Pri);
    values.push_back(w.value());
  });
  CHECK(attr.path() == group.file("cgroup.events"));
  CHECK(attr.value().rfind("populated 0\n", 0) == 0);
  CHECK(attr.value().back() != '\n');
  CHECK(attr.fd() >= 0);
  attr.start();
  // Without the priming read kernfs would report a change at once.
  settle(loop);
  CHECK(values.empty());
  evw_test::Kid kid([] { ::pause(); });
  REQUIRE(group.adopt(kid.pid()) == 0);
  CHECK(run_until(loop, [&] { return values.size() == 1; }));
  REQUIRE(values.size() == 1);
  CHECK(values[0].rfind("populated 1", 0) == 0);
  settle(loop);
  CHECK(values.size() == 1);  // the reread cleared the condition
  ::kill(kid.pid(), SIGKILL);
  ::waitpid(kid.pid(), nullptr, 0);
  CHECK(run_until(loop, [&] { return values.size() == 2; }));
  CHECK(attr.value().rfind("populated 0", 0) == 0);
  attr.stop();
}

TEST_CASE("Attr on a parent group's cgroup.events sees a process join a group below it") {
  REQUIRE_CGROUP(parent);
  const std::string child_dir = parent.path() + "/below";
  REQUIRE(::mkdir(child_dir.c_str(), 0755) == 0);
  evw::Loop loop;
  int calls = 0;
  evw::Attr attr(loop, parent.file("cgroup.events"), [&](evw::Attr&, int) { ++calls; });
  attr.start();
  evw_test::Kid kid([] { ::pause(); });
  REQUIRE(evw_test::write_file(child_dir + "/cgroup.procs", std::to_string(kid.pid())) == 0);
  CHECK(run_until(loop, [&] { return calls == 1; }));
  CHECK(attr.value().rfind("populated 1", 0) == 0);  // populated counts the whole subtree
  ::kill(kid.pid(), SIGKILL);
  ::waitpid(kid.pid(), nullptr, 0);
  CHECK(run_until(loop, [&] { return calls == 2; }));
  attr.stop();
  for (int i = 0; i < 500 && ::rmdir(child_dir.c_str()) != 0 && errno == EBUSY; ++i) ::usleep(2000);
}

TEST_CASE("Attr: a change while stopped is reported once after start; priorities and feed") {
  REQUIRE_CGROUP(group);
  evw::Loop loop;
  std::vector<int> order;
  evw::Attr low(loop, group.file("cgroup.events"), [&](evw::Attr&, int) { order.push_back(-1); });
  evw::Attr high(loop, group.file("cgroup.events"), [&](evw::Attr&, int) { order.push_back(2); });
  low.set_priority(-1);
  high.set_priority(2);
  CHECK_THROWS_AS(high.set_priority(3), std::out_of_range);
  evw_test::Kid kid([] { ::pause(); });
  REQUIRE(group.adopt(kid.pid()) == 0);  // both files latch the change
  settle(loop);
  CHECK(order.empty());
  low.start();
  high.start();
  CHECK(run_until(loop, [&] { return order.size() == 2; }));
  CHECK(order == std::vector<int>{2, -1});
  CHECK(low.value().rfind("populated 1", 0) == 0);
  settle(loop);
  CHECK(order.size() == 2);
  // A fed event rereads too, and set_priority keeps it pending.
  low.data() = 7;
  low.feed(evw::Event::Custom);
  low.set_priority(0);
  CHECK(low.is_pending());
  loop.run(evw::Run::NoWait);
  CHECK(order.size() == 3);
  CHECK(std::any_cast<int>(low.data()) == 7);
  low.stop();
  high.stop();
  ::kill(kid.pid(), SIGKILL);
  ::waitpid(kid.pid(), nullptr, 0);
}

TEST_CASE("Attr: the file removed under the watcher gives Event::Error once; set() and bad input") {
  REQUIRE_CGROUP(group);
  REQUIRE_CGROUP(other);
  evw::Loop loop;
  std::vector<int> got;
  evw::Attr attr(loop, group.file("cgroup.events"), [&](evw::Attr&, int revents) { got.push_back(revents); });
  attr.start();
  // set() keeps a pending event and the active state; a failing one keeps the old file.
  attr.feed(evw::Event::Pri);
  attr.set(other.file("cgroup.events"));
  CHECK(attr.is_pending());
  CHECK(attr.is_active());
  CHECK_THROWS_AS(attr.set("/nonexistent/evw"), std::system_error);
  CHECK_THROWS_AS(attr.set(""), std::invalid_argument);
  CHECK(attr.path() == other.file("cgroup.events"));
  loop.run(evw::Run::NoWait);
  CHECK(got == std::vector<int>{evw::Event::Pri});
  other.remove();
  // kernfs wakes nobody when the file goes: no event by itself...
  settle(loop);
  CHECK(got.size() == 1);
  // ...but the next read fails (here a fed event's), once.
  attr.feed(evw::Event::Pri);
  loop.run(evw::Run::NoWait);
  REQUIRE(got.size() == 2);
  CHECK(got[1] == evw::Event::Error);
  CHECK(attr.error() == std::errc::no_such_device);
  CHECK_FALSE(attr.is_active());
  settle(loop);
  CHECK(got.size() == 2);

  auto cb = [](evw::Attr&, int) {};
  try {
    evw::Attr missing(loop, "/nonexistent/evw/attr", cb);
    FAIL("a missing file was accepted");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::no_such_file_or_directory);
    CHECK(std::string(e.what()) == "evw::Attr: open /nonexistent/evw/attr: " + e.code().message());
  }
  CHECK_THROWS_AS(evw::Attr(loop, "", cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Attr(loop, "/proc/self/mountinfo", nullptr), std::invalid_argument);
  // A regular file on disk never notifies: epoll refuses it.
  evw_test::TempDir dir;
  const std::string plain = dir.path() + "/plain";
  REQUIRE(evw_test::write_file(plain, "") != 0);  // it does not exist yet: create it
  {
    evw_test::Fd fd(::open(plain.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    REQUIRE(fd.get() >= 0);
    REQUIRE(::write(fd.get(), "x\n", 2) == 2);
  }
  evw::Attr file(loop, plain, cb);
  CHECK(file.value() == "x");
  try {
    file.start();
    FAIL("a regular file was watched");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::operation_not_permitted);
  }
  CHECK_FALSE(file.is_active());
}

TEST_CASE("Attr on gpio-sim's value file: the logic Gpio's sysfs value needs") {
  if (auto why = evw::sim::GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  auto sim = evw::sim::GpioSim::in_temp_dir();
  const std::string dir = sim->root() + "/gpio5";
  REQUIRE(evw_test::write_file(sim->root() + "/export", "5") == 0);
  REQUIRE(evw_test::write_file(dir + "/direction", "in") == 0);
  REQUIRE(evw_test::write_file(dir + "/edge", "both") == 0);
  evw::Loop loop;
  std::vector<std::string> levels;
  evw::Attr value(loop, dir + "/value", [&](evw::Attr& w, int) { levels.push_back(w.value()); });
  CHECK(value.value() == "0");
  value.start();
  settle(loop);
  CHECK(levels.empty());
  sim->set_input(5, 1);
  CHECK(run_until(loop, [&] { return levels.size() == 1; }));
  sim->set_input(5, 0);
  CHECK(run_until(loop, [&] { return levels.size() == 2; }));
  CHECK(levels == std::vector<std::string>{"1", "0"});
  value.stop();
}

TEST_CASE("Attr in a coroutine: co_await attr.next() after the callback") {
  REQUIRE_CGROUP(group);
  evw::Loop loop;
  int callbacks = 0;
  evw::Attr attr(loop, group.file("cgroup.events"), [&](evw::Attr&, int) { ++callbacks; });
  std::string seen;
  int revents = 0;
  auto task = [&]() -> evw::Task<void> {
    revents = co_await attr.next();
    seen = attr.value();
  };
  evw::spawn(loop, task());
  loop.run(evw::Run::NoWait);
  CHECK(attr.is_active());  // started for the wait
  evw_test::Kid kid([] { ::pause(); });
  REQUIRE(group.adopt(kid.pid()) == 0);
  CHECK(run_until(loop, [&] { return !seen.empty(); }));
  CHECK(revents == evw::Event::Pri);
  CHECK(callbacks == 1);
  CHECK(seen.rfind("populated 1", 0) == 0);
  CHECK_FALSE(attr.is_active());  // and stopped after
  ::kill(kid.pid(), SIGKILL);
  ::waitpid(kid.pid(), nullptr, 0);
}
