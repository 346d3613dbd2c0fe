#define FUSE_USE_VERSION 312

#include "gpio_sim.hpp"

#include "filesystem.hpp"

#include <fuse_lowlevel.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdio_ext.h>
#include <dirent.h>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include <pthread.h>
#include <stdexcept>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif

namespace evw::sim {
namespace {

constexpr unsigned kMaxLinesPerChip = 65535;  // ngpio is a u16 in the kernel
constexpr unsigned long kMaxLines = 65536;

// libfuse explains a failed mount only through its log, so the messages logged while
// mounting are captured (per thread) and put in the exception.
thread_local std::string* captured_log = nullptr;

void log_message(enum fuse_log_level level, const char* format, va_list ap) {
  char text[1024];
  std::vsnprintf(text, sizeof text, format, ap);
  if (captured_log) {
    captured_log->append(text);
  } else if (level != FUSE_LOG_DEBUG) {
    std::fputs(text, stderr);
  }
}

class LogCapture {
 public:
  LogCapture() {
    static std::once_flag installed;
    std::call_once(installed, [] { fuse_set_log_func(log_message); });
    previous_ = captured_log;
    captured_log = &text_;
  }
  ~LogCapture() { captured_log = previous_; }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::string text() const {
    std::string out = text_;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    for (char& c : out) {
      if (c == '\n') c = ' ';
    }
    return out.empty() ? "libfuse gave no reason" : out;
  }

 private:
  std::string text_;
  std::string* previous_ = nullptr;
};

void validate(const Options& opts) {
  if (opts.chips == 0 || opts.lines == 0 || opts.lines > kMaxLinesPerChip ||
      static_cast<unsigned long>(opts.chips) * opts.lines > kMaxLines) {
    throw std::invalid_argument("gpio-sim: Options{chips=" + std::to_string(opts.chips) +
                                ", lines=" + std::to_string(opts.lines) +
                                "}: need chips >= 1, 1 <= lines <= 65535, chips*lines <= 65536");
  }
}

std::string errno_text(int error) { return std::strerror(error); }

// valgrind runs one client thread at a time and does not let go while a thread is in
// epoll_ctl() (or stat() without --sim-hints=fuse-compatible). When that call needs an answer
// from a FUSE mount served by another thread of the same process, both wait for ever; a
// separate process has its own valgrind and does not.
bool under_valgrind() {
  const char* preload = std::getenv("LD_PRELOAD");
  return preload && std::strstr(preload, "vgpreload");
}

class Fd {
 public:
  explicit Fd(int fd = -1) noexcept : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ~Fd() { reset(); }
  int get() const noexcept { return fd_; }
  int release() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// gpio-sim mounted with libfuse; the destructor unmounts.
class Session {
 public:
  Session(detail::Filesystem& fs, const std::string& mountpoint, const Options& opts) {
    LogCapture log;
    std::vector<std::string> words{"gpio-sim", "-o", "fsname=gpio-sim,subtype=gpio-sim"};
    if (opts.allow_other) words[2] += ",allow_other,default_permissions";
    std::vector<char*> argv;
    for (std::string& word : words) argv.push_back(word.data());
    fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
    const fuse_lowlevel_ops& ops = detail::Filesystem::operations();
    session_ = fuse_session_new(&args, &ops, sizeof ops, &fs);
    fuse_opt_free_args(&args);
    if (!session_) {
      throw std::system_error(EINVAL, std::generic_category(), "gpio-sim: fuse_session_new failed (libfuse: " + log.text() + ")");
    }
    errno = 0;
    if (fuse_session_mount(session_, mountpoint.c_str()) != 0) {
      const int error = errno != 0 ? errno : EIO;
      fuse_session_destroy(session_);
      throw std::system_error(error, std::generic_category(),
                              "gpio-sim: cannot mount FUSE on " + mountpoint + " (libfuse: " + log.text() + ")");
    }
    // A program exec'd by this process must not keep the connection open after we unmount.
    fcntl(fuse_session_fd(session_), F_SETFD, FD_CLOEXEC);
  }

  ~Session() {
    // libfuse closes /dev/fuse before it unmounts (as root: umount2 with MNT_DETACH). Closing
    // the last descriptor aborts the connection, so the unmount cannot wait for a daemon that
    // no longer serves, and files still open on the mount fail with ENOTCONN.
    fuse_session_unmount(session_);
    fuse_session_destroy(session_);
    std::free(buf_.mem);
  }

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// Serves requests until the connection ends or on_control(), called whenever `control`
  /// is readable, returns false.
  template <class OnControl>
  void serve(int control, OnControl on_control) {
    pollfd fds[2] = {{fuse_session_fd(session_), POLLIN, 0}, {control, POLLIN, 0}};
    while (!fuse_session_exited(session_)) {
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0 && !on_control()) return;
      if (fds[0].revents == 0) continue;
      const int received = fuse_session_receive_buf(session_, &buf_);
      if (received == -EINTR || received == -EAGAIN) continue;
      if (received <= 0) return;  // 0: unmounted or aborted (ENODEV)
      fuse_session_process_buf(session_, &buf_);
    }
  }

 private:
  fuse_session* session_ = nullptr;
  fuse_buf buf_{};
};

}  // namespace

struct GpioSim::Server {
  virtual ~Server() = default;
  virtual void set_input(unsigned line, int level) = 0;
  virtual int input(unsigned line) = 0;
  virtual bool serving() const noexcept = 0;
};

namespace {

// Serves from a thread of this process.
class ThreadServer final : public GpioSim::Server {
 public:
  ThreadServer(const std::string& mountpoint, const Options& opts)
      : fs_(opts.chips, opts.lines), session_(fs_, mountpoint, opts), wake_(eventfd(0, EFD_CLOEXEC)) {
    if (wake_.get() < 0) throw std::system_error(errno, std::generic_category(), "gpio-sim: eventfd");
    // The serving thread blocks every signal, so that signals meant for the program (or for
    // a test's signal watchers) are never delivered on it.
    sigset_t all;
    sigset_t previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    try {
      thread_ = std::thread([this] {
        session_.serve(wake_.get(), [] { return false; });
        serving_ = false;
      });
    } catch (...) {
      pthread_sigmask(SIG_SETMASK, &previous, nullptr);
      throw;
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  }

  ~ThreadServer() override {
    // Stop serving before unmounting: closing /dev/fuse does not wake a thread blocked on it,
    // so the thread also waits on an eventfd.
    const std::uint64_t one = 1;
    while (::write(wake_.get(), &one, sizeof one) < 0 && errno == EINTR) {
    }
    thread_.join();
  }

  void set_input(unsigned line, int level) override { fs_.set_input(line, level); }
  int input(unsigned line) override { return fs_.input(line); }
  bool serving() const noexcept override { return serving_.load(); }

 private:
  detail::Filesystem fs_;  // declared first: outlives the session that calls into it
  Session session_;
  Fd wake_;
  std::atomic<bool> serving_{true};
  std::thread thread_;
};

// Serves from a forked child, driven over a socketpair: one request, one reply.
class ProcessServer final : public GpioSim::Server {
 public:
  ProcessServer(const std::string& mountpoint, const Options& opts) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
      throw std::system_error(errno, std::generic_category(), "gpio-sim: socketpair");
    }
    Fd ours(pair[0]);
    Fd theirs(pair[1]);
    pid_ = ::fork();
    if (pid_ < 0) throw std::system_error(errno, std::generic_category(), "gpio-sim: fork");
    if (pid_ == 0) {
      ours.reset();
      run_child(theirs.get(), mountpoint, opts);
    }
    theirs.reset();
    control_ = std::move(ours);
    Started started{};
    if (receive(control_.get(), &started, sizeof started) != static_cast<ssize_t>(sizeof started) ||
        started.error != 0) {
      control_.reset();  // a child that did start stops at end of file
      reap();
      started.text[sizeof started.text - 1] = '\0';
      throw std::system_error(started.error != 0 ? started.error : EIO, std::generic_category(),
                              started.error != 0 ? started.text : "gpio-sim: the server process died");
    }
  }

  ~ProcessServer() override {
    control_.reset();  // end of file tells the child to unmount and exit
    reap();
  }

  void set_input(unsigned line, int level) override { call(Request{Request::Set, line, level}); }
  int input(unsigned line) override { return call(Request{Request::Get, line, 0}); }

  bool serving() const noexcept override {
    pollfd p{control_.get(), 0, 0};
    return ::poll(&p, 1, 0) == 0;  // POLLHUP once the child has gone
  }

 private:
  struct Request {
    enum Op : std::uint32_t { Set, Get };
    Op op;
    unsigned line;
    int level;
  };
  struct Started {
    int error;
    char text[512];
  };

  int call(const Request& request) {
    std::lock_guard lock(mutex_);
    int reply = 0;
    if (::send(control_.get(), &request, sizeof request, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof request) ||
        receive(control_.get(), &reply, sizeof reply) != static_cast<ssize_t>(sizeof reply)) {
      throw std::system_error(EPIPE, std::generic_category(), "gpio-sim: the server process is gone");
    }
    return reply;
  }

  // recv() that a signal handler in the test process does not cut short.
  static ssize_t receive(int fd, void* buf, std::size_t size) noexcept {
    ssize_t n = 0;
    while ((n = ::recv(fd, buf, size, 0)) < 0 && errno == EINTR) {
    }
    return n;
  }

  void reap() noexcept {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }

  [[noreturn]] static void run_child(int control, const std::string& mountpoint, const Options& opts) noexcept {
    // Signals go to the test process, not here; the child ends when the control socket does,
    // which also happens when the parent dies.
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
#ifdef VALGRIND_CLO_CHANGE
    // The child's heap is a copy of the parent's, whose pointers partly lived in other threads'
    // stacks: a leak check here would report the parent's memory as lost. Memory errors in the
    // server are still reported.
    VALGRIND_CLO_CHANGE("--leak-check=no");
#endif
    // Output the parent had buffered is the parent's to write; valgrind's exit-time libc
    // cleanup would flush the child's copy even though the child leaves through _exit().
    __fpurge(stdout);
    __fpurge(stderr);
    close_all_but(control);
    int status = 0;
    bool reported = false;
    try {
      detail::Filesystem fs(opts.chips, opts.lines);
      Session session(fs, mountpoint, opts);
      Started started{};
      ::send(control, &started, sizeof started, MSG_NOSIGNAL);
      reported = true;
      session.serve(control, [&] {
        Request request{};
        if (::recv(control, &request, sizeof request, 0) != static_cast<ssize_t>(sizeof request)) return false;
        int reply = 0;
        if (request.op == Request::Set) fs.set_input(request.line, request.level);
        else reply = fs.input(request.line);
        return ::send(control, &reply, sizeof reply, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof reply);
      });
    } catch (const std::exception& e) {
      status = 1;
      if (!reported) {
        Started started{};
        const auto* failure = dynamic_cast<const std::system_error*>(&e);
        started.error = failure ? failure->code().value() : EIO;
        std::snprintf(started.text, sizeof started.text, "%s", e.what());
        ::send(control, &started, sizeof started, MSG_NOSIGNAL);
      }
    } catch (...) {
      status = 1;
    }
    ::close(control);
    // No exit handlers: they belong to the parent (test runners, sanitizers, stdio buffers).
    ::_exit(status);
  }

  // The child must not keep other mounts' /dev/fuse descriptors (or anything else) open.
  static void close_all_but(int keep) noexcept {
    std::vector<int> fds;
    if (DIR* dir = ::opendir("/proc/self/fd")) {
      const int own = ::dirfd(dir);
      while (const dirent* entry = ::readdir(dir)) {
        const int fd = std::atoi(entry->d_name);
        if (entry->d_name[0] != '.' && fd > STDERR_FILENO && fd != keep && fd != own) fds.push_back(fd);
      }
      ::closedir(dir);
    }
    for (const int fd : fds) ::close(fd);
  }

  pid_t pid_ = -1;
  Fd control_;
  std::mutex mutex_;  // one request/reply exchange at a time
};

}  // namespace

GpioSim::GpioSim(std::string mountpoint, Options opts) {
  validate(opts);
  char* real = ::realpath(mountpoint.c_str(), nullptr);
  if (!real) {
    throw std::system_error(errno, std::generic_category(), "gpio-sim: mount point " + mountpoint);
  }
  root_ = real;
  std::free(real);
  lines_ = opts.chips * opts.lines;
  struct stat st {};
  if (::stat(root_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw std::system_error(ENOTDIR, std::generic_category(), "gpio-sim: mount point " + root_);
  }
  if (opts.separate_process || under_valgrind()) {
    server_ = std::make_unique<ProcessServer>(root_, opts);
  } else {
    server_ = std::make_unique<ThreadServer>(root_, opts);
  }
}

std::unique_ptr<GpioSim> GpioSim::in_temp_dir(Options opts) {
  validate(opts);
  const char* tmpdir = std::getenv("TMPDIR");
  std::string path = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/evw-gpio-sim.XXXXXX";
  if (!::mkdtemp(path.data())) {
    throw std::system_error(errno, std::generic_category(), "gpio-sim: mkdtemp " + path);
  }
  try {
    auto sim = std::make_unique<GpioSim>(path, opts);
    sim->remove_dir_ = true;
    return sim;
  } catch (...) {
    ::rmdir(path.c_str());
    throw;
  }
}

GpioSim::~GpioSim() {
  server_.reset();
  if (remove_dir_) ::rmdir(root_.c_str());
}

unsigned GpioSim::line_count() const noexcept { return lines_; }

void GpioSim::set_input(unsigned line, int level) {
  if (line >= line_count()) {
    throw std::out_of_range("gpio-sim: set_input: line " + std::to_string(line) + " is not in 0.." +
                            std::to_string(line_count() - 1));
  }
  if (level != 0 && level != 1) {
    throw std::invalid_argument("gpio-sim: set_input: level " + std::to_string(level) + " is not 0 or 1");
  }
  server_->set_input(line, level);
}

int GpioSim::input(unsigned line) const {
  if (line >= line_count()) {
    throw std::out_of_range("gpio-sim: input: line " + std::to_string(line) + " is not in 0.." +
                            std::to_string(line_count() - 1));
  }
  return server_->input(line);
}

bool GpioSim::serving() const noexcept { return server_->serving(); }

std::string GpioSim::unavailable_reason() {
  static const std::string reason = [] () -> std::string {
    if (::access("/dev/fuse", F_OK) != 0) return "no /dev/fuse (" + errno_text(errno) + ")";
    const int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) return "cannot open /dev/fuse: " + errno_text(errno);
    ::close(fd);
    try {
      const auto sim = in_temp_dir(Options{1, 1});
      struct stat st {};
      if (::stat((sim->root() + "/export").c_str(), &st) != 0) {
        return "gpio-sim mounted but does not answer: " + errno_text(errno);
      }
    } catch (const std::exception& e) {
      return e.what();
    }
    return {};
  }();
  return reason;
}

}  // namespace evw::sim
