// Helpers for the suites of the kernel-notification watchers (Pressure,
// Mounts, Attr, CgroupEvents, Child's pidfd form): real cgroup v2 groups, a
// private mount namespace in a forked child, CPU-spinning children.
// Header-only: each helper is small and used by two or three suites.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace evw_test {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Writes text to path (one write). @return 0 or errno.
inline int write_file(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int err = n < 0 ? errno : 0;
  ::close(fd);
  return err;
}

/// Where the cgroup v2 hierarchy is mounted ("" if nowhere): /sys/fs/cgroup
/// on a unified system, /sys/fs/cgroup/unified on a hybrid one.
inline std::string cgroup2_root() {
  std::istringstream in(read_file("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    const std::size_t dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    fields >> id >> parent >> dev >> root >> mount_point;
    return mount_point;
  }
  return "";
}

/// True if this process has the capability (CapEff in /proc/self/status).
inline bool has_capability(int cap) {
  std::istringstream in(read_file("/proc/self/status"));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("CapEff:", 0) == 0) return ((std::stoull(line.substr(7), nullptr, 16) >> cap) & 1) != 0;
  return false;
}

/// A fresh cgroup v2 group for one test, removed at the end (its processes
/// killed first). ok() is false, and why() says why, where that cannot be.
class TempCgroup {
 public:
  explicit TempCgroup(const std::string& name = "evw-test") {
    const std::string root = cgroup2_root();
    if (root.empty()) {
      why_ = "no cgroup v2 hierarchy is mounted";
      return;
    }
    static int serial = 0;
    path_ = root + "/" + name + "-" + std::to_string(::getpid()) + "-" + std::to_string(++serial);
    if (::mkdir(path_.c_str(), 0755) != 0) {
      why_ = "cannot create a cgroup under " + root + ": " + std::strerror(errno);
      path_.clear();
    }
  }
  ~TempCgroup() { remove(); }
  TempCgroup(const TempCgroup&) = delete;
  TempCgroup& operator=(const TempCgroup&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& why() const { return why_; }
  const std::string& path() const { return path_; }
  std::string file(const char* name) const { return path_ + "/" + name; }
  /// Moves pid into the group. @return 0 or errno.
  int adopt(pid_t pid) const { return write_file(file("cgroup.procs"), std::to_string(pid)); }
  /// Kills everything in the group, waits (bounded) until it is empty and removes it.
  void remove() {
    if (path_.empty()) return;
    write_file(file("cgroup.kill"), "1");
    for (int i = 0; i < 500 && ::rmdir(path_.c_str()) != 0 && errno == EBUSY; ++i) ::usleep(2000);
    path_.clear();
  }
  /// The controllers that may be enabled for the group ("memory", "cpu", ...).
  bool controller_available(const std::string& name) const {
    std::istringstream in(read_file(file("cgroup.controllers")));
    std::string c;
    while (in >> c)
      if (c == name) return true;
    return false;
  }

 private:
  std::string path_;
  std::string why_;
};

/// A forked child that waits for a word on a pipe, then runs `then` and exits 0.
class Kid {
 public:
  template <class F>
  explicit Kid(F then) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::alarm(20);
      // doctest's handlers are inherited: a signal sent to kill the child must kill it.
      for (int sig : {SIGTERM, SIGINT, SIGALRM}) ::signal(sig, SIG_DFL);
      ::close(p[1]);
      char c;
      while (::read(p[0], &c, 1) < 0 && errno == EINTR) {
      }
      then();
      ::_exit(0);
    }
    ::close(p[0]);
    go_ = p[1];
  }
  ~Kid() {
    if (go_ >= 0) ::close(go_);
  }
  Kid(const Kid&) = delete;
  Kid& operator=(const Kid&) = delete;
  pid_t pid() const { return pid_; }
  void release() {
    if (go_ < 0) return;
    (void)!::write(go_, "g", 1);
    ::close(go_);
    go_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int go_ = -1;
};

/// Children that spin on the CPU until killed (at destruction).
class Spinners {
 public:
  explicit Spinners(int n) {
    for (int i = 0; i < n; ++i) {
      const pid_t pid = ::fork();
      if (pid == 0) {
        ::alarm(15);  // never outlive a stuck test
        for (;;) __asm__ __volatile__("");  // spin: the compiler may not drop it
      }
      if (pid > 0) pids_.push_back(pid);
    }
  }
  ~Spinners() { stop(); }
  Spinners(const Spinners&) = delete;
  Spinners& operator=(const Spinners&) = delete;
  const std::vector<pid_t>& pids() const { return pids_; }
  void stop() {
    for (pid_t pid : pids_) ::kill(pid, SIGKILL);
    for (pid_t pid : pids_) while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {}
    pids_.clear();
  }

 private:
  std::vector<pid_t> pids_;
};

/// Runs body in a forked child with a private mount namespace (its mounts
/// never reach the host). body returns "" on success, "SKIP: why" to skip,
/// else what failed. @return what body returned, or why the child failed.
inline std::string in_mount_namespace(const std::function<std::string()>& body) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return std::string("fork: ") + std::strerror(errno);
  if (pid == 0) {
    ::close(p[0]);
    ::alarm(20);
    std::string out;
    if (::unshare(CLONE_NEWNS) != 0) {
      out = std::string("SKIP: unshare(CLONE_NEWNS): ") + std::strerror(errno);
    } else if (::mount(nullptr, "/", nullptr, MS_PRIVATE | MS_REC, nullptr) != 0) {
      out = std::string("SKIP: mount --make-rprivate /: ") + std::strerror(errno);
    } else {
      try {
        out = body();
      } catch (const std::exception& e) {
        out = std::string("exception: ") + e.what();
      } catch (...) {
        out = "unknown exception";
      }
    }
    (void)!::write(p[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(p[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(p[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return "the namespace child died (status " + std::to_string(status) + "): " + out;
  return out;
}

/// Sets (or, with nullptr, unsets) an environment variable for one scope.
class Env {
 public:
  Env(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (value != nullptr) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~Env() {
    if (had_) ::setenv(name_, old_.c_str(), 1);
    else ::unsetenv(name_);
  }
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

/// A directory under /tmp for one test, removed (with what is in it) at the end.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/evw-test-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    if (!path_.empty()) (void)!std::system(("rm -rf '" + path_ + "'").c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace evw_test

/// The test's result from in_mount_namespace(): pass, skip (counted) or fail.
#define EVW_CHECK_NAMESPACE_RESULT(result)                                  \
  do {                                                                      \
    const std::string evw_result_ = (result);                               \
    if (evw_result_.rfind("SKIP: ", 0) == 0) EVW_SKIP(evw_result_.substr(6)); \
    CHECK_MESSAGE(evw_result_.empty(), evw_result_);                        \
  } while (0)
