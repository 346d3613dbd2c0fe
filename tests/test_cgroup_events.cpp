// CgroupEvents: a real cgroup v2 group, populated by a forked child that
// joins it through cgroup.procs and exits, frozen through cgroup.freeze,
// removed under the watcher; set(), priorities, two groups, bad input.
// Skipped (counted) where no cgroup v2 group can be created.
#include <evw/watchers/cgroup_events.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

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

TEST_CASE("CgroupEvents sees populated 0 -> 1 -> 0 as a child joins the group and exits") {
  REQUIRE_CGROUP(group);
  evw::Loop loop;
  std::vector<bool> seen;
  evw::CgroupEvents events(loop, group.path(), [&](evw::CgroupEvents& w, int revents) {
    CHECK(revents == evw::Event::Pri);
    seen.push_back(w.populated());
  });
  CHECK_FALSE(events.populated());
  CHECK_FALSE(events.frozen());
  CHECK(events.cgroup() == group.path());
  CHECK(events.text().find("populated 0") != std::string::npos);
  events.start();
  settle(loop);
  CHECK(seen.empty());  // the priming read: no event without a change

  evw_test::Kid kid([] { ::pause(); });
  REQUIRE(kid.pid() > 0);
  REQUIRE(group.adopt(kid.pid()) == 0);
  CHECK(run_until(loop, [&] { return !seen.empty(); }));
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == true);
  CHECK(events.populated());

  ::kill(kid.pid(), SIGKILL);
  ::waitpid(kid.pid(), nullptr, 0);
  CHECK(run_until(loop, [&] { return seen.size() == 2; }));
  REQUIRE(seen.size() == 2);
  CHECK(seen[1] == false);
  CHECK_FALSE(events.populated());
  settle(loop);
  CHECK(seen.size() == 2);  // each change once: the read cleared it
  events.stop();
}

TEST_CASE("CgroupEvents reports frozen when cgroup.freeze is written") {
  REQUIRE_CGROUP(group);
  if (::access(group.file("cgroup.freeze").c_str(), W_OK) != 0) EVW_SKIP("no cgroup.freeze (Linux < 5.2)");
  evw::Loop loop;
  int calls = 0;
  evw::CgroupEvents events(loop, group.path(), [&](evw::CgroupEvents&, int) { ++calls; });
  events.start();
  REQUIRE(evw_test::write_file(group.file("cgroup.freeze"), "1") == 0);
  CHECK(run_until(loop, [&] { return events.frozen(); }));
  CHECK(calls >= 1);
  REQUIRE(evw_test::write_file(group.file("cgroup.freeze"), "0") == 0);
  CHECK(run_until(loop, [&] { return !events.frozen(); }));
  events.stop();
}

TEST_CASE("CgroupEvents: a change while stopped is reported once after start") {
  REQUIRE_CGROUP(group);
  evw::Loop loop;
  int calls = 0;
  evw::CgroupEvents events(loop, group.path(), [&](evw::CgroupEvents&, int) { ++calls; });
  evw_test::Kid kid([] { ::pause(); });
  REQUIRE(group.adopt(kid.pid()) == 0);
  settle(loop);
  CHECK(calls == 0);
  CHECK_FALSE(events.populated());  // not read yet
  events.start();
  CHECK(run_until(loop, [&] { return calls == 1; }));
  CHECK(events.populated());
  settle(loop);
  CHECK(calls == 1);
  events.stop();
  ::kill(kid.pid(), SIGKILL);
  ::waitpid(kid.pid(), nullptr, 0);
}

TEST_CASE("CgroupEvents: the group removed under the watcher: no event (kernfs wakes nobody), the next read fails once") {
  REQUIRE_CGROUP(group);
  evw::Loop loop;
  std::vector<int> got;
  evw::CgroupEvents events(loop, group.path(), [&](evw::CgroupEvents&, int revents) { got.push_back(revents); });
  events.start();
  group.remove();
  settle(loop);
  CHECK(got.empty());
  events.feed(evw::Event::Pri);
  loop.run(evw::Run::NoWait);
  REQUIRE(got.size() == 1);
  CHECK(got[0] == evw::Event::Error);
  CHECK(events.error() == std::errc::no_such_device);
  CHECK_FALSE(events.is_active());
  settle(loop);
  CHECK(got.size() == 1);
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("CgroupEvents set() moves to another group, keeping a pending event; bad input") {
  REQUIRE_CGROUP(first);
  REQUIRE_CGROUP(second);
  evw::Loop loop;
  std::vector<std::string> from;
  evw::CgroupEvents events(loop, first.path(), [&](evw::CgroupEvents& w, int) { from.push_back(w.cgroup()); });
  events.set_priority(1);
  events.start();
  events.feed(evw::Event::Pri);
  events.set(second.path());
  CHECK(events.is_active());
  CHECK(events.is_pending());
  CHECK(events.priority() == 1);
  loop.run(evw::Run::NoWait);
  REQUIRE(from.size() == 1);
  CHECK(from[0] == second.path());
  // The first group no longer reports; the second does.
  evw_test::Kid one([] { ::pause(); });
  REQUIRE(first.adopt(one.pid()) == 0);
  settle(loop);
  CHECK(from.size() == 1);
  evw_test::Kid two([] { ::pause(); });
  REQUIRE(second.adopt(two.pid()) == 0);
  CHECK(run_until(loop, [&] { return from.size() == 2; }));
  CHECK(events.populated());
  // A failed set() keeps the old group.
  CHECK_THROWS_AS(events.set("/nonexistent/evw"), std::system_error);
  CHECK_THROWS_AS(events.set(""), std::invalid_argument);
  CHECK(events.cgroup() == second.path());
  CHECK(events.is_active());
  events.stop();
  for (pid_t pid : {one.pid(), two.pid()}) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  auto cb = [](evw::CgroupEvents&, int) {};
  try {
    evw::CgroupEvents bad(loop, "/proc", cb);
    FAIL("a directory without cgroup.events was accepted");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::no_such_file_or_directory);
    CHECK(std::string(e.what()).find("/proc/cgroup.events") != std::string::npos);
  }
  CHECK_THROWS_AS(evw::CgroupEvents(loop, first.path(), nullptr), std::invalid_argument);
  CHECK(loop.watcher_count() == 1);
}
