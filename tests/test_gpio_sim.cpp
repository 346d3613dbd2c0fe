// gpio-sim against real syscalls: the sysfs tree, the kernel's error codes, POLLPRI|POLLERR
// notifications through poll and epoll, the fixture's cleanup, and the gpio-sim program.
#include "../tools/gpio-sim/gpio_sim.hpp"

#include "support.hpp"

#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using evw::sim::GpioSim;
using evw::sim::Options;
using evw_test::Fd;

constexpr int kWaitMs = 2000;  // generous bound for an event that must come

// Writes `text` in one write(2); returns 0, or the errno of open or write.
int write_file(const std::string& path, std::string_view text) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0) return errno;
  const ssize_t n = ::write(fd.get(), text.data(), text.size());
  if (n < 0) return errno;
  REQUIRE(static_cast<std::size_t>(n) == std::min<std::size_t>(text.size(), 4096));
  return 0;
}

std::string read_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE_MESSAGE(fd.get() >= 0, path << ": " << std::strerror(errno));
  char buf[256];
  const ssize_t n = ::read(fd.get(), buf, sizeof buf);
  REQUIRE_MESSAGE(n >= 0, path << ": " << std::strerror(errno));
  return std::string(buf, static_cast<std::size_t>(n));
}

int open_errno(const std::string& path, int flags) {
  Fd fd(::open(path.c_str(), flags | O_CLOEXEC, 0644));
  return fd.get() < 0 ? errno : 0;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::set<std::string> list_dir(const std::string& path) {
  std::set<std::string> names;
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(fd.get() >= 0);
  DIR* dir = ::fdopendir(fd.release());
  REQUIRE(dir != nullptr);
  while (const dirent* entry = ::readdir(dir)) names.insert(entry->d_name);
  ::closedir(dir);
  return names;
}

bool is_mounted(const std::string& path) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mountpoint;
    fields >> id >> parent >> device >> root >> mountpoint;
    if (mountpoint == path) return true;
  }
  return false;
}

// An exported line's value file, opened as evw::Gpio opens it, primed, and watched for
// EPOLLPRI by its own epoll instance.
class ValueWatch {
 public:
  ValueWatch(const GpioSim& sim, unsigned line)
      : fd_(::open((sim.root() + "/gpio" + std::to_string(line) + "/value").c_str(),
                   O_RDONLY | O_NONBLOCK | O_CLOEXEC)),
        epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    REQUIRE(fd_.get() >= 0);
    REQUIRE(epoll_.get() >= 0);
    consume();
    epoll_event event{};
    event.events = EPOLLPRI;
    event.data.fd = fd_.get();
    REQUIRE(::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd_.get(), &event) == 0);
  }

  int fd() const { return fd_.get(); }

  /// The events epoll reports within timeout_ms (0 if none).
  std::uint32_t wait(int timeout_ms) {
    epoll_event event{};
    const int n = ::epoll_wait(epoll_.get(), &event, 1, timeout_ms);
    REQUIRE(n >= 0);
    return n == 0 ? 0 : event.events;
  }

  /// What poll() says right now; unlike epoll it always asks the filesystem.
  short poll_now() {
    pollfd p{fd_.get(), POLLPRI | POLLIN, 0};
    REQUIRE(::poll(&p, 1, 0) == 1);
    return p.revents;
  }

  /// lseek(0) + read, as evw::Gpio does after each event; returns the value read.
  int consume() {
    REQUIRE(::lseek(fd_.get(), 0, SEEK_SET) == 0);
    char buf[8];
    const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    REQUIRE(n == 2);
    REQUIRE(buf[1] == '\n');
    return buf[0] - '0';
  }

 private:
  Fd fd_;
  Fd epoll_;
};

constexpr std::uint32_t kEvent = EPOLLPRI | EPOLLERR;

// Each test that uses it runs twice: served by a thread, and by a child process (the mode
// used under valgrind).
#define SERVING_MODES(opts)                                             \
  SUBCASE("served by a thread") {}                                      \
  SUBCASE("served by a child process") { (opts).separate_process = true; }

std::string program_path() {
  if (const char* env = std::getenv("GPIO_SIM_BIN"); env && *env) return env;
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  std::vector<std::string> candidates;
  if (n > 0) {
    const std::string dir = std::string(exe, static_cast<std::size_t>(n)).substr(
        0, std::string_view(exe, static_cast<std::size_t>(n)).rfind('/'));
    candidates = {dir + "/gpio-sim", dir + "/../gpio-sim"};
  }
  candidates.push_back("build/gpio-sim");
  for (const auto& candidate : candidates) {
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

struct Child {
  pid_t pid = -1;
  Fd out;  // the child's stdout
};

// Runs program with args, its stdout on a pipe (Child::out) and, if quiet, stderr to /dev/null.
Child spawn(const std::string& program, const std::vector<std::string>& args, bool quiet = false) {
  int pipe_fds[2];
  REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
  Fd read_end(pipe_fds[0]);
  Fd write_end(pipe_fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
  if (quiet) posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> words{program};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& word : words) argv.push_back(word.data());
  argv.push_back(nullptr);
  Child child;
  const int error = ::posix_spawn(&child.pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE_MESSAGE(error == 0, "posix_spawn " << program << ": " << std::strerror(error));
  child.out = std::move(read_end);
  return child;
}

std::string read_line(int fd, int timeout_ms) {
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (line.empty() || line.back() != '\n') {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) break;
    char c;
    if (::read(fd, &c, 1) != 1) break;
    line += c;
  }
  return line;
}

// Waits for the child; returns its wait status, or -1 (after killing it) on timeout.
int wait_exit(pid_t pid, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

std::string make_temp_dir() {
  std::string path = "/tmp/evw-gpio-sim-test.XXXXXX";
  REQUIRE(::mkdtemp(path.data()) != nullptr);
  return path;
}

}  // namespace

TEST_CASE("gpio-sim: the tree looks like /sys/class/gpio") {
  if (auto why = GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  const auto sim = GpioSim::in_temp_dir();
  const std::string root = sim->root();
  CHECK(root.front() == '/');
  CHECK(sim->line_count() == 64);
  CHECK(sim->serving());

  CHECK(list_dir(root) == std::set<std::string>{".", "..", "export", "unexport", "gpiochip0", "sim"});
  struct stat st {};
  REQUIRE(::stat((root + "/export").c_str(), &st) == 0);
  CHECK(st.st_mode == (S_IFREG | 0200));
  REQUIRE(::stat((root + "/unexport").c_str(), &st) == 0);
  CHECK(st.st_mode == (S_IFREG | 0200));
  REQUIRE(::stat((root + "/gpiochip0").c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  REQUIRE(::stat((root + "/gpiochip0/base").c_str(), &st) == 0);
  CHECK(st.st_mode == (S_IFREG | 0444));
  CHECK(list_dir(root + "/gpiochip0") == std::set<std::string>{".", "..", "base", "label", "ngpio"});
  CHECK(read_file(root + "/gpiochip0/base") == "0\n");
  CHECK(read_file(root + "/gpiochip0/ngpio") == "64\n");
  CHECK(read_file(root + "/gpiochip0/label") == "gpio-sim\n");

  CHECK(list_dir(root + "/sim").size() == 64 + 2);
  CHECK(exists(root + "/sim/gpio0"));
  CHECK(exists(root + "/sim/gpio63"));
  CHECK_FALSE(exists(root + "/sim/gpio64"));
  CHECK_FALSE(exists(root + "/sim/gpio01"));
  CHECK_FALSE(exists(root + "/gpio5"));
  CHECK_FALSE(exists(root + "/gpiochip1"));

  // Reading a write-only attribute or writing a read-only one: kernfs says EACCES, even to root.
  CHECK(open_errno(root + "/export", O_RDONLY) == EACCES);
  CHECK(open_errno(root + "/export", O_RDWR) == EACCES);
  CHECK(open_errno(root + "/gpiochip0/ngpio", O_WRONLY) == EACCES);
  // The namespace is fixed.
  CHECK(open_errno(root + "/newfile", O_WRONLY | O_CREAT) == EACCES);
  CHECK(::unlink((root + "/export").c_str()) == -1);
  CHECK(errno == EPERM);
  CHECK(::mkdir((root + "/dir").c_str(), 0755) == -1);
  CHECK(errno == EPERM);
}

TEST_CASE("gpio-sim: chips and lines options") {
  if (auto why = GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  CHECK_THROWS_AS(GpioSim::in_temp_dir(Options{0, 8}), std::invalid_argument);
  CHECK_THROWS_AS(GpioSim::in_temp_dir(Options{1, 0}), std::invalid_argument);
  CHECK_THROWS_AS(GpioSim::in_temp_dir(Options{1, 70000}), std::invalid_argument);
  CHECK_THROWS_AS(GpioSim::in_temp_dir(Options{3, 40000}), std::invalid_argument);

  const auto sim = GpioSim::in_temp_dir(Options{3, 8});
  const std::string root = sim->root();
  CHECK(sim->line_count() == 24);
  // Like the kernel, a chip's directory is named after its base.
  CHECK(list_dir(root) ==
        std::set<std::string>{".", "..", "export", "unexport", "gpiochip0", "gpiochip8", "gpiochip16", "sim"});
  CHECK(read_file(root + "/gpiochip16/base") == "16\n");
  CHECK(read_file(root + "/gpiochip16/ngpio") == "8\n");
  CHECK_FALSE(exists(root + "/gpiochip1"));
  CHECK_FALSE(exists(root + "/gpiochip24"));
  CHECK(exists(root + "/sim/gpio23"));
  CHECK_FALSE(exists(root + "/sim/gpio24"));
  CHECK(write_file(root + "/export", "23") == 0);
  CHECK(write_file(root + "/export", "24") == EINVAL);
}

TEST_CASE("gpio-sim: export and unexport give the kernel's errors") {
  if (auto why = GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  const auto sim = GpioSim::in_temp_dir();
  const std::string root = sim->root();
  const std::string exp = root + "/export";
  const std::string unexp = root + "/unexport";

  CHECK(write_file(exp, "5\n") == 0);
  CHECK(list_dir(root + "/gpio5") == std::set<std::string>{".", "..", "active_low", "direction", "edge", "value"});
  CHECK(list_dir(root).count("gpio5") == 1);
  CHECK(write_file(exp, "5") == EBUSY);
  CHECK(write_file(exp, "5\n") == EBUSY);
  CHECK(write_file(unexp, "5") == 0);
  CHECK_FALSE(exists(root + "/gpio5"));
  CHECK(write_file(unexp, "5") == EINVAL);  // not exported
  CHECK(write_file(unexp, "64") == EINVAL);  // no such line

  // Numbers are parsed as kstrtol(…, 0) parses them.
  CHECK(write_file(exp, "0x7") == 0);
  CHECK(exists(root + "/gpio7"));
  CHECK(write_file(exp, "010") == 0);  // octal
  CHECK(exists(root + "/gpio8"));
  CHECK(write_file(exp, "+9") == 0);
  CHECK(exists(root + "/gpio9"));
  for (const char* bad : {"64", "-1", "abc", " 5", "5 ", "5\n\n", "08", "0x", "--5", "5x", "\n", "1.0"}) {
    CAPTURE(bad);
    CHECK(write_file(exp, bad) == EINVAL);
    CHECK(write_file(unexp, bad) == EINVAL);
  }
  CHECK(write_file(exp, "99999999999999999999") == ERANGE);  // kstrtol's overflow
  // An empty write never reaches the kernel's store().
  CHECK(write_file(exp, "") == 0);
  CHECK(list_dir(root) == std::set<std::string>{".", "..", "export", "unexport", "gpiochip0", "sim", "gpio7",
                                                "gpio8", "gpio9"});
}

TEST_CASE("gpio-sim: the attributes of an exported line") {
  if (auto why = GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  const auto sim = GpioSim::in_temp_dir();
  const std::string root = sim->root();
  REQUIRE(write_file(root + "/export", "3") == 0);
  const std::string dir = root + "/gpio3/";

  CHECK(read_file(dir + "direction") == "in\n");
  CHECK(read_file(dir + "edge") == "none\n");
  CHECK(read_file(dir + "active_low") == "0\n");
  CHECK(read_file(dir + "value") == "0\n");

  SUBCASE("value is read-only on an input") {
    CHECK(write_file(dir + "value", "1") == EPERM);
    CHECK(write_file(dir + "value", "garbage") == EPERM);  // EPERM comes before parsing
  }
  SUBCASE("direction") {
    for (const char* bad : {"sideways", "IN", "in\n\n", " in", "ou", "outt", "1"}) {
      CAPTURE(bad);
      CHECK(write_file(dir + "direction", bad) == EINVAL);
    }
    CHECK(write_file(dir + "direction", "out\n") == 0);
    CHECK(read_file(dir + "direction") == "out\n");
    CHECK(read_file(dir + "value") == "0\n");
    CHECK(write_file(dir + "value", "1\n") == 0);
    CHECK(read_file(dir + "value") == "1\n");
    CHECK(read_file(root + "/sim/gpio3") == "1\n");
    CHECK(write_file(dir + "value", "0") == 0);
    CHECK(read_file(dir + "value") == "0\n");
    CHECK(write_file(dir + "value", "5") == 0);  // any non-zero number is 1
    CHECK(read_file(dir + "value") == "1\n");
    CHECK(write_file(dir + "value", "x") == EINVAL);
    CHECK(write_file(dir + "direction", "low") == 0);
    CHECK(read_file(dir + "value") == "0\n");
    CHECK(write_file(dir + "direction", "high") == 0);
    CHECK(read_file(dir + "value") == "1\n");
    CHECK(read_file(dir + "direction") == "out\n");
    CHECK(write_file(dir + "direction", "in") == 0);
    CHECK(read_file(dir + "direction") == "in\n");
  }
  SUBCASE("edge") {
    for (const char* bad : {"up", "Rising", "both\n\n", "\n", "none "}) {
      CAPTURE(bad);
      CHECK(write_file(dir + "edge", bad) == EINVAL);
    }
    for (const char* edge : {"rising", "falling", "both", "none"}) {
      CAPTURE(edge);
      CHECK(write_file(dir + "edge", std::string(edge) + "\n") == 0);
      CHECK(read_file(dir + "edge") == std::string(edge) + "\n");
    }
    // An interrupt line cannot be an output, and an output cannot take an interrupt: EIO.
    CHECK(write_file(dir + "edge", "both") == 0);
    CHECK(write_file(dir + "direction", "out") == EIO);
    CHECK(write_file(dir + "direction", "high") == EIO);
    CHECK(read_file(dir + "direction") == "in\n");
    CHECK(write_file(dir + "edge", "none") == 0);
    CHECK(write_file(dir + "direction", "out") == 0);
    CHECK(write_file(dir + "edge", "rising") == EIO);
    CHECK(write_file(dir + "edge", "none") == 0);
    CHECK(read_file(dir + "edge") == "none\n");
  }
  SUBCASE("active_low") {
    CHECK(write_file(dir + "active_low", "yes") == EINVAL);
    CHECK(write_file(dir + "active_low", "2\n") == 0);
    CHECK(read_file(dir + "active_low") == "1\n");
    CHECK(write_file(dir + "active_low", "0") == 0);
    CHECK(read_file(dir + "active_low") == "0\n");
  }
  SUBCASE("unexport resets edge and active_low") {
    CHECK(write_file(dir + "edge", "both") == 0);
    CHECK(write_file(dir + "active_low", "1") == 0);
    CHECK(write_file(root + "/unexport", "3") == 0);
    CHECK(write_file(root + "/export", "3") == 0);
    CHECK(read_file(dir + "edge") == "none\n");
    CHECK(read_file(dir + "active_low") == "0\n");
  }
  SUBCASE("shell-style writes (O_TRUNC) work") {
    Fd fd(::open((dir + "edge").c_str(), O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC, 0644));
    REQUIRE(fd.get() >= 0);
    CHECK(::write(fd.get(), "falling\n", 8) == 8);
    CHECK(read_file(dir + "edge") == "falling\n");
  }
}

TEST_CASE("gpio-sim: value honours active_low") {
  if (auto why = GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  const auto sim = GpioSim::in_temp_dir();
  const std::string root = sim->root();
  REQUIRE(write_file(root + "/export", "4") == 0);
  const std::string dir = root + "/gpio4/";

  sim->set_input(4, 1);
  CHECK(read_file(dir + "value") == "1\n");
  CHECK(write_file(dir + "active_low", "1") == 0);
  CHECK(read_file(dir + "value") == "0\n");
  sim->set_input(4, 0);
  CHECK(read_file(dir + "value") == "1\n");
  CHECK(read_file(root + "/sim/gpio4") == "0\n");  // sim/ shows the physical level

  // Outputs: value is logical, "high"/"low" are raw levels, as in the kernel.
  CHECK(write_file(dir + "direction", "out") == 0);
  CHECK(read_file(root + "/sim/gpio4") == "0\n");
  CHECK(read_file(dir + "value") == "1\n");
  CHECK(write_file(dir + "value", "0") == 0);
  CHECK(read_file(root + "/sim/gpio4") == "1\n");
  CHECK(write_file(dir + "direction", "low") == 0);
  CHECK(read_file(root + "/sim/gpio4") == "0\n");
  CHECK(read_file(dir + "value") == "1\n");
}

TEST_CASE("gpio-sim: sim/gpioN drives every line, exported or not") {
  if (auto why = GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  const auto sim = GpioSim::in_temp_dir();
  const std::string root = sim->root();
  const std::string level = root + "/sim/gpio10";

  CHECK(read_file(level) == "0\n");
  CHECK(write_file(level, "1") == 0);
  CHECK(read_file(level) == "1\n");
  CHECK(sim->input(10) == 1);
  sim->set_input(10, 0);
  CHECK(read_file(level) == "0\n");
  CHECK(write_file(level, "1\n") == 0);
  REQUIRE(write_file(root + "/export", "10") == 0);
  CHECK(read_file(root + "/gpio10/value") == "1\n");
  for (const char* bad : {"2", "01", "1\n\n", "high", " 1", "-1", "true"}) {
    CAPTURE(bad);
    CHECK(write_file(level, bad) == EINVAL);
  }
  CHECK(sim->input(10) == 1);

  // An output drives its own pin; the input level shows again once it is an input.
  REQUIRE(write_file(root + "/gpio10/direction", "out") == 0);
  CHECK(read_file(level) == "0\n");
  CHECK(write_file(level, "1") == 0);
  CHECK(read_file(level) == "0\n");
  REQUIRE(write_file(root + "/gpio10/direction", "in") == 0);
  CHECK(read_file(level) == "1\n");

  CHECK_THROWS_AS(sim->set_input(64, 1), std::out_of_range);
  CHECK_THROWS_AS(sim->set_input(0, 2), std::invalid_argument);
  CHECK_THROWS_AS(sim->input(64), std::out_of_range);
}

TEST_CASE("gpio-sim: epoll sees EPOLLPRI|EPOLLERR exactly on the selected edges") {
  if (auto why = GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  Options opts;
  SERVING_MODES(opts);
  const auto sim = GpioSim::in_temp_dir(opts);
  const std::string root = sim->root();

  struct Case {
    const char* edge;
    bool active_low;
    int expected;  // events while the pin goes 0 -> 1 -> 0 -> 1
  };
  // With active_low the logical level is 1 -> 0 -> 1 -> 0: rising and falling swap.
  const Case cases[] = {{"none", false, 0},  {"rising", false, 2}, {"falling", false, 1}, {"both", false, 3},
                        {"none", true, 0},   {"rising", true, 1},  {"falling", true, 2},  {"both", true, 3}};
  unsigned line = 20;
  for (const Case& c : cases) {
    CAPTURE(c.edge);
    CAPTURE(c.active_low);
    const std::string dir = root + "/gpio" + std::to_string(line) + "/";
    REQUIRE(write_file(root + "/export", std::to_string(line)) == 0);
    REQUIRE(write_file(dir + "edge", c.edge) == 0);
    REQUIRE(write_file(dir + "active_low", c.active_low ? "1" : "0") == 0);
    ValueWatch watch(*sim, line);
    CHECK(watch.wait(0) == 0);  // no event at open
    int events = 0;
    int step = 0;
    for (const int level : {1, 0, 1}) {
      // Drive through the control file and through the fixture, alternately.
      if (step++ % 2 == 0) REQUIRE(write_file(root + "/sim/gpio" + std::to_string(line), std::to_string(level)) == 0);
      else sim->set_input(line, level);
      const int logical = level ^ static_cast<int>(c.active_low);
      const bool rising = logical == 1;
      const std::string edge = c.edge;
      const bool expect = edge == "both" || (edge == "rising" && rising) || (edge == "falling" && !rising);
      const std::uint32_t got = watch.wait(expect ? kWaitMs : 0);
      if (got != 0) {
        ++events;
        CHECK(got == kEvent);
        CHECK(watch.wait(0) == kEvent);  // still there: nothing consumed it
        CHECK((watch.poll_now() & (POLLPRI | POLLERR)) == (POLLPRI | POLLERR));
        CHECK(watch.consume() == logical);
      }
      CHECK(watch.wait(0) == 0);
      CHECK(watch.poll_now() == POLLIN);
    }
    CHECK(events == c.expected);
    sim->set_input(line, 0);
    ++line;
  }
}

TEST_CASE("gpio-sim: an event at open until the priming read, and an event stays until lseek(0) + read") {
  if (auto why = GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  Options opts;
  SERVING_MODES(opts);
  const auto sim = GpioSim::in_temp_dir(opts);
  const std::string root = sim->root();
  REQUIRE(write_file(root + "/export", "2") == 0);
  REQUIRE(write_file(root + "/gpio2/edge", "both") == 0);

  // As kernfs: a new file reports POLLPRI|POLLERR until its first read (which
  // is why sysfs users do a priming read), and nothing after it.
  sim->set_input(2, 1);
  Fd fd(::open((root + "/gpio2/value").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  REQUIRE(fd.get() >= 0);
  pollfd p{fd.get(), POLLPRI, 0};
  CHECK(::poll(&p, 1, 0) == 1);
  CHECK(p.revents == (POLLPRI | POLLERR));
  char prime[4];
  CHECK(::pread(fd.get(), prime, sizeof prime, 0) == 2);
  CHECK(::poll(&p, 1, 0) == 0);
  p.events = POLLPRI | POLLIN;
  CHECK(::poll(&p, 1, 0) == 1);
  CHECK(p.revents == POLLIN);  // sysfs files are always readable

  ValueWatch watch(*sim, 2);
  sim->set_input(2, 0);
  REQUIRE(watch.wait(kWaitMs) == kEvent);
  CHECK(::poll(&p, 1, 0) == 1);  // the first file sees it too, independently
  CHECK(p.revents == (POLLPRI | POLLERR | POLLIN));

  // Any read clears it, also one at EOF that returns nothing: the kernel's `value` is a
  // preallocated attribute, formatted (and its event marked seen) by every read.
  char buf[8];
  CHECK(::read(watch.fd(), buf, sizeof buf) == 0);
  CHECK(watch.wait(0) == 0);
  sim->set_input(2, 1);
  REQUIRE(watch.wait(kWaitMs) == kEvent);
  // pread at 0 does, like lseek(0) + read.
  CHECK(::pread(watch.fd(), buf, sizeof buf, 0) == 2);
  CHECK(watch.wait(0) == 0);
  // The other file still has its event until it reads.
  CHECK(::poll(&p, 1, 0) == 1);
  CHECK(p.revents == (POLLPRI | POLLERR | POLLIN));
  CHECK(::lseek(fd.get(), 0, SEEK_SET) == 0);
  CHECK(::read(fd.get(), buf, sizeof buf) == 2);
  CHECK(::poll(&p, 1, 0) == 1);
  CHECK(p.revents == POLLIN);
}

TEST_CASE("gpio-sim: 1000 consumed toggles give exactly the expected count") {
  if (auto why = GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  Options opts;
  SERVING_MODES(opts);
  const auto sim = GpioSim::in_temp_dir(opts);
  const std::string root = sim->root();

  for (const auto& edge_and_count : {std::pair{"both", 1000}, std::pair{"rising", 500}}) {
    const char* const edge = edge_and_count.first;
    const int expected = edge_and_count.second;
    CAPTURE(edge);
    REQUIRE(write_file(root + "/export", "1") == 0);
    REQUIRE(write_file(root + "/gpio1/edge", edge) == 0);
    ValueWatch watch(*sim, 1);
    int events = 0;
    for (int i = 0; i < 1000; ++i) {
      const int level = (i + 1) % 2;  // 1, 0, 1, … starting from 0
      sim->set_input(1, level);
      const bool expect = std::string_view(edge) == "both" || level == 1;
      if (const std::uint32_t got = watch.wait(expect ? kWaitMs : 0); got != 0) {
        ++events;
        REQUIRE(got == kEvent);
        REQUIRE(watch.consume() == level);
      }
      REQUIRE(watch.wait(0) == 0);
    }
    CHECK(events == expected);
    sim->set_input(1, 0);
    REQUIRE(write_file(root + "/unexport", "1") == 0);
  }
}

TEST_CASE("gpio-sim: set_input from another thread while this one reads and polls") {
  if (auto why = GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  Options opts;
  SERVING_MODES(opts);
  const auto sim = GpioSim::in_temp_dir(opts);
  const std::string root = sim->root();
  REQUIRE(write_file(root + "/export", "0") == 0);
  REQUIRE(write_file(root + "/gpio0/edge", "both") == 0);
  ValueWatch watch(*sim, 0);
  std::atomic<bool> done{false};
  std::thread toggler([&] {
    for (int i = 0; i < 2000; ++i) sim->set_input(0, (i + 1) % 2);
    done = true;
  });
  int seen = 0;
  while (!done) {
    if (watch.wait(1) != 0) {
      ++seen;
      watch.consume();
    }
    CHECK(read_file(root + "/gpio0/edge") == "both\n");
  }
  toggler.join();
  // Whatever happened during the race, the last toggle left an event or it was consumed.
  CHECK(seen >= 0);
  sim->set_input(0, 1);
  CHECK(watch.wait(kWaitMs) == kEvent);
  CHECK(watch.consume() == 1);
  CHECK(watch.wait(0) == 0);
}

TEST_CASE("gpio-sim: garbage writes get the kernel's errors and never break it") {
  if (auto why = GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  const auto sim = GpioSim::in_temp_dir();
  const std::string root = sim->root();
  REQUIRE(write_file(root + "/export", "3") == 0);

  std::mt19937 random(12345);
  std::vector<std::string> garbage{"\n", "\x01", "\xff\xfe\xfd", "-", "0x", "\t1", "1\n2", "in out",
                                   std::string(4096, 'A'), std::string(5000, '.')};
  for (int i = 0; i < 20; ++i) {
    std::string blob(1 + random() % 300, '\0');
    for (char& c : blob) c = static_cast<char>(random());
    blob[0] = '\x01';  // never a valid word or number, whatever follows
    garbage.push_back(blob);
  }
  garbage.push_back(std::string(200000, 'z'));

  struct Target {
    std::string path;
    int error;  // what garbage gets
  };
  const Target targets[] = {{root + "/export", EINVAL},          {root + "/unexport", EINVAL},
                            {root + "/sim/gpio3", EINVAL},       {root + "/gpio3/direction", EINVAL},
                            {root + "/gpio3/edge", EINVAL},      {root + "/gpio3/active_low", EINVAL},
                            {root + "/gpio3/value", EPERM}};
  for (const Target& target : targets) {
    CAPTURE(target.path);
    for (const std::string& text : garbage) {
      CAPTURE(text.size());
      CHECK(write_file(target.path, text) == target.error);
    }
  }
  // Huge numbers overflow a long (the store sees the first page of the 5000 digits).
  CHECK(write_file(root + "/gpio3/active_low", std::string(30, '7')) == ERANGE);
  CHECK(write_file(root + "/gpio3/active_low", std::string(5000, '7')) == ERANGE);
  CHECK(write_file(root + "/export", std::string(5000, '7')) == ERANGE);
  // Only the part before a NUL byte counts, as the kernel's store() sees a C string; a
  // write is capped at one page, like sysfs.
  {
    Fd fd(::open((root + "/sim/gpio3").c_str(), O_WRONLY | O_CLOEXEC));
    REQUIRE(fd.get() >= 0);
    std::string one_then_nul(10000, '\0');
    one_then_nul[0] = '1';
    CHECK(::write(fd.get(), one_then_nul.data(), one_then_nul.size()) == 4096);
    CHECK(sim->input(3) == 1);
    CHECK(::write(fd.get(), "0\0junk", 6) == 6);
    CHECK(sim->input(3) == 0);
  }
  CHECK(sim->serving());
  CHECK(read_file(root + "/gpio3/direction") == "in\n");
  CHECK(read_file(root + "/gpio3/edge") == "none\n");
  CHECK(list_dir(root) == std::set<std::string>{".", "..", "export", "unexport", "gpiochip0", "sim", "gpio3"});
}

TEST_CASE("gpio-sim: unexport wakes no poller and leaves open files stale") {
  if (auto why = GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  Options opts;
  SERVING_MODES(opts);
  const auto sim = GpioSim::in_temp_dir(opts);
  const std::string root = sim->root();
  REQUIRE(write_file(root + "/export", "6") == 0);
  REQUIRE(write_file(root + "/gpio6/edge", "both") == 0);
  ValueWatch watch(*sim, 6);
  Fd edge(::open((root + "/gpio6/edge").c_str(), O_RDWR | O_CLOEXEC));
  REQUIRE(edge.get() >= 0);

  REQUIRE(write_file(root + "/unexport", "6") == 0);
  // As the kernel: removing the node wakes nobody, but asking it again (poll, or a new
  // epoll registration) gets POLLPRI|POLLERR, as from any removed kernfs node.
  CHECK(watch.wait(100) == 0);
  CHECK((watch.poll_now() & (POLLPRI | POLLERR)) == (POLLPRI | POLLERR));
  char buf[8];
  CHECK(::lseek(watch.fd(), 0, SEEK_SET) == 0);
  CHECK(::read(watch.fd(), buf, sizeof buf) == -1);
  CHECK(errno == ENODEV);
  CHECK(::write(edge.get(), "none", 4) == -1);
  CHECK(errno == ENODEV);
  // A new export is a new node: the old files stay dead, new ones work.
  REQUIRE(write_file(root + "/export", "6") == 0);
  CHECK(::pread(watch.fd(), buf, sizeof buf, 0) == -1);
  CHECK(errno == ENODEV);
  CHECK(read_file(root + "/gpio6/value") == "0\n");
}

TEST_CASE("gpio-sim: the fixture unmounts and cleans up, even with files left open") {
  if (auto why = GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  Options opts;
  SERVING_MODES(opts);
  const int fds_before = evw_test::open_fd_count();
  std::string root;
  Fd left_open;
  {
    const auto sim = GpioSim::in_temp_dir(opts);
    root = sim->root();
    CHECK(is_mounted(root));
    REQUIRE(write_file(root + "/export", "9") == 0);
    REQUIRE(write_file(root + "/gpio9/edge", "rising") == 0);
    left_open = Fd(::open((root + "/gpio9/value").c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(left_open.get() >= 0);
    pollfd p{left_open.get(), POLLPRI, 0};
    CHECK(::poll(&p, 1, 0) == 1);  // leaves a poll handle registered in the filesystem
  }
  CHECK_FALSE(is_mounted(root));
  CHECK_FALSE(exists(root));  // in_temp_dir's directory is gone
  char buf[8];
  CHECK(::pread(left_open.get(), buf, sizeof buf, 0) == -1);
  CHECK(errno == ENOTCONN);
  left_open.reset();
  CHECK(evw_test::open_fd_count() == fds_before);

  // A fixture on a directory it did not make leaves the directory.
  const std::string dir = make_temp_dir();
  {
    GpioSim sim(dir, opts);
    CHECK(sim.root() == dir);
    CHECK(is_mounted(dir));
    CHECK(sim.input(0) == 0);
    // Someone unmounts it underneath: serving stops, and the destructor still works.
    REQUIRE(::umount2(dir.c_str(), 0) == 0);
    for (int i = 0; i < 200 && sim.serving(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK_FALSE(sim.serving());
  }
  CHECK_FALSE(is_mounted(dir));
  CHECK(::rmdir(dir.c_str()) == 0);
  CHECK(evw_test::open_fd_count() == fds_before);

  try {
    GpioSim missing("/nonexistent/evw-gpio-sim");
    FAIL("mounted on a missing directory");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == ENOENT);
  }
  CHECK_THROWS_AS(GpioSim("/proc/self/status"), std::system_error);
}

TEST_CASE("gpio-sim: the program mounts, serves and unmounts on SIGTERM") {
  if (auto why = GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  const std::string program = program_path();
  REQUIRE_MESSAGE(!program.empty(), "gpio-sim binary not found next to the test binary; set GPIO_SIM_BIN");

  SUBCASE("SIGTERM") {
    const std::string dir = make_temp_dir();
    Child child = spawn(program, {dir, "--chips", "2", "--lines", "16"});
    const std::string line = read_line(child.out.get(), 5000);
    CHECK(line.rfind("gpio-sim: mounted at " + dir, 0) == 0);
    CHECK(is_mounted(dir));
    CHECK(read_file(dir + "/gpiochip16/base") == "16\n");
    CHECK(write_file(dir + "/export", "17") == 0);
    CHECK(write_file(dir + "/sim/gpio17", "1") == 0);
    CHECK(read_file(dir + "/gpio17/value") == "1\n");
    REQUIRE(::kill(child.pid, SIGTERM) == 0);
    const int status = wait_exit(child.pid, 5000);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK_FALSE(is_mounted(dir));
    if (is_mounted(dir)) ::umount2(dir.c_str(), MNT_DETACH);
    CHECK(::rmdir(dir.c_str()) == 0);
  }
  SUBCASE("an external umount ends it too") {
    const std::string dir = make_temp_dir();
    Child child = spawn(program, {dir}, true);
    REQUIRE(read_line(child.out.get(), 5000).rfind("gpio-sim: mounted at", 0) == 0);
    CHECK(read_file(dir + "/gpiochip0/ngpio") == "64\n");
    REQUIRE(::umount2(dir.c_str(), 0) == 0);
    const int status = wait_exit(child.pid, 5000);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(::rmdir(dir.c_str()) == 0);
  }
  SUBCASE("bad arguments") {
    Child usage = spawn(program, {}, true);
    CHECK(wait_exit(usage.pid, 5000) == (2 << 8));
    Child bad = spawn(program, {"/tmp", "--lines", "zero"}, true);
    CHECK(wait_exit(bad.pid, 5000) == (2 << 8));
    Child missing = spawn(program, {"/nonexistent/evw-gpio-sim"}, true);
    CHECK(wait_exit(missing.pid, 5000) == (1 << 8));
  }
}
