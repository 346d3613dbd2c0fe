// libFuzzer harness: evw::Gpio's sysfs side (export, the attribute writes,
// the priming read of `value` and what it makes of the bytes, set(), the
// unexport), through the public API against a fake sysfs tree of regular
// files in a temporary directory. The parsing of `value` is internal to
// watchers/gpio.cpp (read_level), so it is reached through Gpio::value().
//
// The input chooses the line, the GpioConfig (also invalid ones: bad enum
// values, negative/NaN/infinite debounce, an empty root), which files exist,
// and the bytes in `value`. Every outcome is checked: std::invalid_argument
// for bad arguments, std::system_error with the right errno for a broken
// tree (ENOENT, EIO for an empty `value`, EPERM from epoll for a regular
// file at start()), else value() is what sysfs would mean by those bytes and
// the attribute files hold what the kernel expects. Any disagreement aborts.
#include <evw/evw.hpp>

#include <fcntl.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

namespace {

std::string g_root;
evw::Loop* g_loop = nullptr;

[[noreturn]] void mismatch(const std::string& what) {
  std::fprintf(stderr, "gpio_sysfs: %s\n", what.c_str());
  std::abort();
}

void put(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) mismatch("cannot create " + path);
  if (!text.empty() && ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    mismatch("cannot write " + path);
  ::close(fd);
}

std::string get(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "<missing>";
  char buf[64];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

const char* const kAttributes[] = {"direction", "active_low", "edge", "value"};

void clear_tree() {
  for (int line = 0; line < 10; ++line) {
    const std::string dir = g_root + "/gpio" + std::to_string(line);
    for (const char* a : kAttributes) ::unlink((dir + "/" + a).c_str());
    ::rmdir(dir.c_str());
  }
  ::unlink((g_root + "/export").c_str());
  ::unlink((g_root + "/unexport").c_str());
}

void make_line(int line, bool with_value, const std::string& value) {
  const std::string dir = g_root + "/gpio" + std::to_string(line);
  ::mkdir(dir.c_str(), 0755);
  for (const char* a : kAttributes)
    if (std::string(a) != "value") put(dir + "/" + a, "");
  if (with_value) put(dir + "/value", value);
}

const char* edge_name(evw::Edge e) {
  switch (e) {
    case evw::Edge::None: return "none";
    case evw::Edge::Rising: return "rising";
    case evw::Edge::Falling: return "falling";
    case evw::Edge::Both: return "both";
  }
  return "?";
}

// What sysfs means by the bytes of `value` (the kernel writes "0\n" or "1\n";
// anything else is read the way evw reads it: 0 only for a leading '0').
int level_of(const std::string& text) { return text[0] == '0' ? 0 : 1; }

struct Expected {
  enum Kind { Ok, Invalid, System } kind = Ok;
  int error = 0;
};

template <class F>
void expect(const Expected& want, const char* what, F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    if (want.kind != Expected::Invalid) mismatch(std::string(what) + ": unexpected invalid_argument: " + e.what());
    return;
  } catch (const std::system_error& e) {
    if (want.kind != Expected::System || e.code().value() != want.error)
      mismatch(std::string(what) + ": unexpected system_error " + std::to_string(e.code().value()) + ": " + e.what());
    return;
  } catch (const std::exception& e) {
    mismatch(std::string(what) + ": unexpected exception: " + e.what());
  }
  if (want.kind != Expected::Ok) mismatch(std::string(what) + ": did not throw");
}

double debounce_of(FuzzedDataProvider& fdp) {
  switch (fdp.ConsumeIntegralInRange<int>(0, 6)) {
    case 0: return 0.0;
    case 1: return 0.001;
    case 2: return -1.0;
    case 3: return std::numeric_limits<double>::quiet_NaN();
    case 4: return std::numeric_limits<double>::infinity();
    case 5: return -0.0;
    default: return fdp.ConsumeFloatingPoint<double>();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // On tmpfs when there is one: a run is some seventy file operations.
  struct stat st {};
  std::string tmpl = ::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && ::access("/dev/shm", W_OK) == 0
                         ? "/dev/shm/evw-fuzz-sysfs.XXXXXX"
                         : "/tmp/evw-fuzz-sysfs.XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) mismatch("mkdtemp");
  g_root = tmpl.c_str();
  g_loop = new evw::Loop;
  std::atexit([] {
    clear_tree();
    ::rmdir(g_root.c_str());
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  const int line = fdp.ConsumeIntegralInRange<int>(-2, 9);
  const int line2 = fdp.ConsumeIntegralInRange<int>(0, 9);
  const int edge_raw = fdp.ConsumeIntegralInRange<int>(-1, 4);
  const bool active_low = fdp.ConsumeBool();
  const double debounce = debounce_of(fdp);
  const int root_form = fdp.ConsumeIntegralInRange<int>(0, 7);  // 0: empty root; 1..: trailing slashes
  const bool export_missing = fdp.ConsumeIntegralInRange<int>(0, 15) == 0;
  const bool dir_missing = fdp.ConsumeIntegralInRange<int>(0, 15) == 0;
  const bool value_missing = fdp.ConsumeIntegralInRange<int>(0, 15) == 0;
  const std::string value1 = fdp.ConsumeRandomLengthString(24);
  const std::string value2 = fdp.ConsumeRandomLengthString(24);
  const std::string value3 = fdp.ConsumeRandomLengthString(24);
  const bool flip = fdp.ConsumeBool();

  clear_tree();
  if (!export_missing) put(g_root + "/export", "");
  put(g_root + "/unexport", "");
  if (line >= 0 && !dir_missing) make_line(line, !value_missing, value1);
  if (line2 != line) make_line(line2, true, value3);

  evw::GpioConfig config;
  config.sysfs_root = root_form == 0 ? std::string() : g_root + std::string(static_cast<std::size_t>(root_form - 1) % 3, '/');
  config.edge = static_cast<evw::Edge>(edge_raw);
  config.active_low = active_low;
  config.debounce = debounce;

  Expected want;
  const bool invalid = line < 0 || edge_raw < 0 || edge_raw > 3 || !std::isfinite(debounce) || debounce < 0 ||
                       root_form == 0;
  if (invalid) want = {Expected::Invalid, 0};
  else if (export_missing || dir_missing || value_missing) want = {Expected::System, ENOENT};
  else if (value1.empty()) want = {Expected::System, EIO};

  std::unique_ptr<evw::Gpio> g;
  expect(want, "Gpio()", [&] { g = std::make_unique<evw::Gpio>(*g_loop, line, config, [](evw::Gpio&, int) {}); });
  if (!g) {
    // A line it exported and could not set up is unexported again.
    if (!invalid && !export_missing && get(g_root + "/unexport") != std::to_string(line))
      mismatch("a failed setup did not unexport line " + std::to_string(line));
    return 0;
  }
  const std::string dir = g_root + "/gpio" + std::to_string(line) + "/";
  if (g->value() != level_of(value1)) mismatch("value() does not match the bytes of value");
  if (!g->exported() || get(g_root + "/export") != std::to_string(line)) mismatch("export");
  if (get(dir + "direction") != "in") mismatch("direction is not \"in\"");
  if (get(dir + "active_low") != (active_low ? "1" : "0")) mismatch("active_low");
  if (get(dir + "edge") != edge_name(config.edge)) mismatch("edge");
  if (g->config().sysfs_root != g_root) mismatch("sysfs_root is not normalised");
  // epoll refuses regular files: start() says so and leaves the watcher stopped.
  expect({Expected::System, EPERM}, "start()", [&] { g->start(); });
  if (g->is_active()) mismatch("active after a failed start");

  // Reconfigure the same line: `value` is read again. (Regular files keep
  // their old bytes past a shorter write, sysfs attributes do not: empty them.)
  for (const char* a : {"direction", "active_low", "edge"}) put(dir + a, "");
  put(dir + "value", value2);
  evw::GpioConfig again = g->config();
  again.active_low = flip ? !active_low : active_low;
  again.edge = flip ? evw::Edge::Rising : evw::Edge::Falling;
  const int before = g->value();
  expect(value2.empty() ? Expected{Expected::System, EIO} : Expected{}, "set(config)", [&] { g->set(again); });
  if (!value2.empty()) {
    if (g->value() != level_of(value2)) mismatch("value() after set()");
    if (get(dir + "edge") != edge_name(again.edge)) mismatch("edge after set()");
  } else if (g->value() != before) {
    mismatch("a failed set() changed value()");
  }

  // Move to another line: the new one is set up, the old one unexported.
  if (line2 != line) {
    Expected w;
    if (value3.empty()) w = {Expected::System, EIO};
    expect(w, "set(line2)", [&] { g->set(line2, again); });
    if (value3.empty()) {
      if (g->line() != line) mismatch("a failed set(line) changed the line");
    } else {
      if (g->line() != line2 || g->value() != level_of(value3)) mismatch("set(line2)");
      if (get(g_root + "/unexport") != std::to_string(line)) mismatch("the old line was not unexported");
    }
  }
  const int last = g->line();
  g.reset();
  if (get(g_root + "/unexport") != std::to_string(last)) mismatch("the destructor did not unexport");
  return 0;
}
