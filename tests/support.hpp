// Shared helpers for evw's doctest suites.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <utility>

namespace evw_test {

/// Record that the running test case is skipped, and why (printed, counted).
void skip(const std::string& reason);

/// An owned descriptor: closes on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~Fd() { reset(); }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

/// A nonblocking AF_UNIX stream socketpair.
std::pair<Fd, Fd> socket_pair();
/// A connected loopback TCP pair (client, server side), nonblocking.
std::pair<Fd, Fd> tcp_pair();
/// Count of open descriptors of this process.
int open_fd_count();
/// Runs body in a forked child: true if it returned true and the child exited
/// normally. For cases that would abort the process (a libev assert) if the
/// behaviour under test broke: then only that test fails, not the suite.
bool passes_in_child(const std::function<bool()>& body);

}  // namespace evw_test

/// Skip the current test case with a reason; counted as skipped, never passed.
#define EVW_SKIP(reason)            \
  do {                              \
    ::evw_test::skip(reason);       \
    return;                         \
  } while (0)

namespace evw {
class Loop;
}

namespace evw_test {
/// Run loop iterations (Run::Once) until done() or `seconds` pass; true if done().
/// Bounded by a timer, so a missing event fails a test instead of hanging it.
bool run_until(evw::Loop& loop, const std::function<bool()>& done, double seconds = 2.0);
}  // namespace evw_test
