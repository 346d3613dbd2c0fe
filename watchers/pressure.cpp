#include "pressure.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "../core/access.hpp"
#include "../core/io_relay.hpp"
#include "../core/sys.hpp"
#include "../coro/edge.hpp"
#include "mounts.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<32>) >= sizeof(ev_watcher));
static_assert(sizeof(detail::EvStorage<48>) >= sizeof(ev_io));

namespace {

using std::chrono::microseconds;

// The kernel's limit for any trigger window (psi.c, WINDOW_MAX_US).
constexpr microseconds kMaxWindow = std::chrono::seconds(10);
// From <linux/magic.h>: where sd-event accepts a regular file as a PSI file.
constexpr unsigned long kProcMagic = 0x9fa0;
constexpr unsigned long kCgroup2Magic = 0x63677270;

const char* resource_name(Resource r) noexcept {
  switch (r) {
    case Resource::Memory: return "memory";
    case Resource::Cpu: return "cpu";
    case Resource::Io: return "io";
  }
  return "?";
}

std::string trigger_text(const PressureConfig& c) {
  return std::string(c.stall == Stall::Full ? "full " : "some ") + std::to_string(c.threshold.count()) +
         " " + std::to_string(c.window.count());
}

void check(const PressureConfig& c) {
  switch (c.resource) {
    case Resource::Memory: case Resource::Cpu: case Resource::Io: break;
    default:
      detail::throw_invalid("Pressure", "resource",
                            std::to_string(static_cast<int>(c.resource)) + " is not an evw::Resource");
  }
  if (c.stall != Stall::Some && c.stall != Stall::Full)
    detail::throw_invalid("Pressure", "stall", std::to_string(static_cast<int>(c.stall)) + " is not an evw::Stall");
  if (c.threshold.count() <= 0)
    detail::throw_invalid("Pressure", "threshold", std::to_string(c.threshold.count()) + " us is not positive");
  if (c.window.count() <= 0)
    detail::throw_invalid("Pressure", "window", std::to_string(c.window.count()) + " us is not positive");
  if (c.window > kMaxWindow)
    detail::throw_invalid("Pressure", "window", std::to_string(c.window.count()) + " us exceeds the kernel's 10 s");
  if (c.threshold > c.window)
    detail::throw_invalid("Pressure", "threshold", std::to_string(c.threshold.count()) +
                                                       " us exceeds the window of " +
                                                       std::to_string(c.window.count()) + " us");
}

// What the kernel's errno means here, appended to the message.
std::string meaning(const char* op, int err, bool cgroup) {
  if (err == ENOENT && std::strcmp(op, "open") == 0)
    return cgroup ? " (not a cgroup v2 directory, or a kernel without PSI)"
                  : " (a kernel without PSI: CONFIG_PSI)";
  if (err == EOPNOTSUPP) return " (PSI is disabled: the kernel was booted with psi=0 or without psi=1)";
  if (err == EINVAL && std::strcmp(op, "write") == 0)
    return " (the kernel refused the trigger: without CAP_SYS_RESOURCE the window must be a multiple "
           "of 2 s, with it 500 ms..10 s; the threshold at most the window)";
  if (err == ENODEV) return " (the cgroup was removed)";
  return "";
}

[[noreturn]] void fail(const char* op, const std::string& what, int err, bool cgroup = false) {
  detail::throw_system(err, std::string("evw::Pressure: ") + op + " " + what + meaning(op, err, cgroup));
}

// Writes all of data (PSI takes a trigger in one write). @return 0 or errno.
int write_all(int fd, const std::string& data) noexcept {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n =
        detail::sys::retry_eintr([&] { return detail::sys::write(fd, data.data() + done, data.size() - done); });
    if (n < 0) return errno;
    if (n == 0) return EIO;
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

// PSI overwrites the last byte written with a NUL: the trigger must end in one.
std::string terminated(std::string trigger) {
  if (trigger.empty() || (trigger.back() != '\0' && trigger.back() != '\n')) trigger += '\0';
  return trigger;
}

// "some 200000 2000000" into c (the rest of c unchanged); false if it is not one.
bool parse_trigger(std::string_view text, PressureConfig& c) {
  while (!text.empty() && (text.back() == '\0' || text.back() == '\n')) text.remove_suffix(1);
  Stall stall;
  if (text.substr(0, 5) == "some ") stall = Stall::Some;
  else if (text.substr(0, 5) == "full ") stall = Stall::Full;
  else return false;
  text.remove_prefix(5);
  const std::size_t space = text.find(' ');
  if (space == std::string_view::npos) return false;
  long long threshold = 0, window = 0;
  const std::string_view a = text.substr(0, space), b = text.substr(space + 1);
  if (std::from_chars(a.data(), a.data() + a.size(), threshold).ptr != a.data() + a.size() ||
      std::from_chars(b.data(), b.data() + b.size(), window).ptr != b.data() + b.size())
    return false;
  c.stall = stall;
  c.threshold = microseconds(threshold);
  c.window = microseconds(window);
  return true;
}

// systemd's path_is_normalized(), near enough: absolute, no "//", no "." or ".." component.
bool normalized_absolute(std::string_view p) {
  if (p.empty() || p[0] != '/') return false;
  if (p.find("//") != std::string_view::npos) return false;
  std::size_t start = 1;
  while (start <= p.size()) {
    std::size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    const std::string_view part = p.substr(start, end - start);
    if (part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

// RFC 4648 base64, whitespace ignored (as systemd's unbase64mem). false if malformed.
bool unbase64(std::string_view in, std::string& out) {
  out.clear();
  unsigned acc = 0;
  int bits = 0, pad = 0;
  for (const char c : in) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=') {
      ++pad;
      continue;
    } else return false;
    if (pad != 0) return false;  // data after padding
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // Leftover bits must be the zero padding of the last group.
  return pad <= 2 && bits < 6 && (acc & ((1u << bits) - 1)) == 0;
}

// This process's cgroup v2 directory (its "0::" line and where cgroup2 is
// mounted), or "" if there is none.
std::string own_cgroup() {
  detail::AttrFile file;
  std::string text;
  const char* op;
  if (file.open("/proc/self/cgroup", O_RDONLY) != 0 || file.reread(text, &op) != 0) return "";
  std::string_view rest = text;
  std::string relative;  // a copy: text is read into again below
  bool found = false;
  while (!rest.empty()) {
    const std::size_t end = rest.find('\n');
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (line.substr(0, 3) == "0::") {
      relative = line.substr(3);
      found = true;
      break;
    }
  }
  if (!found) return "";
  if (file.open("/proc/self/mountinfo", O_RDONLY) != 0 || file.reread(text, &op, std::size_t{64} << 20) != 0)
    return "";
  for (const MountEntry& m : Mounts::parse(text)) {
    if (m.fstype != "cgroup2") continue;
    std::string dir = m.mount_point;
    if (relative != "/") dir += relative;
    return dir;
  }
  return "";
}

}  // namespace

/// A trigger set up and read once, not yet owned by a watcher.
struct Pressure::Setup {
  detail::AttrFile file;
  detail::OwnEpoll own;
  bool stream = false;
  bool fired = false;
  PressureConfig config;
  std::string path;
  std::string trigger;
  std::string text;
  PressureStats stats;

  Setup() = default;

  explicit Setup(PressureConfig c) : config(std::move(c)) {
    check(config);
    const bool in_cgroup = !config.cgroup.empty();
    if (in_cgroup) {
      std::string dir = config.cgroup;
      while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
      path = dir + "/" + resource_name(config.resource) + ".pressure";
    } else {
      path = std::string("/proc/pressure/") + resource_name(config.resource);
    }
    trigger = trigger_text(config);
    if (const int err = file.open(path, O_RDWR); err != 0) fail("open", path, err, in_cgroup);
    // With its NUL: the kernel overwrites the last byte written with one.
    if (const int err = write_all(file.fd(), terminated(trigger)); err != 0)
      fail("write", "\"" + trigger + "\" to " + path, err, in_cgroup);
    read_stats(in_cgroup);
    watch_file(in_cgroup);
  }

  // The trigger's own epoll set. Only after the write: a PSI file without a
  // trigger registers no waiter at poll. A trigger that fired already would be
  // taken by the set's first poll: poll once before, and remember.
  void watch_file(bool in_cgroup) {
    pollfd p{file.fd(), POLLPRI, 0};
    if (detail::sys::retry_eintr([&] { return detail::sys::poll(&p, 1, 0); }) < 0) fail("poll", path, errno, in_cgroup);
    fired = (p.revents & POLLPRI) != 0;
    const char* op;
    if (const int err = own.watch(file.fd(), &op); err != 0) fail(op, "for " + path, err, in_cgroup);
  }

  // The averages now; also how a removed cgroup or disabled PSI shows.
  void read_stats(bool in_cgroup) {
    const char* op;
    if (const int err = file.reread(text, &op); err != 0) fail(op, path, err, in_cgroup);
    stats = Pressure::parse(text);
  }

  // sd-event's sd_event_add_memory_pressure(), for the watch and write it was given.
  void from(const std::string& watch, const std::string& write) {
    path = watch;
    config = PressureConfig{};
    if (!parse_trigger(write, config)) config = PressureConfig{};
    struct stat st {};
    if (detail::sys::retry_eintr([&] { return detail::sys::stat(watch.c_str(), &st); }) != 0)
      fail("stat", watch, errno);
    std::string data = write;
    if (S_ISSOCK(st.st_mode)) {
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      if (watch.size() >= sizeof addr.sun_path) fail("connect", watch, ENAMETOOLONG);
      std::memcpy(addr.sun_path, watch.c_str(), watch.size() + 1);
      file.reset(detail::sys::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (file.fd() < 0) fail("socket", "for " + watch, errno);
      if (detail::sys::connect(file.fd(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        fail("connect", watch, errno);
      stream = true;
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISREG(st.st_mode)) {
      if (const int err = file.open(watch, write.empty() ? O_RDONLY : O_RDWR); err != 0) fail("open", watch, err);
      if (S_ISREG(st.st_mode)) {
        // A regular file can only be a PSI file of procfs or cgroupfs (POLLPRI).
        struct statfs fs {};
        if (detail::sys::retry_eintr([&] { return detail::sys::fstatfs(file.fd(), &fs); }) != 0)
          fail("fstatfs", watch, errno);
        const auto magic = static_cast<unsigned long>(fs.f_type);
        if (magic != kProcMagic && magic != kCgroup2Magic)
          detail::throw_system(ENOTTY, "evw::Pressure: " + watch +
                                           " is a regular file neither of procfs nor of cgroupfs");
        // A PSI file without a trigger reports POLLPRI|POLLERR at once, for good: not pressure.
        if (data.empty())
          detail::throw_invalid("Pressure::from_environment", "$MEMORY_PRESSURE_WRITE",
                                "is missing: " + watch + " needs a trigger (without one it reports "
                                "POLLPRI|POLLERR at once, which is not pressure)");
        if (!data.empty()) data = terminated(std::move(data));
      } else {
        stream = true;
      }
    } else {
      fail("watch", watch, S_ISDIR(st.st_mode) ? EISDIR : EBADF);
    }
    trigger = data;
    while (!trigger.empty() && trigger.back() == '\0') trigger.pop_back();
    if (!data.empty()) {
      if (const int err = write_all(file.fd(), data); err != 0) fail("write", "\"" + trigger + "\" to " + watch, err);
    }
    const std::string suffix = "/memory.pressure";
    if (!stream && watch.size() > suffix.size() && watch.compare(watch.size() - suffix.size(), suffix.size(), suffix) == 0)
      config.cgroup = watch.substr(0, watch.size() - suffix.size());
    if (!stream) {
      read_stats(!config.cgroup.empty());
      watch_file(!config.cgroup.empty());
    }
  }
};

struct detail::PressureTrampoline {
  // The watcher's own libev watcher: what the ev_io relays, and fed events.
  static void on_fed(struct ev_loop*, ev_watcher* w, int revents) noexcept {
    static_cast<Pressure*>(w->data)->on_event(revents);
  }
  // Readable: the PSI file's own set (libev's check of it took the trigger's
  // event), or the stream. Relayed through the watcher's own libev watcher,
  // so that pending state, stop() and set() work on one event.
  static void on_io(struct ev_loop* loop, ev_io* io, int) noexcept {
    auto& self = *static_cast<Pressure*>(io->data);
    io_relay::relay(*Access::loop(self), loop, &self.ev_, Event::Pri);
  }
};

Pressure::Pressure(Loop& loop, PressureConfig config, Callback cb)
    : Watcher(loop, &ev_, "Pressure", std::move(cb)) {
  init();
  adopt(Setup(std::move(config)));
}

Pressure::Pressure(Loop& loop, EnvironmentTag, Callback cb) : Watcher(loop, &ev_, "Pressure", std::move(cb)) {
  init();
  const char* watch = ::secure_getenv("MEMORY_PRESSURE_WATCH");
  if (watch == nullptr) {
    // systemd's default: this service's own cgroup, else the whole system.
    PressureConfig config;
    config.cgroup = own_cgroup();
    if (!config.cgroup.empty()) {
      try {
        adopt(Setup(config));
        return;
      } catch (const std::system_error& e) {
        if (e.code().value() != ENOENT) throw;
      }
    }
    config.cgroup.clear();
    adopt(Setup(std::move(config)));
    return;
  }
  const std::string path = watch;
  if (path.empty() || path == "/dev/null")
    detail::throw_system(EHOSTDOWN, "evw::Pressure::from_environment: memory pressure watching is turned off "
                                    "($MEMORY_PRESSURE_WATCH=" + path + ")");
  if (!normalized_absolute(path))
    detail::throw_invalid("Pressure::from_environment", "$MEMORY_PRESSURE_WATCH",
                          "\"" + path + "\" is not an absolute, normalized path");
  std::string write;
  if (const char* encoded = ::secure_getenv("MEMORY_PRESSURE_WRITE"); encoded != nullptr) {
    if (!unbase64(encoded, write))
      detail::throw_invalid("Pressure::from_environment", "$MEMORY_PRESSURE_WRITE",
                            std::string("\"") + encoded + "\" is not base64");
  }
  Setup setup;
  setup.from(path, write);
  adopt(std::move(setup));
}

Pressure Pressure::from_environment(Loop& loop, Callback cb) {
  return Pressure(loop, EnvironmentTag{}, std::move(cb));
}

Pressure::~Pressure() { stop(); }

// The file (or stream) and the set go along: other is left with neither, the
// trigger stays armed. The ev_io is set up here (its data points to this
// watcher); finish_move starts it if other's was.
Pressure::Pressure(Pressure&& other)
    : Watcher(std::move(other), &ev_),
      file_(std::move(other.file_)),
      own_(std::move(other.own_)),
      stream_(other.stream_),
      fired_at_setup_(other.fired_at_setup_),
      config_(std::move(other.config_)),
      path_(std::move(other.path_)),
      trigger_(std::move(other.trigger_)),
      text_(std::move(other.text_)),
      stats_(other.stats_),
      error_(other.error_) {
  detail::io_relay::init(&io_, detail::PressureTrampoline::on_io, this);
  finish_move(other, sizeof ev_);
  detail::EdgeHook<Pressure>::moved(other, *this);  // a coroutine awaiting next() follows
}

void Pressure::init() noexcept {
  ev_set_cb(detail::ev_of<ev_watcher>(*this), detail::PressureTrampoline::on_fed);
  detail::io_relay::init(&io_, detail::PressureTrampoline::on_io, this);
}

void Pressure::adopt(Setup&& setup) noexcept {
  file_ = std::move(setup.file);
  own_ = std::move(setup.own);
  stream_ = setup.stream;
  fired_at_setup_ = setup.fired;
  config_ = std::move(setup.config);
  path_ = std::move(setup.path);
  trigger_ = std::move(setup.trigger);
  text_ = std::move(setup.text);
  stats_ = setup.stats;
  error_.clear();
}

void Pressure::set(PressureConfig config) {
  Setup fresh(std::move(config));  // the old trigger keeps working if this throws
  Frozen frozen = freeze();
  adopt(std::move(fresh));
  thaw(frozen);
}

void Pressure::start_impl() {
  detail::io_relay::start(raw_loop(), &io_, stream_ ? file_.fd() : own_.fd(), priority());
  error_.clear();  // it said why the watcher had stopped itself
  if (std::exchange(fired_at_setup_, false))
    detail::io_relay::relay(loop(), raw_loop(), &ev_, Event::Pri);
}

void Pressure::stop_impl() noexcept { detail::io_relay::stop(raw_loop(), &io_); }

bool Pressure::active_impl() const noexcept { return detail::io_relay::active(&io_); }

// A readable ev_io not yet relayed counts as the pending event: set() feeds it
// back as Event::Pri, and on_event's read then consumes what arrived.
int Pressure::take_pending() noexcept {
  return detail::io_relay::take_pending(raw_loop(), &io_, &ev_, Event::Pri);
}

bool Pressure::pending_impl() const noexcept { return detail::io_relay::pending(&io_, &ev_); }

void Pressure::on_event(int revents) noexcept {
  // After a callback threw, the event is deferred untouched and read when fed back.
  if (detail::Access::failed(*detail::Access::loop(*this))) {
    detail::dispatch(*this, revents);
    return;
  }
  int err = 0;
  if (stream_) {
    // Whatever the other end sent says "pressure": drop it (as sd-event does),
    // so the socket is not readable again for the same news.
    char buf[512];
    for (;;) {
      const ssize_t n = detail::sys::retry_eintr([&] { return detail::sys::read(file_.fd(), buf, sizeof buf); });
      if (n > 0) continue;
      if (n == 0) {  // the other end closed: nothing more will come
        stop();
        detail::dispatch(*this, Event::Hup);
        return;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      break;
    }
  } else {
    // The set stays readable until this (a failure stops the watcher: no spin).
    err = own_.forget_ready();
    // The averages of this moment; a removed cgroup fails here (ENODEV).
    const char* op;
    if (err == 0) err = file_.reread(text_, &op);
    if (err == 0) stats_ = parse(text_);
  }
  if (err != 0) {
    error_ = std::error_code(err, std::generic_category());
    stop();  // a failed source stays "ready": do not spin on it
    detail::dispatch(*this, Event::Error);
    return;
  }
  detail::dispatch(*this, revents);  // may destroy *this: touch nothing after
}

// "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=..."
PressureStats Pressure::parse(std::string_view text) noexcept {
  PressureStats stats;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    PressureLine* out = line.substr(0, 5) == "some " ? &stats.some : line.substr(0, 5) == "full " ? &stats.full : nullptr;
    if (out == nullptr) continue;
    line.remove_prefix(5);
    while (!line.empty()) {
      const std::size_t space = line.find(' ');
      const std::string_view field = line.substr(0, space);
      line = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
      const std::size_t eq = field.find('=');
      if (eq == std::string_view::npos) continue;
      const std::string_view key = field.substr(0, eq), value = field.substr(eq + 1);
      const char* first = value.data();
      const char* last = value.data() + value.size();
      if (key == "total") std::from_chars(first, last, out->total_us);
      else if (key == "avg10") std::from_chars(first, last, out->avg10);
      else if (key == "avg60") std::from_chars(first, last, out->avg60);
      else if (key == "avg300") std::from_chars(first, last, out->avg300);
    }
  }
  return stats;
}

}  // namespace evw
