// Stat: a real file in a temporary directory grows, vanishes, appears;
// refresh, owned paths, set on active/pending watchers, priorities,
// destruction in callbacks, bad input, detaching.
#include <evw/watchers/stat.hpp>
#include <evw/core/loop.hpp>
#include <evw/watchers/timer.hpp>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
using evw_test::run_until;

namespace {

// A temporary directory, removed with what is left in it.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/evw-stat-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    for (const char* name : {"/file", "/other"}) ::unlink((path + name).c_str());
    ::rmdir(path.c_str());
  }
  std::string file(const char* name = "/file") const { return path + name; }
};

void append(const std::string& path, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

}  // namespace

TEST_CASE("Stat sees a real file grow and vanish") {
  TempDir dir;
  append(dir.file(), "abc");
  evw::Loop loop;
  int calls = 0, last = 0;
  evw::Stat st(loop, dir.file(), 0.05, [&](evw::Stat&, int revents) {
    ++calls;
    last = revents;
  });
  CHECK(st.path() == dir.file());
  CHECK(st.attr().st_nlink == 0);  // nothing checked yet
  st.start();
  CHECK(st.attr().st_nlink == 1);
  CHECK(st.attr().st_size == 3);
  CHECK(st.interval() > 0.0);

  append(dir.file(), "defg");
  CHECK(run_until(loop, [&] { return calls >= 1; }));
  CHECK(last == evw::Event::Stat);
  CHECK(st.attr().st_size == 7);
  CHECK(st.prev().st_size == 3);

  int before = calls;
  REQUIRE(::unlink(dir.file().c_str()) == 0);
  CHECK(run_until(loop, [&] { return calls > before && st.attr().st_nlink == 0; }));
  CHECK(st.prev().st_nlink == 1);
  st.stop();
}

TEST_CASE("Stat of a missing file reports its creation") {
  TempDir dir;
  evw::Loop loop;
  int calls = 0;
  evw::Stat st(loop, dir.file(), 100ms, [&](evw::Stat&, int) { ++calls; });
  st.start();
  CHECK(st.attr().st_nlink == 0);
  append(dir.file(), "x");
  CHECK(run_until(loop, [&] { return calls >= 1; }));
  CHECK(st.attr().st_nlink == 1);
  CHECK(st.attr().st_size == 1);
  CHECK(st.prev().st_nlink == 0);
  st.stop();
}

TEST_CASE("Stat owns its path, refresh() re-reads without a callback") {
  TempDir dir;
  append(dir.file(), "1");
  append(dir.file("/other"), "22");
  evw::Loop loop;
  int calls = 0;
  auto st = std::make_unique<evw::Stat>(loop, std::string(dir.file()), 0.0,
                                        [&](evw::Stat&, int) { ++calls; });
  CHECK(st->interval() == 0.0);  // libev's default, chosen at start
  st->refresh();
  CHECK(st->attr().st_size == 1);
  {
    std::string temporary = dir.file("/other");
    st->set(temporary, 0.05);
    temporary.assign(temporary.size(), 'x');  // the watcher kept its own copy
  }
  CHECK(st->path() == dir.file("/other"));
  st->start();
  CHECK(st->attr().st_size == 2);
  append(dir.file("/other"), "333");
  st->refresh();
  CHECK(st->attr().st_size == 5);
  loop.run(evw::Run::NoWait);
  CHECK(calls == 0);  // the change was taken by refresh(): nothing new to report
  st.reset();
  CHECK(loop.watcher_count() == 0);
}

TEST_CASE("Stat rejects empty paths, NUL bytes and bad intervals") {
  evw::Loop loop;
  auto cb = [](evw::Stat&, int) {};
  CHECK_THROWS_AS(evw::Stat(loop, "", 0.0, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Stat(loop, std::string("/tmp/a\0b", 8), 0.0, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Stat(loop, "/tmp", -1.0, cb), std::invalid_argument);
  CHECK_THROWS_AS(evw::Stat(loop, "/tmp", std::numeric_limits<double>::quiet_NaN(), cb),
                  std::invalid_argument);
  CHECK_THROWS_AS(evw::Stat(loop, "/tmp", std::numeric_limits<double>::infinity(), cb),
                  std::invalid_argument);
  CHECK_THROWS_AS(evw::Stat(loop, "/tmp", 1.0, nullptr), std::invalid_argument);
  evw::Stat st(loop, "/tmp", 1.0, cb);
  CHECK_THROWS_WITH_AS(st.set("", 1.0), doctest::Contains("path"), std::invalid_argument);
  CHECK(st.path() == "/tmp");
  CHECK(loop.watcher_count() == 1);
}

TEST_CASE("Stat set() and set_priority() on a pending watcher deliver the event once") {
  TempDir dir;
  append(dir.file(), "1");
  evw::Loop loop;
  int calls = 0;
  evw::Stat st(loop, dir.file(), 1.0, [&](evw::Stat&, int) { ++calls; });
  st.start();
  st.feed(evw::Event::Stat);
  st.set(dir.file("/other"), 2.0);
  CHECK(st.is_pending());
  CHECK(st.is_active());
  CHECK(st.attr().st_nlink == 0);  // restarted on the new (missing) path
  st.set_priority(1);
  CHECK(st.is_pending());
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  st.stop();
}

TEST_CASE("Stat priorities order its events among other watcher types") {
  evw::Loop loop;
  std::vector<int> order;
  evw::Stat s(loop, "/tmp", 1.0, [&](evw::Stat&, int) { order.push_back(0); });
  evw::Timer t(loop, 10.0, 0.0, [&](evw::Timer&, int) { order.push_back(1); });
  s.set_priority(-1);
  s.feed(evw::Event::Stat);
  t.feed(evw::Event::Timer);
  loop.run(evw::Run::NoWait);
  CHECK(order == std::vector<int>{1, 0});
}

TEST_CASE("Stat user data and destruction inside its own callback") {
  TempDir dir;
  evw::Loop loop;
  int seen = 0;
  std::unique_ptr<evw::Stat> self;
  self = std::make_unique<evw::Stat>(loop, dir.file(), 0.05, [&](evw::Stat& w, int) {
    seen = std::any_cast<int>(w.data());
    self.reset();
  });
  self->data() = 8;
  self->start();
  append(dir.file(), "x");
  CHECK(run_until(loop, [&] { return self == nullptr; }));
  CHECK(seen == 8);
  CHECK(loop.watcher_count() == 0);
}

TEST_CASE("a Stat whose loop is destroyed while active becomes detached") {
  TempDir dir;
  auto loop = std::make_unique<evw::Loop>();
  evw::Stat st(*loop, dir.file(), 0.5, [](evw::Stat&, int) {});
  st.start();
  loop.reset();
  CHECK_FALSE(st.is_attached());
  CHECK_FALSE(st.is_active());
  CHECK_THROWS_AS(st.start(), std::logic_error);
  CHECK_THROWS_AS(st.refresh(), std::logic_error);
  st.set(dir.file("/other"), 1.0);  // configuration still works
  CHECK(st.path() == dir.file("/other"));
}

TEST_CASE("Stat stopped inside its own callback reports no later change") {
  TempDir dir;
  append(dir.file(), "1");
  evw::Loop loop;
  int calls = 0;
  evw::Stat st(loop, dir.file(), 0.05, [&](evw::Stat& w, int) {
    ++calls;
    w.stop();
  });
  st.start();
  append(dir.file(), "22");
  CHECK(run_until(loop, [&] { return calls == 1; }));
  CHECK_FALSE(st.is_active());
  append(dir.file(), "333");
  loop.run(evw::Run::NoWait);
  CHECK_FALSE(run_until(loop, [&] { return calls > 1; }, 0.3));
  CHECK(calls == 1);
  CHECK_FALSE(loop.run(evw::Run::NoWait));  // nothing left active
}

TEST_CASE("Stat set() while active watches the new path, not the old one") {
  TempDir dir;
  append(dir.file(), "1");
  append(dir.file("/other"), "1");
  evw::Loop loop;
  int calls = 0;
  evw::Stat st(loop, dir.file(), 0.05, [&](evw::Stat&, int) { ++calls; });
  st.start();
  st.set(dir.file("/other"), 0.05);
  CHECK(st.is_active());
  CHECK(st.path() == dir.file("/other"));
  CHECK(st.attr().st_size == 1);
  append(dir.file(), "old");  // the old path: nothing
  CHECK_FALSE(run_until(loop, [&] { return calls > 0; }, 0.3));
  append(dir.file("/other"), "new");
  CHECK(run_until(loop, [&] { return calls == 1; }));
  CHECK(st.attr().st_size == 4);
  st.stop();
}

TEST_CASE("a loop-owned Stat active when its loop is destroyed is destroyed with it") {
  TempDir dir;
  auto loop = std::make_unique<evw::Loop>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> alive = token;
  loop->add<evw::Stat>(dir.file(), 0.5, [token](evw::Stat&, int) {}).start();
  token.reset();
  REQUIRE_FALSE(alive.expired());  // held by the watcher's callback
  loop.reset();
  CHECK(alive.expired());
}
