// Mounts: real tmpfs mounts, unmounts, bind mounts, remounts, moves and
// a propagation change, each in a forked child with a private mount namespace
// (the host's table is never touched); mount points with escaped characters;
// the parser and the diff on literal mountinfo text; another process's
// namespace through /proc/<pid>/mountinfo; bad input.
#include <evw/watchers/mounts.hpp>
#include <evw/coro/coro.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "kernel_support.hpp"
#include "support.hpp"

using evw::MountChange;
using evw_test::run_until;
using Kind = evw::MountChange::Kind;

namespace {

void settle(evw::Loop& loop, double seconds = 0.05) {
  bool done = false;
  evw::Timer t(loop, seconds, 0.0, [&](evw::Timer&, int) { done = true; });
  t.start();
  while (!done) loop.run(evw::Run::Once);
}

std::string mount_tmpfs(const std::string& where, unsigned long flags = 0) {
  if (::mount("evw-tmpfs", where.c_str(), "tmpfs", flags, nullptr) != 0)
    return std::string("SKIP: mount tmpfs on ") + where + ": " + std::strerror(errno);
  return "";
}

// What a test in the namespace checks; the first failure is its result.
struct Checks {
  std::string failure;
  bool operator()(bool ok, const std::string& what) {
    if (!ok && failure.empty()) failure = what;
    return ok;
  }
};

}  // namespace

TEST_CASE("Mounts: a tmpfs mounted and unmounted is Added, then Removed") {
  EVW_CHECK_NAMESPACE_RESULT(evw_test::in_mount_namespace([]() -> std::string {
    evw_test::TempDir dir;
    evw::Loop loop;
    int calls = 0;
    std::vector<MountChange> last;
    evw::Mounts mounts(loop, [&](evw::Mounts& w, int revents) {
      ++calls;
      last = w.changes();
      if (revents != evw::Event::Pri) last.clear();
    });
    Checks check;
    check(mounts.path() == "/proc/self/mountinfo", "path()");
    check(mounts.find("/") != nullptr, "find(\"/\")");
    check(mounts.changes().empty(), "changes() before any event");
    const std::size_t before = mounts.table().size();
    mounts.start();
    settle(loop);
    check(calls == 0, "an event without a change");
    if (std::string skip = mount_tmpfs(dir.path()); !skip.empty()) return skip;
    check(run_until(loop, [&] { return calls == 1; }), "no event for the mount");
    check(last.size() == 1 && last[0].kind == Kind::Added, "not one Added");
    if (!last.empty()) {
      const evw::MountEntry& e = last[0].entry;
      check(e.mount_point == dir.path(), "mount_point " + e.mount_point);
      check(e.fstype == "tmpfs" && e.source == "evw-tmpfs", "fstype/source " + e.fstype + " " + e.source);
      check(e.root == "/", "root " + e.root);
      check(e.options.rfind("rw", 0) == 0, "options " + e.options);
      check(e.id > 0 && e.parent_id > 0, "ids");
    }
    check(mounts.table().size() == before + 1, "table() size");
    const evw::MountEntry* found = mounts.find(dir.path());
    check(found != nullptr && found->fstype == "tmpfs", "find() the new mount");
    settle(loop);
    check(calls == 1, "a second event for one mount");
    ::umount(dir.path().c_str());
    check(run_until(loop, [&] { return calls == 2; }), "no event for the unmount");
    check(last.size() == 1 && last[0].kind == Kind::Removed && last[0].entry.mount_point == dir.path(),
          "not one Removed");
    check(mounts.table().size() == before, "table() size after the unmount");
    return check.failure;
  }));
}

TEST_CASE("Mounts: bind mount, read-only remount, move; a propagation change shows in the next difference") {
  EVW_CHECK_NAMESPACE_RESULT(evw_test::in_mount_namespace([]() -> std::string {
    evw_test::TempDir dir;
    const std::string src = dir.path() + "/src", bind = dir.path() + "/bind", moved = dir.path() + "/moved";
    if (std::string skip = mount_tmpfs(dir.path()); !skip.empty()) return skip;
    ::mkdir(src.c_str(), 0755);
    ::mkdir((src + "/sub").c_str(), 0755);
    ::mkdir(bind.c_str(), 0755);
    ::mkdir(moved.c_str(), 0755);
    evw::Loop loop;
    int calls = 0;
    std::vector<MountChange> last;
    evw::Mounts mounts(loop, [&](evw::Mounts& w, int) {
      ++calls;
      last = w.changes();
    });
    mounts.start();
    Checks check;
    if (::mount((src + "/sub").c_str(), bind.c_str(), nullptr, MS_BIND, nullptr) != 0)
      return std::string("bind mount: ") + std::strerror(errno);
    check(run_until(loop, [&] { return calls == 1; }), "no event for the bind mount");
    check(last.size() == 1 && last[0].kind == Kind::Added, "bind: not one Added");
    if (!last.empty()) {
      check(last[0].entry.root == "/src/sub", "bind root " + last[0].entry.root);
      check(last[0].entry.mount_point == bind, "bind mount point " + last[0].entry.mount_point);
    }
    const int id = last.empty() ? 0 : last[0].entry.id;

    if (::mount(nullptr, bind.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0)
      return std::string("remount ro: ") + std::strerror(errno);
    check(run_until(loop, [&] { return calls == 2; }), "no event for the remount");
    check(last.size() == 1 && last[0].kind == Kind::Changed, "remount: not one Changed");
    if (!last.empty()) {
      check(last[0].entry.id == id, "remount: another id");
      check(last[0].entry.options.rfind("ro", 0) == 0, "remount: options " + last[0].entry.options);
      check(last[0].previous.options.rfind("rw", 0) == 0, "remount: previous " + last[0].previous.options);
    }

    // A propagation change alone notifies nobody (do_change_type() does not
    // touch the namespace's event count); it shows in the next difference.
    if (::mount(nullptr, bind.c_str(), nullptr, MS_SHARED, nullptr) != 0)
      return std::string("make-shared: ") + std::strerror(errno);
    settle(loop);
    check(calls == 2, "an event for a propagation change (the kernel raises none)");

    if (::mount(bind.c_str(), moved.c_str(), nullptr, MS_MOVE, nullptr) != 0)
      return std::string("move: ") + std::strerror(errno);
    check(run_until(loop, [&] { return calls == 3; }), "no event for the move");
    check(last.size() == 1 && last[0].kind == Kind::Changed, "move: not one Changed");
    if (!last.empty()) {
      check(last[0].entry.mount_point == moved && last[0].previous.mount_point == bind, "move: mount points");
      check(last[0].entry.propagation.rfind("shared:", 0) == 0 && last[0].previous.propagation.empty(),
            "move: propagation '" + last[0].entry.propagation + "'");
    }
    ::umount(moved.c_str());
    ::umount(dir.path().c_str());
    return check.failure;
  }));
}

TEST_CASE("Mounts: mount points with a space, a tab, a newline and a backslash come back unescaped") {
  EVW_CHECK_NAMESPACE_RESULT(evw_test::in_mount_namespace([]() -> std::string {
    evw_test::TempDir dir;
    const std::string odd = dir.path() + "/a b\tc\nd\\e";
    if (::mkdir(odd.c_str(), 0755) != 0) return std::string("mkdir: ") + std::strerror(errno);
    evw::Loop loop;
    int calls = 0;
    evw::Mounts mounts(loop, [&](evw::Mounts&, int) { ++calls; });
    mounts.start();
    if (std::string skip = mount_tmpfs(odd); !skip.empty()) return skip;
    Checks check;
    check(run_until(loop, [&] { return calls == 1; }), "no event");
    check(mounts.changes().size() == 1 && mounts.changes()[0].entry.mount_point == odd,
          "the mount point was not unescaped");
    check(mounts.find(odd) != nullptr, "find() with the real name");
    ::umount(odd.c_str());
    return check.failure;
  }));
}

TEST_CASE("Mounts: changes while stopped come once, as one difference, after start") {
  EVW_CHECK_NAMESPACE_RESULT(evw_test::in_mount_namespace([]() -> std::string {
    evw_test::TempDir dir;
    const std::string a = dir.path() + "/a", b = dir.path() + "/b";
    ::mkdir(a.c_str(), 0755);
    ::mkdir(b.c_str(), 0755);
    evw::Loop loop;
    int calls = 0;
    evw::Mounts mounts(loop, [&](evw::Mounts&, int) { ++calls; });
    if (std::string skip = mount_tmpfs(a); !skip.empty()) return skip;
    mount_tmpfs(b);
    ::umount(a.c_str());
    Checks check;
    settle(loop);
    check(calls == 0, "an event while stopped");
    mounts.start();
    check(run_until(loop, [&] { return calls == 1; }), "the latched change was not reported");
    // a came and went: only b is new.
    check(mounts.changes().size() == 1 && mounts.changes()[0].kind == Kind::Added &&
              mounts.changes()[0].entry.mount_point == b,
          "not just b Added");
    settle(loop);
    check(calls == 1, "reported twice");
    ::umount(b.c_str());
    return check.failure;
  }));
}

TEST_CASE("Mounts::parse and Mounts::diff on mountinfo text") {
  const std::string text =
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
      "36 22 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 shared:2 - ext3 /dev/my\\040disk rw,errors=continue\n"
      "garbage line\n"
      "37 22 0:40 / /t rw - tmpfs  rw,size=10k\n"
      "38 22 0:41 / /x rw - tmpfs none rw\n";
  const std::vector<evw::MountEntry> table = evw::Mounts::parse(text);
  REQUIRE(table.size() == 4);
  CHECK(table[0].id == 22);
  CHECK(table[0].propagation == "shared:1");
  CHECK(table[1].parent_id == 22);
  CHECK(table[1].major == 98);
  CHECK(table[1].minor == 0);
  CHECK(table[1].root == "/mnt1");
  CHECK(table[1].mount_point == "/mnt/a b");
  CHECK(table[1].propagation == "master:1 shared:2");
  CHECK(table[1].fstype == "ext3");
  CHECK(table[1].source == "/dev/my disk");
  CHECK(table[1].super_options == "rw,errors=continue");
  CHECK(table[2].source.empty());  // an empty source is two spaces
  CHECK(table[2].super_options == "rw,size=10k");
  CHECK(evw::Mounts::parse("").empty());
  CHECK(evw::Mounts::parse("1 2 3:4 / /\n").empty());

  std::vector<evw::MountEntry> after = table;
  after.erase(after.begin() + 2);           // 37 unmounted
  after[1].options = "ro,noatime";          // 36 remounted
  after.back().minor = 99;                  // 38 unmounted, its id taken by another tmpfs
  after.back().mount_point = "/y";
  evw::MountEntry fresh = table[3];
  fresh.id = 40;
  after.push_back(fresh);                   // 40 new
  const std::vector<MountChange> changes = evw::Mounts::diff(table, after);
  REQUIRE(changes.size() == 5);
  CHECK((changes[0].kind == Kind::Removed && changes[0].entry.id == 37));
  CHECK((changes[1].kind == Kind::Removed && changes[1].entry.id == 38 && changes[1].entry.minor == 41));
  CHECK((changes[2].kind == Kind::Added && changes[2].entry.id == 38 && changes[2].entry.minor == 99));
  CHECK((changes[3].kind == Kind::Added && changes[3].entry.id == 40));
  CHECK((changes[4].kind == Kind::Changed && changes[4].entry.id == 36 &&
         changes[4].previous.options == "rw,noatime"));
  CHECK(evw::Mounts::diff(table, table).empty());
}

TEST_CASE("Mounts of another process's namespace through /proc/<pid>/mountinfo; set(); bad input") {
  // The child enters a private namespace, says so, mounts when told, and waits.
  int ready[2], go[2];
  REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
  evw_test::TempDir dir;
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::alarm(10);
    char c = ::unshare(CLONE_NEWNS) == 0 && ::mount(nullptr, "/", nullptr, MS_PRIVATE | MS_REC, nullptr) == 0 ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    if (c == 'y' && ::read(go[0], &c, 1) == 1) {
      c = ::mount("evw-tmpfs", dir.path().c_str(), "tmpfs", 0, nullptr) == 0 ? 'y' : 'n';
      (void)!::write(ready[1], &c, 1);
      ::pause();
    }
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(go[0]);
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{pid};
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  if (c != 'y') {
    ::close(ready[0]);
    ::close(go[1]);
    EVW_SKIP("cannot make a private mount namespace (unshare(CLONE_NEWNS))");
  }
  const std::string path = "/proc/" + std::to_string(pid) + "/mountinfo";
  evw::Loop loop;
  int calls = 0;
  evw::Mounts theirs(loop, path, [&](evw::Mounts&, int) { ++calls; });
  int own_calls = 0;
  evw::Mounts own(loop, [&](evw::Mounts&, int) { ++own_calls; });
  CHECK(theirs.path() == path);
  theirs.start();
  own.start();
  REQUIRE(::write(go[1], "g", 1) == 1);
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  ::close(go[1]);
  REQUIRE(c == 'y');
  CHECK(run_until(loop, [&] { return calls == 1; }));
  REQUIRE(theirs.changes().size() == 1);
  CHECK(theirs.changes()[0].kind == Kind::Added);
  CHECK(theirs.changes()[0].entry.mount_point == dir.path());
  settle(loop);
  CHECK(own_calls == 0);  // the host's namespace did not change
  CHECK(own.find(dir.path()) == nullptr);
  // set() to this process: a fresh table, no changes; a failing set() keeps the file.
  theirs.set("/proc/self/mountinfo");
  CHECK(theirs.changes().empty());
  CHECK(theirs.find(dir.path()) == nullptr);
  CHECK(theirs.is_active());
  CHECK_THROWS_AS(theirs.set("/proc/999999999/mountinfo"), std::system_error);
  CHECK(theirs.path() == "/proc/self/mountinfo");
  auto cb = [](evw::Mounts&, int) {};
  CHECK_THROWS_AS(evw::Mounts(loop, "", cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Mounts(loop, nullptr), std::invalid_argument);
  CHECK_THROWS_AS(evw::Mounts(loop, "/nonexistent/mountinfo", cb), std::system_error);
}

TEST_CASE("Mounts in a coroutine: co_await mounts.next()") {
  EVW_CHECK_NAMESPACE_RESULT(evw_test::in_mount_namespace([]() -> std::string {
    evw_test::TempDir dir;
    evw::Loop loop;
    evw::Mounts mounts(loop, [](evw::Mounts&, int) {});
    std::string added;
    auto task = [&]() -> evw::Task<void> {
      co_await mounts.next();
      for (const MountChange& c : mounts.changes())
        if (c.kind == Kind::Added) added = c.entry.mount_point;
    };
    evw::spawn(loop, task());
    loop.run(evw::Run::NoWait);
    if (std::string skip = mount_tmpfs(dir.path()); !skip.empty()) return skip;
    if (!run_until(loop, [&] { return !added.empty(); })) return "the coroutine was not resumed";
    if (added != dir.path()) return "added " + added;
    if (mounts.is_active()) return "still active after the wait";
    ::umount(dir.path().c_str());
    return "";
  }));
}
