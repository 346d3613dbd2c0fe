#include "gpio.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <list>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include "../core/access.hpp"
#include "../core/priority_table.hpp"
#include "../core/sys.hpp"
#include "../coro/edge.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<32>) >= sizeof(ev_watcher));

void detail::OwnedFd::reset(int fd) noexcept {
  if (fd_ >= 0) detail::sys::close(fd_);
  fd_ = fd;
}

namespace {

// udev sets the owner and mode of a freshly exported gpioN a moment after the
// kernel creates it: until then a non-root opener gets EACCES.
constexpr auto kUdevPatience = std::chrono::milliseconds(100);
constexpr auto kUdevStep = std::chrono::milliseconds(2);

const char* edge_name(Edge edge) noexcept {
  switch (edge) {
    case Edge::None: return "none";
    case Edge::Rising: return "rising";
    case Edge::Falling: return "falling";
    case Edge::Both: return "both";
  }
  return "none";
}

// The root as the registry knows it, so that "/x/", "/x//" and "/x/." are
// one root: repeated slashes, "." components and trailing slashes go. ".."
// stays (a symlink before it would make dropping it wrong), and symlinks are
// not resolved (that needs system calls the constructor does not make).
std::string normalized_root(const std::string& root) {
  std::string out;
  std::size_t i = 0;
  if (root[0] == '/') out = "/";
  while (i < root.size()) {
    while (i < root.size() && root[i] == '/') ++i;
    const std::size_t end = std::min(root.find('/', i), root.size());
    const std::string_view part(root.data() + i, end - i);
    if (!part.empty() && part != ".") {
      if (!out.empty() && out.back() != '/') out += '/';
      out += part;
    }
    i = end;
  }
  return out.empty() ? "." : out;
}

std::string line_path(const std::string& root, int line, const char* file) {
  return root + "/gpio" + std::to_string(line) + "/" + file;
}

[[noreturn]] void fail(int line, const char* op, const std::string& path, int err) {
  detail::throw_system(err, "evw::Gpio: line " + std::to_string(line) + ": " + op + " " + path);
}

void check(int line, const GpioConfig& config) {
  if (line < 0) detail::throw_invalid("Gpio", "line", std::to_string(line) + " is negative");
  switch (config.edge) {
    case Edge::None: case Edge::Rising: case Edge::Falling: case Edge::Both: break;
    default:
      detail::throw_invalid("Gpio", "edge", std::to_string(static_cast<int>(config.edge)) +
                                                " is not an evw::Edge");
  }
  const double debounce = config.debounce;
  if (!std::isfinite(debounce) || debounce < 0)
    detail::throw_invalid("Gpio", "debounce", std::to_string(debounce) +
                                                  " must be finite and >= 0 seconds");
  if (config.sysfs_root.empty()) detail::throw_invalid("Gpio", "sysfs_root", "is empty");
}

// Until when EACCES may be udev still at work; Deadline{} (the epoch) = not at all.
using Deadline = std::chrono::steady_clock::time_point;

// A failed system call: errno and which call (open, write, lseek, read).
struct Failure {
  int err = 0;
  const char* op = "";
};

// open(2), retried on EINTR, and on EACCES until the deadline.
int open_file(const std::string& path, int flags, Deadline udev_deadline) {
  for (;;) {
    const int fd = detail::sys::retry_eintr(
        [&] { return detail::sys::open(path.c_str(), flags | O_CLOEXEC); });
    if (fd >= 0 || errno != EACCES) return fd;
    if (std::chrono::steady_clock::now() >= udev_deadline) {
      errno = EACCES;
      return -1;
    }
    std::this_thread::sleep_for(kUdevStep);
  }
}

// Writes text to a sysfs attribute. @return err 0, or what failed.
Failure write_file(const std::string& path, const std::string& text, Deadline udev_deadline = {}) {
  detail::OwnedFd fd(open_file(path, O_WRONLY, udev_deadline));
  if (fd.get() < 0) return {errno, "open"};
  const ssize_t n = detail::sys::retry_eintr(
      [&] { return detail::sys::write(fd.get(), text.data(), text.size()); });
  if (n < 0) return {errno, "write"};
  return {};
}

void write_attribute(int line, const std::string& root, const char* file, const std::string& text,
                     Deadline udev_deadline) {
  const std::string path = line_path(root, line, file);
  if (Failure f = write_file(path, text, udev_deadline); f.err != 0) fail(line, f.op, path, f.err);
}

// The level in `value`, reread into text from offset 0 (that read is also
// what clears the file's exceptional condition; one read: a second one at EOF
// would take an edge unseen, see AttrFile::End). @return 0/1, or -errno and
// *op the call that failed.
int read_level(const detail::AttrFile& file, std::string& text, const char** op) noexcept {
  if (const int err = file.reread(text, op, detail::AttrFile::default_max, detail::AttrFile::End::ShortRead);
      err != 0)
    return -err;
  if (text.empty()) return -EIO;
  return text[0] == '0' ? 0 : 1;
}

void configure(int line, const GpioConfig& config, Deadline udev_deadline) {
  const std::string& root = config.sysfs_root;
  write_attribute(line, root, "direction", "in", udev_deadline);
  // active_low before edge: the kernel maps rising/falling through it.
  write_attribute(line, root, "active_low", config.active_low ? "1" : "0", udev_deadline);
  write_attribute(line, root, "edge", edge_name(config.edge), udev_deadline);
}

void unexport(const std::string& root, int line) noexcept {
  write_file(root + "/unexport", std::to_string(line));
}

// read_level(), and a line found gone (the kernel says ENODEV once gpioN was
// unexported) is not evw's to unexport any more.
int read_line(const detail::AttrFile& file, std::string& text, detail::GpioClaim& claim,
              const char** op) noexcept {
  const int level = read_level(file, text, op);
  if (level == -ENODEV) claim.line_gone();
  return level;
}

double monotonic_seconds() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

// ---- the process's registry of lines in use --------------------------------

/// A (sysfs root, line) some Gpio of this process uses.
struct detail::GpioClaim::Entry {
  std::string root;
  int line = -1;
  std::size_t users = 0;
  std::uint64_t generation = 0;  // exports evw made of the line so far
  // The process whose Gpio exported the line; 0 if the line was exported by
  // someone else, or was found gone since. Atomic: exported() reads it
  // without the lock.
  std::atomic<pid_t> exporter{0};
};

namespace {

// Export and unexport are written under the lock, so that a use that begins
// while the last one ends sees either the line exported (and counts itself)
// or unexported (and exports it again): never evw's own EBUSY taken for
// someone else's export, nor an unexport under a new user.
struct Registry {
  std::mutex mutex;
  std::list<detail::GpioClaim::Entry> entries;  // few: the lines in use
};

Registry* g_registry = nullptr;

// A fork() from another thread while the lock is held would leave it held
// for ever in the child: the fork waits for it (and the child inherits the
// registry, with its counts; see reset() for what it unexports).
void lock_for_fork() noexcept { g_registry->mutex.lock(); }
void unlock_after_fork() noexcept { g_registry->mutex.unlock(); }

Registry& registry() {
  // Never destroyed: a Gpio may be destroyed after static destructors ran
  // (one owned by the default loop, itself a function-local static).
  static Registry* const instance = [] {
    g_registry = new Registry;
    ::pthread_atfork(lock_for_fork, unlock_after_fork, unlock_after_fork);
    return g_registry;
  }();
  return *instance;
}

}  // namespace

detail::GpioClaim detail::GpioClaim::acquire(const std::string& root, int line) {
  Registry& reg = registry();
  std::lock_guard lock(reg.mutex);
  Entry* entry = nullptr;
  for (Entry& e : reg.entries)
    if (e.line == line && e.root == root) entry = &e;
  const bool fresh = entry == nullptr;
  if (fresh) entry = &reg.entries.emplace_back();
  try {
    if (fresh) {
      entry->root = root;
      entry->line = line;
    }
    const std::string export_path = root + "/export";
    if (Failure f = write_file(export_path, std::to_string(line)); f.err == 0) {
      ++entry->generation;
      entry->exporter.store(::getpid(), std::memory_order_relaxed);
    } else {
      // EBUSY: already exported (by another process, or by evw, which counts
      // its users here), and then gpioN exists; without it, the line is held
      // through the chardev.
      if (f.err != EBUSY) fail(line, f.op, export_path, f.err);
      struct stat st {};
      const std::string dir = root + "/gpio" + std::to_string(line);
      if (sys::retry_eintr([&] { return sys::stat(dir.c_str(), &st); }) != 0) {
        // ENOENT/ENOTDIR: no gpioN, the export's EBUSY is the answer; any
        // other errno (EIO, ENOMEM, EACCES) says the check itself failed.
        if (errno != ENOENT && errno != ENOTDIR) fail(line, "stat", dir, errno);
        fail(line, f.op, export_path, f.err);
      }
      if (!S_ISDIR(st.st_mode)) fail(line, f.op, export_path, f.err);
      // A fresh entry's exporter is 0: someone else's line, never unexported.
    }
  } catch (...) {
    if (fresh) reg.entries.pop_back();
    throw;
  }
  ++entry->users;
  GpioClaim claim;
  claim.entry_ = entry;
  claim.generation_ = entry->generation;
  return claim;
}

void detail::GpioClaim::reset() noexcept {
  if (entry_ == nullptr) return;
  Registry& reg = registry();
  std::lock_guard lock(reg.mutex);
  Entry* entry = std::exchange(entry_, nullptr);
  if (--entry->users != 0) return;
  // A forked child's inherited entries name the parent as exporter: the
  // parent's watchers still use those lines, the child leaves them be.
  if (entry->exporter.load(std::memory_order_relaxed) == ::getpid()) unexport(entry->root, entry->line);
  reg.entries.remove_if([entry](const Entry& e) { return &e == entry; });
}

void detail::GpioClaim::line_gone() noexcept {
  if (entry_ == nullptr) return;
  std::lock_guard lock(registry().mutex);
  // An export by evw since this use began made the line evw's again (this
  // watcher's `value` is of the line before).
  if (entry_->generation == generation_) entry_->exporter.store(0, std::memory_order_relaxed);
}

bool detail::GpioClaim::exported() const noexcept {
  return entry_ != nullptr && entry_->exporter.load(std::memory_order_relaxed) == ::getpid();
}

// ---- Gpio ------------------------------------------------------------------

/// A line made ready for watching, not yet owned by a watcher. If the
/// constructor throws, the members undo it: `value` closes, then the claim
/// is released (unexporting the line if evw exported it for this alone).
struct Gpio::Setup {
  detail::GpioClaim claim;
  detail::AttrFile file;
  std::string text;
  int value = 0;

  Setup(int line, const GpioConfig& config) : claim(detail::GpioClaim::acquire(config.sysfs_root, line)) {
    const std::string& root = config.sysfs_root;
    // udev may still be at work on a line evw exported a moment ago.
    const Deadline udev_deadline =
        claim.exported() ? std::chrono::steady_clock::now() + kUdevPatience : Deadline{};
    configure(line, config, udev_deadline);
    const std::string path = line_path(root, line, "value");
    const int fd = open_file(path, O_RDONLY | O_NONBLOCK, udev_deadline);
    if (fd < 0) fail(line, "open", path, errno);
    file.reset(fd);
    // The priming read: a sysfs file that was never read reports a condition
    // at once, so without it the first poll would fire without an edge.
    const char* op;
    value = read_line(file, text, claim, &op);
    if (value < 0) fail(line, op, path, -value);
  }
};

struct detail::GpioTrampoline {
  static void on_event(struct ev_loop*, ev_watcher* w, int revents) noexcept {
    static_cast<Gpio*>(w->data)->on_condition(revents);
  }
  static void direct(int revents, void* self) { static_cast<Gpio*>(self)->on_condition(revents); }
};

Gpio::Gpio(Loop& loop, int line, GpioConfig config, Callback cb)
    : ExceptWatcher(loop, &ev_, "Gpio", std::move(cb)) {
  check(line, config);
  config.sysfs_root = normalized_root(std::move(config.sysfs_root));
  node_.set_ev(&ev_);
  node_.self = this;
  node_.call = detail::GpioTrampoline::direct;
  ev_set_cb(detail::ev_of<ev_watcher>(*this), detail::GpioTrampoline::on_event);
  adopt(Setup(line, config));
  line_ = line;
  config_ = std::move(config);
}

Gpio::~Gpio() {
  stop();
  release_line();
}

// The line goes along: other is left holding none (no fd, nothing to
// unexport), so its destructor releases nothing.
Gpio::Gpio(Gpio&& other)
    : ExceptWatcher(std::move(other), &ev_),
      config_(std::move(other.config_)),
      line_(std::exchange(other.line_, -1)),
      claim_(std::move(other.claim_)),
      value_file_(std::move(other.value_file_)),
      text_(std::move(other.text_)),
      value_(other.value_),
      delivered_once_(other.delivered_once_),
      last_delivered_(other.last_delivered_),
      debounced_(other.debounced_),
      error_(other.error_) {
  finish_move(other, sizeof ev_);
  detail::EdgeHook<Gpio>::moved(other, *this);  // a coroutine awaiting edge() follows
}

void Gpio::set(int line, GpioConfig config) {
  check(line, config);
  config.sysfs_root = normalized_root(std::move(config.sysfs_root));
  if (line == line_ && config.sysfs_root == config_.sysfs_root) {
    Frozen frozen = freeze();
    try {
      // An edge not yet delivered stays latched in the file (and comes after
      // thaw); otherwise re-read, since active_low may have flipped the level.
      const int waiting = value_file_.condition_waiting();
      if (waiting < 0) fail(line, "poll", line_path(config.sysfs_root, line, "value"), -waiting);
      configure(line, config, Deadline{});
      if (!waiting) {
        const char* op;
        const int level = read_line(value_file_, text_, claim_, &op);
        if (level < 0) fail(line, op, line_path(config.sysfs_root, line, "value"), -level);
        value_ = level;
      }
    } catch (...) {
      thaw(frozen);
      throw;
    }
    config_ = std::move(config);
    thaw(frozen);
    return;
  }
  // The new line is claimed before the old one is released: a move between
  // two lines shared with other watchers never unexports either.
  Setup fresh(line, config);  // the old line keeps working if this throws
  Frozen frozen = freeze();
  release_line();
  adopt(std::move(fresh));
  line_ = line;
  config_ = std::move(config);
  thaw(frozen);
}

int Gpio::read_value() {
  if (value_file_.fd() < 0) throw std::logic_error("evw::Gpio::read_value: the watcher has no line (it was moved from)");
  // Through a file of its own: reading the watched one would clear the
  // condition of an edge not yet delivered (each open sysfs file keeps its
  // own "seen" mark), and an edge fed back instead would wait in libev's
  // queue until something else woke the loop.
  const std::string path = line_path(config_.sysfs_root, line_, "value");
  const int fd = open_file(path, O_RDONLY | O_NONBLOCK, Deadline{});
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) claim_.line_gone();  // no gpioN: the line is not exported
    fail(line_, "open", path, err);
  }
  detail::AttrFile file;
  file.reset(fd);
  const char* op;
  std::string text;
  const int level = read_line(file, text, claim_, &op);
  if (level < 0) fail(line_, op, path, -level);
  value_ = level;
  return level;
}

void Gpio::start_impl() {
  ExceptWatcher::start_impl();
  error_.clear();  // it said why the watcher had stopped itself
}

void Gpio::adopt(Setup&& setup) noexcept {
  claim_ = std::move(setup.claim);
  value_file_ = std::move(setup.file);
  text_ = std::move(setup.text);
  value_ = setup.value;
  node_.fd = value_file_.fd();
  error_.clear();
}

void Gpio::release_line() noexcept {
  value_file_.reset();
  node_.fd = -1;
  claim_.reset();
}

void Gpio::on_condition(int revents) noexcept {
  // After a callback threw, the event is deferred untouched; it is read when
  // run() feeds it back (the latched condition cannot be delivered twice).
  if (detail::Access::failed(*detail::Access::loop(*this))) {
    detail::dispatch(*this, revents);
    return;
  }
  // Read before calling back: it clears the condition (else epoll reports it
  // again at once) and lets the callback see the level this edge left.
  const char* op;
  const int level = read_line(value_file_, text_, claim_, &op);
  if (level < 0) {
    error_ = std::error_code(-level, std::generic_category());
    stop();  // a gone file stays "ready" forever: do not spin on it
    detail::dispatch(*this, Event::Error);
    return;
  }
  value_ = level;
  // The level could be read, so this is an edge to the callback, whatever
  // else came with it: EPOLLERR alone (Event::Error) from a FUSE file whose
  // poll request failed, or bits put in with feed(). Event::Error always
  // means the watcher stopped itself.
  revents = Event::Pri;
  if (config_.debounce > 0.0) {
    const double now = monotonic_seconds();
    if (delivered_once_ && now - last_delivered_ < config_.debounce) {
      ++debounced_;
      return;
    }
    delivered_once_ = true;
    last_delivered_ = now;
  }
  detail::dispatch(*this, revents);  // may destroy *this: touch nothing after
}

}  // namespace evw
