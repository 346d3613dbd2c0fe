// Pressure: PSI triggers fired by real load (CPU-spinning children in a
// cgroup of their own; memory through a low memory.high where the cgroup v2
// memory controller is available), the kernel's refusals, a removed cgroup,
// and systemd's $MEMORY_PRESSURE_WATCH / $MEMORY_PRESSURE_WRITE protocol with
// a PSI file and with an AF_UNIX socket served by the test. Skipped (counted)
// where the kernel has no PSI or no cgroup v2 group can be made.
#include <evw/watchers/pressure.hpp>
#include <evw/coro/coro.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "kernel_support.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using evw_test::run_until;

#define REQUIRE_PSI()                                                                     \
  if (::access("/proc/pressure/cpu", R_OK) != 0) EVW_SKIP("no PSI in this kernel (/proc/pressure)")

#define REQUIRE_CGROUP(name)                  \
  evw_test::TempCgroup name;                  \
  if (!name.ok()) EVW_SKIP(name.why())

namespace {

constexpr int kCapSysResource = 24;

void settle(evw::Loop& loop, double seconds = 0.05) {
  bool done = false;
  evw::Timer t(loop, seconds, 0.0, [&](evw::Timer&, int) { done = true; });
  t.start();
  while (!done) loop.run(evw::Run::Once);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

evw::PressureConfig cpu_in(const std::string& cgroup) {
  evw::PressureConfig c;
  c.resource = evw::Resource::Cpu;
  c.threshold = 100ms;
  c.window = 2s;
  c.cgroup = cgroup;
  return c;
}

using evw_test::Env;

std::string base64(const std::string& in) {
  static const char* const table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += table[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

}  // namespace

TEST_CASE("Pressure: a CPU trigger fires when spinning children stall a cgroup (real load)") {
  REQUIRE_PSI();
  REQUIRE_CGROUP(group);
  evw::Loop loop;
  int calls = 0, last = 0;
  evw::Pressure pressure(loop, cpu_in(group.path()), [&](evw::Pressure&, int revents) {
    ++calls;
    last = revents;
  });
  CHECK(pressure.path() == group.file("cpu.pressure"));
  CHECK(pressure.trigger() == "some 100000 2000000");
  CHECK_FALSE(pressure.is_stream());
  pressure.start();
  settle(loop, 0.1);
  CHECK(calls == 0);  // an idle group: no stall, no event (the fd has its trigger)
  // Four spinners on this machine's cores: at least one of them always waits.
  evw_test::Spinners spin(4);
  for (pid_t pid : spin.pids()) REQUIRE(group.adopt(pid) == 0);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(run_until(loop, [&] { return calls >= 1; }, 4.5));
  const double fired = seconds_since(t0);
  spin.stop();
  MESSAGE("CPU trigger (some 100 ms / 2 s) fired after " << fired << " s");
  CHECK(last == evw::Event::Pri);
  CHECK(pressure.stats().some.total_us > 0);  // read at the event
  pressure.stop();
}

TEST_CASE("Pressure: a memory trigger fires for a cgroup held under memory.high (real load)") {
  REQUIRE_PSI();
  REQUIRE_CGROUP(group);
  if (!group.controller_available("memory"))
    EVW_SKIP("the cgroup v2 memory controller is not available here (bound to cgroup v1 on this hybrid hierarchy)");
  const std::string parent = group.path().substr(0, group.path().rfind('/'));
  if (evw_test::write_file(parent + "/cgroup.subtree_control", "+memory") != 0)
    EVW_SKIP("cannot enable the memory controller for the test group");
  REQUIRE(evw_test::write_file(group.file("memory.high"), std::to_string(16 << 20)) == 0);
  evw::Loop loop;
  int calls = 0;
  evw::PressureConfig config;
  config.threshold = 50ms;
  config.cgroup = group.path();
  evw::Pressure pressure(loop, config, [&](evw::Pressure&, int) { ++calls; });
  pressure.start();
  // A child that keeps touching 64 MiB under a 16 MiB memory.high is throttled
  // and reclaimed: memory stall.
  evw_test::Kid hog([] {
    const std::size_t size = std::size_t{64} << 20;
    void* mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) ::_exit(1);
    for (;;)
      for (std::size_t i = 0; i < size; i += 4096) static_cast<volatile char*>(mem)[i] = 1;
  });
  REQUIRE(group.adopt(hog.pid()) == 0);
  hog.release();
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(run_until(loop, [&] { return calls >= 1; }, 4.5));
  MESSAGE("memory trigger fired after " << seconds_since(t0) << " s");
  ::kill(hog.pid(), SIGKILL);
  ::waitpid(hog.pid(), nullptr, 0);
  pressure.stop();
}

TEST_CASE("Pressure: the kernel's refusals come back as clear errors; bad configurations") {
  REQUIRE_PSI();
  evw::Loop loop;
  auto cb = [](evw::Pressure&, int) {};
  evw::PressureConfig c;
  c.resource = evw::Resource::Cpu;
  c.window = 1s;  // not a multiple of 2 s: unprivileged triggers may not have it
  if (!evw_test::has_capability(kCapSysResource)) {
    try {
      evw::Pressure p(loop, c, cb);
      FAIL("a 1 s window was accepted without CAP_SYS_RESOURCE");
    } catch (const std::system_error& e) {
      CHECK(e.code() == std::errc::invalid_argument);
      const std::string what = e.what();
      CHECK(what.find("\"some 200000 1000000\" to /proc/pressure/cpu") != std::string::npos);
      CHECK(what.find("multiple of 2 s") != std::string::npos);
    }
  }
  c.window = 2s;
  c.cgroup = "/nonexistent/evw";
  try {
    evw::Pressure p(loop, c, cb);
    FAIL("a missing cgroup was accepted");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::errc::no_such_file_or_directory);
    CHECK(std::string(e.what()).find("/nonexistent/evw/cpu.pressure") != std::string::npos);
    CHECK(std::string(e.what()).find("cgroup v2") != std::string::npos);
  }
  c.cgroup.clear();
  auto bad = [&](auto change) {
    evw::PressureConfig b = c;
    change(b);
    CHECK_THROWS_AS(evw::Pressure(loop, b, cb), std::invalid_argument);
  };
  bad([](evw::PressureConfig& b) { b.threshold = 0ms; });
  bad([](evw::PressureConfig& b) { b.window = -2s; });
  bad([](evw::PressureConfig& b) { b.threshold = 3s; });
  bad([](evw::PressureConfig& b) { b.window = 12s; });
  bad([](evw::PressureConfig& b) { b.resource = static_cast<evw::Resource>(9); });
  bad([](evw::PressureConfig& b) { b.stall = static_cast<evw::Stall>(9); });
  CHECK_THROWS_AS(evw::Pressure(loop, c, nullptr), std::invalid_argument);
  CHECK(loop.watcher_count() == 0);
  // The defaults: memory, some 200 ms per 2 s, system-wide.
  evw::Pressure def(loop, cb);
  CHECK(def.path() == "/proc/pressure/memory");
  CHECK(def.trigger() == "some 200000 2000000");
  CHECK(def.config().threshold == 200ms);
  CHECK(def.config().window == 2s);
}

TEST_CASE("Pressure: a cgroup removed under the watcher gives Event::Error with ENODEV, once") {
  REQUIRE_PSI();
  REQUIRE_CGROUP(group);
  evw::Loop loop;
  std::vector<int> got;
  evw::Pressure pressure(loop, cpu_in(group.path()), [&](evw::Pressure&, int revents) { got.push_back(revents); });
  pressure.start();
  group.remove();
  // The removed file reports POLLPRI|POLLERR for good; only the read tells.
  CHECK(run_until(loop, [&] { return !got.empty(); }));
  REQUIRE(got.size() == 1);
  CHECK(got[0] == evw::Event::Error);
  CHECK(pressure.error() == std::errc::no_such_device);
  CHECK_FALSE(pressure.is_active());
  settle(loop);
  CHECK(got.size() == 1);
}

TEST_CASE("Pressure set() keeps a pending event and the priority; a failing set() keeps the old trigger") {
  REQUIRE_PSI();
  evw::Loop loop;
  int calls = 0;
  evw::PressureConfig c;
  c.resource = evw::Resource::Io;
  c.stall = evw::Stall::Full;
  c.window = 4s;
  c.threshold = 1s;
  evw::Pressure pressure(loop, c, [&](evw::Pressure&, int) { ++calls; });
  CHECK(pressure.trigger() == "full 1000000 4000000");
  pressure.set_priority(-2);
  pressure.start();
  pressure.data() = std::string("cache");
  pressure.feed(evw::Event::Pri);
  const int old_fd = pressure.fd();
  pressure.set(cpu_in(""));
  CHECK(pressure.path() == "/proc/pressure/cpu");
  CHECK(pressure.is_pending());
  CHECK(pressure.is_active());
  CHECK(pressure.priority() == -2);
  CHECK(pressure.fd() >= 0);
  (void)old_fd;
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  evw::PressureConfig bad = cpu_in("/nonexistent/evw");
  CHECK_THROWS_AS(pressure.set(bad), std::system_error);
  CHECK(pressure.path() == "/proc/pressure/cpu");
  CHECK(pressure.is_active());
  CHECK(std::any_cast<std::string>(pressure.data()) == "cache");
  pressure.stop();
}

TEST_CASE("Pressure::from_environment: $MEMORY_PRESSURE_WATCH names a PSI file, $MEMORY_PRESSURE_WRITE the trigger") {
  REQUIRE_PSI();
  REQUIRE_CGROUP(group);
  // Any PSI file follows the protocol; a CPU one lets real load fire it.
  // No NUL at the end: the watcher adds it (the kernel would eat the last digit).
  const std::string trigger = "some 100000 2000000";
  Env watch("MEMORY_PRESSURE_WATCH", group.file("cpu.pressure").c_str());
  Env write("MEMORY_PRESSURE_WRITE", base64(trigger).c_str());
  evw::Loop loop;
  int calls = 0;
  evw::Pressure pressure = evw::Pressure::from_environment(loop, [&](evw::Pressure&, int) { ++calls; });
  CHECK_FALSE(pressure.is_stream());
  CHECK(pressure.path() == group.file("cpu.pressure"));
  CHECK(pressure.trigger() == trigger);
  CHECK(pressure.config().threshold == 100ms);
  CHECK(pressure.config().window == 2s);
  pressure.start();
  evw_test::Spinners spin(4);
  for (pid_t pid : spin.pids()) REQUIRE(group.adopt(pid) == 0);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(run_until(loop, [&] { return calls >= 1; }, 4.5));
  MESSAGE("from_environment CPU trigger fired after " << seconds_since(t0) << " s");
  spin.stop();
  pressure.stop();
}

TEST_CASE("Pressure::from_environment with an AF_UNIX socket: the trigger is sent, data is pressure, EOF is Hup") {
  evw_test::TempDir dir;
  const std::string path = dir.path() + "/pressure.sock";
  evw_test::Fd server(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  REQUIRE(::bind(server.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(server.get(), 1) == 0);
  const std::string trigger = std::string("some 150000 2000000") + '\0';
  Env watch("MEMORY_PRESSURE_WATCH", path.c_str());
  Env write("MEMORY_PRESSURE_WRITE", base64(trigger).c_str());
  evw::Loop loop;
  std::vector<int> got;
  evw::Pressure pressure = evw::Pressure::from_environment(loop, [&](evw::Pressure&, int revents) { got.push_back(revents); });
  CHECK(pressure.is_stream());
  CHECK(pressure.path() == path);
  CHECK(pressure.trigger() == "some 150000 2000000");
  CHECK(pressure.config().threshold == 150ms);
  evw_test::Fd peer(::accept4(server.get(), nullptr, nullptr, SOCK_CLOEXEC));
  REQUIRE(peer.get() >= 0);
  char buf[64] = {};
  const ssize_t n = ::recv(peer.get(), buf, sizeof buf, 0);
  CHECK(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0) == trigger);
  pressure.start();
  settle(loop);
  CHECK(got.empty());
  REQUIRE(::send(peer.get(), "pressure!", 9, 0) == 9);
  CHECK(run_until(loop, [&] { return got.size() == 1; }));
  CHECK(got == std::vector<int>{evw::Event::Pri});
  settle(loop);
  CHECK(got.size() == 1);  // what came was read and dropped: one callback
  // Priorities and set_priority while readable but not yet delivered.
  pressure.set_priority(1);
  REQUIRE(::send(peer.get(), "x", 1, 0) == 1);
  CHECK(run_until(loop, [&] { return got.size() == 2; }));
  peer.reset();  // the service manager went away
  CHECK(run_until(loop, [&] { return got.size() == 3; }));
  CHECK(got.back() == evw::Event::Hup);
  CHECK_FALSE(pressure.is_active());
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("Pressure::from_environment: turned off, bad values, nothing there, and systemd's default") {
  evw::Loop loop;
  auto cb = [](evw::Pressure&, int) {};
  for (const char* off : {"", "/dev/null"}) {
    Env watch("MEMORY_PRESSURE_WATCH", off);
    try {
      (void)evw::Pressure::from_environment(loop, cb);
      FAIL("not turned off");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == EHOSTDOWN);  // as sd-event says it
    }
  }
  {
    Env watch("MEMORY_PRESSURE_WATCH", "relative/path");
    CHECK_THROWS_AS((void)evw::Pressure::from_environment(loop, cb), std::invalid_argument);
  }
  {
    Env watch("MEMORY_PRESSURE_WATCH", "/proc/../proc/pressure/memory");
    CHECK_THROWS_AS((void)evw::Pressure::from_environment(loop, cb), std::invalid_argument);
  }
  {
    Env watch("MEMORY_PRESSURE_WATCH", "/proc/pressure/memory");
    Env write("MEMORY_PRESSURE_WRITE", "not*base64");
    CHECK_THROWS_AS((void)evw::Pressure::from_environment(loop, cb), std::invalid_argument);
  }
  {
    // A PSI file without a trigger reports POLLPRI|POLLERR at once: not pressure.
    Env watch("MEMORY_PRESSURE_WATCH", "/proc/pressure/memory");
    Env write("MEMORY_PRESSURE_WRITE", nullptr);
    CHECK_THROWS_AS((void)evw::Pressure::from_environment(loop, cb), std::invalid_argument);
  }
  {
    Env watch("MEMORY_PRESSURE_WATCH", "/nonexistent/evw.sock");
    try {
      (void)evw::Pressure::from_environment(loop, cb);
      FAIL("a missing path was accepted");
    } catch (const std::system_error& e) {
      CHECK(e.code() == std::errc::no_such_file_or_directory);
    }
  }
  {
    Env watch("MEMORY_PRESSURE_WATCH", "/tmp");
    try {
      (void)evw::Pressure::from_environment(loop, cb);
      FAIL("a directory was accepted");
    } catch (const std::system_error& e) {
      CHECK(e.code() == std::errc::is_a_directory);
    }
  }
  {
    evw_test::TempDir dir;
    const std::string plain = dir.path() + "/plain";
    evw_test::Fd fd(::open(plain.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    Env watch("MEMORY_PRESSURE_WATCH", plain.c_str());
    try {
      (void)evw::Pressure::from_environment(loop, cb);
      FAIL("a regular file outside procfs/cgroupfs was accepted");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == ENOTTY);
    }
  }
  CHECK(loop.watcher_count() == 0);
  if (::access("/proc/pressure/memory", R_OK) != 0) EVW_SKIP("no PSI in this kernel (/proc/pressure)");
  Env unset("MEMORY_PRESSURE_WATCH", nullptr);
  evw::Pressure def = evw::Pressure::from_environment(loop, cb);
  // This process's own cgroup v2 memory.pressure where there is one, else the system's.
  std::string own;
  {
    std::istringstream in(evw_test::read_file("/proc/self/cgroup"));
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("0::", 0) == 0) own = evw_test::cgroup2_root() + (line == "0::/" ? "" : line.substr(3));
  }
  const bool has_own = !evw_test::cgroup2_root().empty() && ::access((own + "/memory.pressure").c_str(), W_OK) == 0;
  CHECK(def.path() == (has_own ? own + "/memory.pressure" : std::string("/proc/pressure/memory")));
  CHECK(def.config().cgroup == (has_own ? own : std::string()));
  CHECK(def.trigger() == "some 200000 2000000");
  CHECK(def.config().resource == evw::Resource::Memory);
}

TEST_CASE("Pressure in a coroutine: co_await pressure.next() on a fed event") {
  REQUIRE_PSI();
  evw::Loop loop;
  int callbacks = 0;
  evw::Pressure pressure(loop, cpu_in(""), [&](evw::Pressure&, int) { ++callbacks; });
  int revents = 0;
  bool done = false;
  auto task = [&]() -> evw::Task<void> {
    revents = co_await pressure.next();
    done = true;
  };
  evw::spawn(loop, task());
  loop.run(evw::Run::NoWait);
  CHECK(pressure.is_active());
  pressure.feed(evw::Event::Pri);
  loop.run(evw::Run::NoWait);  // libev polls before it runs fed events: do not block for one
  CHECK(done);
  CHECK(revents == evw::Event::Pri);
  CHECK(callbacks == 1);
  CHECK_FALSE(pressure.is_active());
}

