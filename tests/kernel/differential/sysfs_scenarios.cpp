// sysfs_scenarios — one script of sysfs GPIO operations, run against any /sys/class/gpio:
// the kernel's (in the tools/kernel-gpio guest) or evw's FUSE simulator (tools/gpio-sim).
// It prints a transcript that does not depend on which one it ran on (line numbers relative
// to the chip's base, errnos and poll bits by name), so two transcripts can be compared
// line by line: tests/kernel/differential/run.sh does that.
//
//   sysfs_scenarios                                    in the guest: the EVW_KGPIO_* chip
//   sysfs_scenarios --root DIR --base N --lines M      a gpio-sim mount (inputs: DIR/sim/gpioN)
//
// A line that starts with "~" is a known difference (tools/gpio-sim/README.md, DIFFERENCES
// FROM THE KERNEL): shown by the comparison, not failed.
// Plain syscalls, no evw: this checks the files evw's Gpio is built on.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Target {
  std::string root;  // the sysfs GPIO directory
  int base = 0;      // number of the chip's line 0
  int lines = 0;
  std::string kernel_sim;  // kernel: .../gpiochipN, whose sim_gpioK/pull drives line K
  std::string fuse_sim;    // gpio-sim: <mount>/sim, whose gpioN takes "0"/"1"
};

Target target;
bool known_next = false;  // the next transcript line is a known difference

void out(const std::string& line) {
  std::printf("%s%s\n", known_next ? "~ " : "  ", line.c_str());
  std::fflush(stdout);
  known_next = false;
}

/// The next line of the transcript differs from the kernel for a reason gpio-sim's
/// README gives: still shown, never failed.
void known() { known_next = true; }

std::string quoted(std::string_view text) {
  std::string q = "\"";
  for (char c : text) {
    if (c == '\n') q += "\\n";
    else if (c == '\0') q += "\\0";
    else if (c == '"') q += "\\\"";
    else q += c;
  }
  return q + "\"";
}

std::string error_name(int err) {
  const char* name = ::strerrorname_np(err);
  return name ? name : "errno " + std::to_string(err);
}

/// A path relative to the root, with line numbers relative to the base: "gpio+3/value".
std::string line_dir(int k) { return "gpio" + std::to_string(target.base + k); }
std::string shown(const std::string& rel) {
  const std::string& s = rel;
  const std::size_t slash = s.find('/');
  const std::string rest = slash == std::string::npos ? "" : s.substr(slash);
  if (s.rfind("gpiochip", 0) == 0) return "gpiochip+0" + rest;
  if (s.rfind("gpio", 0) == 0) {
    const int n = std::atoi(s.substr(4, slash - 4).c_str());
    return "gpio+" + std::to_string(n - target.base) + rest;
  }
  return s;
}
std::string path(const std::string& rel) { return target.root + "/" + rel; }

std::string events_name(unsigned ev) {
  static const std::pair<unsigned, const char*> bits[] = {
      {POLLIN, "IN"},         {POLLPRI, "PRI"},       {POLLOUT, "OUT"}, {POLLERR, "ERR"},
      {POLLHUP, "HUP"},       {POLLNVAL, "NVAL"},     {POLLRDNORM, "RDNORM"},
      {POLLRDBAND, "RDBAND"}, {POLLWRNORM, "WRNORM"}, {POLLWRBAND, "WRBAND"}};
  std::string s;
  for (auto [bit, name] : bits)
    if (ev & bit) {
      s += s.empty() ? "" : "|";
      s += name;
      ev &= ~bit;
    }
  if (ev) s += (s.empty() ? "" : "|") + std::to_string(ev);
  return s.empty() ? "0" : s;
}

// ---- operations: each does one thing and prints one transcript line -------------------

/// Writes text; the transcript shows it quoted, or as `display` (line numbers relative).
int write_bytes(const std::string& rel, std::string_view text, bool print = true, const std::string& display = "") {
  const int fd = ::open(path(rel).c_str(), O_WRONLY | O_CLOEXEC);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    if (::write(fd, text.data(), text.size()) < 0) err = errno;
    ::close(fd);
  }
  if (print)
    out("write " + shown(rel) + " " + (display.empty() ? quoted(text) : display) + " -> " +
        (err ? error_name(err) : "ok"));
  return err;
}

/// The number of line k as text, as export/unexport take it.
std::string number(int k) { return std::to_string(target.base + k); }

/// Writes a line number, shown as "<+k>": export and unexport take global numbers.
int write_number(const std::string& rel, int k, const std::string& before = "", const std::string& after = "") {
  return write_bytes(rel, before + number(k) + after, true, quoted(before + "<+" + std::to_string(k) + ">" + after));
}

void export_line(int k) { write_number("export", k); }
void unexport_line(int k) { write_number("unexport", k); }

std::string read_all(const std::string& rel, int* err) {
  const int fd = ::open(path(rel).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return "";
  }
  char buf[4096];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  *err = n < 0 ? errno : 0;
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

void read_file(const std::string& rel) {
  int err = 0;
  const std::string text = read_all(rel, &err);
  out("read " + shown(rel) + " -> " + (err ? error_name(err) : quoted(text)));
}

void stat_file(const std::string& rel) {
  struct stat st {};
  if (::stat(path(rel).c_str(), &st) != 0) {
    out("stat " + shown(rel) + " -> " + error_name(errno));
    return;
  }
  char mode[16];
  std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
  out("stat " + shown(rel) + " -> " + (S_ISDIR(st.st_mode) ? "directory " : S_ISREG(st.st_mode) ? "file " : "other ") +
      mode);
}

void open_file(const std::string& rel, int flags, const char* flags_name) {
  const int fd = ::open(path(rel).c_str(), flags | O_CLOEXEC);
  const int err = fd < 0 ? errno : 0;
  if (fd >= 0) ::close(fd);
  out(std::string("open ") + shown(rel) + " " + flags_name + " -> " + (err ? error_name(err) : "ok"));
}

/// Drives the input level of line k, the way each target can.
void drive(int k, int level) {
  int err;
  if (!target.kernel_sim.empty()) {
    const std::string pull = target.kernel_sim + "/sim_gpio" + std::to_string(k) + "/pull";
    const int fd = ::open(pull.c_str(), O_WRONLY | O_CLOEXEC);
    const char* text = level ? "pull-up" : "pull-down";
    err = fd < 0 || ::write(fd, text, std::strlen(text)) < 0 ? errno : 0;
    if (fd >= 0) ::close(fd);
  } else {
    err = write_bytes("sim/gpio" + number(k), level ? "1" : "0", false);
  }
  out("drive +" + std::to_string(k) + " " + (level ? "high" : "low") + (err ? " -> " + error_name(err) : ""));
}

/// drive() without a transcript line, for loops.
void drive_quietly(int k, int level) {
  if (!target.kernel_sim.empty()) {
    const std::string pull = target.kernel_sim + "/sim_gpio" + std::to_string(k) + "/pull";
    const int fd = ::open(pull.c_str(), O_WRONLY | O_CLOEXEC);
    const char* text = level ? "pull-up" : "pull-down";
    if (fd >= 0) {
      if (::write(fd, text, std::strlen(text)) < 0) out("drive +" + std::to_string(k) + " -> " + error_name(errno));
      ::close(fd);
    }
  } else if (const int err = write_bytes("sim/gpio" + number(k), level ? "1" : "0", false)) {
    out("drive +" + std::to_string(k) + " -> " + error_name(err));
  }
}

/// An open value file, watched by poll and by its own epoll set.
struct ValueFd {
  int fd = -1;
  int epoll = -1;
  std::string rel;

  explicit ValueFd(int k) : rel(line_dir(k) + "/value") {
    fd = ::open(path(rel).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    out("open " + shown(rel) + " -> " + (fd < 0 ? error_name(errno) : "ok"));
    epoll = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd >= 0) watch(EPOLLPRI);
  }
  ~ValueFd() {
    if (epoll >= 0) ::close(epoll);
    if (fd >= 0) ::close(fd);
  }
  ValueFd(const ValueFd&) = delete;
  ValueFd& operator=(const ValueFd&) = delete;

  /// (Re)registers the fd in a new epoll set for `events`: a fresh registration polls now.
  void watch(unsigned events) {
    if (epoll >= 0) ::close(epoll);
    epoll = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    const int r = ::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev);
    if (r != 0) out("epoll_ctl ADD " + events_name(events) + " -> " + error_name(errno));
  }
  /// poll(2) with `events` and a timeout: what it reports.
  void poll_for(unsigned events, int timeout_ms) {
    pollfd p{fd, static_cast<short>(events), 0};
    const int n = ::poll(&p, 1, timeout_ms);
    out("poll " + events_name(events) + " " + std::to_string(timeout_ms) + "ms -> " +
        (n < 0 ? error_name(errno) : n == 0 ? "0" : events_name(static_cast<unsigned short>(p.revents))));
  }
  /// epoll_wait on the set: "0" (nothing within the timeout) or the reported bits.
  void wait(int timeout_ms) {
    epoll_event ev{};
    const int n = ::epoll_wait(epoll, &ev, 1, timeout_ms);
    out("epoll_wait " + std::to_string(timeout_ms) + "ms -> " +
        (n < 0 ? error_name(errno) : n == 0 ? "0" : events_name(ev.events)));
  }
  /// read(2) from the current offset.
  void read_here() {
    char buf[64];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    out("read (at offset) -> " + (n < 0 ? error_name(errno) : quoted(std::string_view(buf, static_cast<std::size_t>(n)))));
  }
  /// lseek(0) + read, one step as evw's Gpio does it after each event. Which of the two
  /// fails on a removed file differs (6.12's kernfs refuses the lseek, 6.1's and FUSE's
  /// only the read), the errno does not.
  void reread() {
    char buf[64];
    const ssize_t n = ::lseek(fd, 0, SEEK_SET) < 0 ? -1 : ::read(fd, buf, sizeof buf);
    out("lseek 0 + read -> " +
        (n < 0 ? error_name(errno) : quoted(std::string_view(buf, static_cast<std::size_t>(n)))));
  }
  void pread_at(off_t offset, std::size_t size) {
    char buf[64];
    const ssize_t n = ::pread(fd, buf, size, offset);
    out("pread " + std::to_string(size) + "@" + std::to_string(offset) + " -> " +
        (n < 0 ? error_name(errno) : quoted(std::string_view(buf, static_cast<std::size_t>(n)))));
  }
};

// How long to wait: for an event that should come (returns as soon as it does), and for
// one that should not (long enough for either target to have delivered it).
constexpr int kComes = 2000;
constexpr int kQuiet = 150;

// ---- the scenarios ------------------------------------------------------------------

/// The clean state every scenario starts from: nothing exported, inputs low.
void reset() {
  for (int k = 0; k < target.lines; ++k) {
    struct stat st {};
    if (::stat(path(line_dir(k)).c_str(), &st) == 0) write_bytes("unexport", number(k), false);
  }
  for (int k = 0; k < 8; ++k) drive_quietly(k, 0);
}

void tree() {
  stat_file("export");
  stat_file("unexport");
  const std::string chip = "gpiochip" + std::to_string(target.base);
  stat_file(chip);
  stat_file(chip + "/base");
  stat_file(chip + "/ngpio");
  read_file(chip + "/ngpio");
  int err = 0;
  const std::string base = read_all(chip + "/base", &err);
  out("read gpiochip+0/base -> " + (err ? error_name(err) : "+" + std::to_string(std::atoi(base.c_str()) - target.base)));
  const std::string label = read_all(chip + "/label", &err);
  known();  // every gpio-sim chip is labelled "gpio-sim"
  out("read gpiochip+0/label -> " + (err ? error_name(err) : quoted(label)));
  open_file("export", O_RDONLY, "O_RDONLY");
  open_file("unexport", O_RDONLY, "O_RDONLY");
  open_file(chip + "/base", O_WRONLY, "O_WRONLY");
  open_file(chip + "/label", O_RDWR, "O_RDWR");
}

void export_unexport() {
  stat_file(line_dir(3));
  export_line(3);
  stat_file(line_dir(3));
  for (const char* f : {"direction", "edge", "active_low", "value"}) stat_file(line_dir(3) + "/" + f);
  for (const char* f : {"direction", "edge", "active_low", "value"}) read_file(line_dir(3) + "/" + f);
  export_line(3);
  unexport_line(3);
  stat_file(line_dir(3));
  read_file(line_dir(3) + "/value");
  unexport_line(3);
  unexport_line(4);  // never exported
}

void export_input_forms() {
  using namespace std::string_literals;
  char hex[32], octal[32];
  std::snprintf(hex, sizeof hex, "%#x", target.base + 3);
  std::snprintf(octal, sizeof octal, "%#o", target.base + 3);
  // Accepted (each is unexported again): kstrtol(s, 0) with one trailing newline.
  if (write_number("export", 3, "", "\n") == 0) unexport_line(3);
  if (write_number("export", 3, "+") == 0) unexport_line(3);
  if (write_bytes("export", hex, true, "hex <+3>") == 0) unexport_line(3);
  if (write_bytes("export", octal, true, "octal <+3>") == 0) unexport_line(3);
  if (write_number("export", 3, "", "\0junk"s) == 0) unexport_line(3);
  // Refused.
  write_number("export", 3, " ");
  write_number("export", 3, "", " ");
  write_number("export", 3, "", "\n\n");
  write_number("export", 3, "", "x");
  write_number("export", target.lines);  // past the chip
  for (const char* text : {"abc", "-1", "99999999999999999999", "\n"}) write_bytes("export", text);
  write_bytes("export", "");  // an empty write
  stat_file(line_dir(3));
  export_line(3);
  write_bytes("unexport", "abc");
  write_number("unexport", target.lines);
  write_number("unexport", 3, "", "\n");
}

void direction_and_value() {
  export_line(3);
  write_bytes(line_dir(3) + "/value", "1");  // an input
  write_bytes(line_dir(3) + "/direction", "out");
  read_file(line_dir(3) + "/direction");
  read_file(line_dir(3) + "/value");
  write_bytes(line_dir(3) + "/value", "1");
  read_file(line_dir(3) + "/value");
  write_bytes(line_dir(3) + "/value", "0\n");
  read_file(line_dir(3) + "/value");
  write_bytes(line_dir(3) + "/value", "7");
  read_file(line_dir(3) + "/value");
  write_bytes(line_dir(3) + "/value", "abc");
  write_bytes(line_dir(3) + "/value", "-1");
  read_file(line_dir(3) + "/value");
  write_bytes(line_dir(3) + "/direction", "low");
  read_file(line_dir(3) + "/value");
  write_bytes(line_dir(3) + "/direction", "high");
  read_file(line_dir(3) + "/direction");
  read_file(line_dir(3) + "/value");
  for (const char* bad : {"bogus", "IN", " in", "in\n\n", ""}) write_bytes(line_dir(3) + "/direction", bad);
  read_file(line_dir(3) + "/direction");
  // An output ignores its input level, and shows it once it is an input again.
  drive(3, 1);
  write_bytes(line_dir(3) + "/direction", "low");
  read_file(line_dir(3) + "/value");
  write_bytes(line_dir(3) + "/direction", "in\n");
  known();  // the kernel's gpio-sim keeps the last output level until the pull changes
  read_file(line_dir(3) + "/value");
  write_bytes(line_dir(3) + "/value", "1");
}

void output_across_unexport() {
  export_line(3);
  write_bytes(line_dir(3) + "/direction", "high");
  unexport_line(3);
  export_line(3);
  read_file(line_dir(3) + "/direction");
  known();  // gpio-sim (the kernel's) resets a freed line's value to its pull; gpio-sim (evw's) keeps it
  read_file(line_dir(3) + "/value");
}

void edge_attribute() {
  export_line(3);
  for (const char* e : {"rising", "falling", "both", "none", "both\n"}) {
    write_bytes(line_dir(3) + "/edge", e);
    read_file(line_dir(3) + "/edge");
  }
  for (const char* bad : {"bogus", "Both", " both", "both ", "both\n\n", ""}) write_bytes(line_dir(3) + "/edge", bad);
  read_file(line_dir(3) + "/edge");
  // Interrupt lines cannot become outputs, outputs cannot take interrupts.
  write_bytes(line_dir(3) + "/direction", "out");
  read_file(line_dir(3) + "/direction");
  write_bytes(line_dir(3) + "/edge", "none");
  write_bytes(line_dir(3) + "/direction", "out");
  write_bytes(line_dir(3) + "/edge", "rising");
  read_file(line_dir(3) + "/edge");
  write_bytes(line_dir(3) + "/edge", "none");
  write_bytes(line_dir(3) + "/direction", "in");
  write_bytes(line_dir(3) + "/edge", "rising");
  unexport_line(3);
  export_line(3);
  read_file(line_dir(3) + "/edge");  // unexport cleared it
}

void active_low_attribute() {
  export_line(3);
  drive(3, 1);
  for (const char* v : {"1", "0", "2", "-1", "0\n", "0x10"}) {
    write_bytes(line_dir(3) + "/active_low", v);
    read_file(line_dir(3) + "/active_low");
    read_file(line_dir(3) + "/value");
  }
  for (const char* bad : {"x", " 1", "1 ", ""}) write_bytes(line_dir(3) + "/active_low", bad);
  read_file(line_dir(3) + "/active_low");
  write_bytes(line_dir(3) + "/active_low", "1");
  unexport_line(3);
  export_line(3);
  read_file(line_dir(3) + "/active_low");  // unexport cleared it
}

void fresh_value_fd() {
  export_line(3);
  write_bytes(line_dir(3) + "/edge", "both");
  ValueFd v(3);
  v.poll_for(POLLPRI | POLLERR, 0);
  v.poll_for(POLLIN | POLLPRI | POLLOUT | POLLRDNORM | POLLWRNORM, 0);
  v.poll_for(POLLIN, 0);
  v.wait(0);
  v.watch(EPOLLIN);
  v.wait(0);
  v.watch(EPOLLPRI);
  v.read_here();  // the priming read
  v.wait(0);
  v.poll_for(POLLPRI | POLLERR, 0);
  v.read_here();  // at EOF now
  v.wait(kQuiet);
  v.pread_at(0, 1);
  v.pread_at(1, 8);
  v.pread_at(2, 8);
}

void edges_on_value() {
  export_line(3);
  write_bytes(line_dir(3) + "/edge", "both");
  ValueFd v(3);
  v.read_here();
  v.wait(kQuiet);
  drive(3, 0);  // the level it has
  v.wait(kQuiet);
  drive(3, 1);
  v.wait(kComes);
  v.wait(0);  // level-triggered: still there
  v.read_here();  // at EOF: not a read from offset 0
  v.wait(0);
  v.pread_at(0, 8);  // from offset 0: clears it
  v.wait(0);
  drive(3, 0);
  v.wait(kComes);
  v.poll_for(POLLPRI | POLLERR, 0);
  v.reread();
  v.wait(kQuiet);
  // A change while nobody reads: several edges, one condition, the last level.
  for (int level : {1, 0, 1, 0, 1}) drive(3, level);
  v.wait(kComes);
  v.reread();
  v.wait(kQuiet);
}

void edge_selection() {
  export_line(3);
  struct Case {
    const char* edge;
    int active_low;
  };
  for (Case c : {Case{"rising", 0}, Case{"falling", 0}, Case{"none", 0}, Case{"rising", 1}, Case{"falling", 1}}) {
    write_bytes(line_dir(3) + "/active_low", c.active_low ? "1" : "0");
    write_bytes(line_dir(3) + "/edge", c.edge);
    ValueFd v(3);
    v.read_here();
    for (int level : {1, 0}) {
      drive(3, level);
      v.wait(kQuiet);
      v.reread();
    }
  }
  // Flipping active_low flips the value, but the pin did not move: no edge.
  write_bytes(line_dir(3) + "/edge", "both");
  ValueFd v(3);
  v.read_here();
  write_bytes(line_dir(3) + "/active_low", "0");
  v.wait(kQuiet);
  v.reread();
}

/// Edge counts: toggles, each consumed before the next, counted as the notifications
/// epoll gave; one line per edge setting, so a lost or an extra edge shows as a number.
void edge_counts() {
  export_line(3);
  constexpr int kToggles = 40;
  for (const char* edge : {"both", "rising", "falling", "none"}) {
    write_bytes(line_dir(3) + "/edge", edge);
    ValueFd v(3);
    v.read_here();  // the priming read
    char buf[8];
    int events = 0, levels_right = 0;
    for (int i = 1; i <= kToggles; ++i) {
      const int level = i % 2;
      drive_quietly(3, level);
      // Both targets notify before the write that drives the line returns: an edge that
      // is not there after 50 ms is not coming.
      epoll_event ev{};
      if (::epoll_wait(v.epoll, &ev, 1, 50) == 1) ++events;
      if (::pread(v.fd, buf, sizeof buf, 0) == 2 && buf[0] == '0' + level) ++levels_right;
    }
    out(std::string("edge ") + edge + ": " + std::to_string(kToggles) + " toggles -> " + std::to_string(events) +
        " events, " + std::to_string(levels_right) + " levels read right");
    drive_quietly(3, 0);
  }
}

void latched_across_reconfiguration() {
  export_line(3);
  write_bytes(line_dir(3) + "/edge", "rising");
  ValueFd v(3);
  v.read_here();
  drive(3, 1);
  write_bytes(line_dir(3) + "/edge", "both");  // before the edge is read
  v.wait(kComes);
  v.reread();
  drive(3, 0);
  write_bytes(line_dir(3) + "/edge", "none");
  v.wait(kQuiet);
  v.reread();
}

void unexport_while_open() {
  export_line(3);
  write_bytes(line_dir(3) + "/edge", "both");
  ValueFd v(3);
  v.read_here();
  // Harvested once: a file registered before its priming read stays on epoll's ready
  // list, and a re-poll of the removed file would report it without any wake-up.
  v.wait(0);
  unexport_line(3);
  v.wait(kQuiet);  // removing the node wakes nobody
  v.poll_for(POLLPRI | POLLERR, 0);
  v.reread();
  v.watch(EPOLLPRI);  // a fresh registration polls the removed file
  v.wait(0);
  export_line(3);
  write_bytes(line_dir(3) + "/edge", "both");
  drive(3, 1);
  v.reread();  // the old file stays gone
  ValueFd fresh(3);
  fresh.reread();
}

void unexported_line_keeps_its_input() {
  drive(3, 1);
  export_line(3);
  read_file(line_dir(3) + "/value");
  write_bytes(line_dir(3) + "/active_low", "1");
  read_file(line_dir(3) + "/value");
}

struct Scenario {
  const char* name;
  void (*run)();
};

const Scenario scenarios[] = {
    {"tree", tree},
    {"export-unexport", export_unexport},
    {"export-input-forms", export_input_forms},
    {"direction-and-value", direction_and_value},
    {"output-across-unexport", output_across_unexport},
    {"edge-attribute", edge_attribute},
    {"active-low-attribute", active_low_attribute},
    {"fresh-value-fd", fresh_value_fd},
    {"edges-on-value", edges_on_value},
    {"edge-selection", edge_selection},
    {"edge-counts", edge_counts},
    {"latched-across-reconfiguration", latched_across_reconfiguration},
    {"unexport-while-open", unexport_while_open},
    {"unexported-line-keeps-its-input", unexported_line_keeps_its_input},
};

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view opt = argv[i];
    if (opt == "--root") target.root = argv[i + 1];
    else if (opt == "--base") target.base = std::atoi(argv[i + 1]);
    else if (opt == "--lines") target.lines = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--root DIR --base N --lines M]\n", argv[0]);
      return 2;
    }
  }
  if (target.root.empty()) {  // in the guest
    const char* base = std::getenv("EVW_KGPIO_BASE");
    const char* lines = std::getenv("EVW_KGPIO_LINES");
    const char* sim = std::getenv("EVW_KGPIO_SIM");
    if (!base || !lines || !sim) {
      std::fprintf(stderr, "sysfs_scenarios: no EVW_KGPIO_* (not in the guest): give --root, --base, --lines\n");
      return 2;
    }
    target = Target{"/sys/class/gpio", std::atoi(base), std::atoi(lines), sim, ""};
  } else {
    target.fuse_sim = target.root + "/sim";
  }
  for (const Scenario& s : scenarios) {
    reset();
    std::printf("== %s\n", s.name);
    s.run();
  }
  reset();
  std::printf("== end\n");
  return 0;
}
