// The test runner: doctest plus a closing line "evw-tests: N passed, N failed,
// N skipped" that counts test cases (a skipped case is never counted as passed).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <stdexcept>
#include <system_error>

#include "support.hpp"

namespace {

int passed = 0, failed = 0, skipped = 0;
bool skip_current = false;
std::string current_name;

struct Counter final : doctest::IReporter {
  explicit Counter(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData& data) override {
    skip_current = false;
    current_name = data.m_name;
  }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats& stats) override {
    if (!stats.testCaseSuccess) ++failed;
    else if (skip_current) ++skipped;
    else ++passed;
  }
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

REGISTER_LISTENER("evw-counter", 1, Counter);

}  // namespace

namespace evw_test {

void skip(const std::string& reason) {
  skip_current = true;
  std::printf("SKIPPED: %s: %s\n", current_name.c_str(), reason.c_str());
  std::fflush(stdout);
}

static void nonblock(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

std::pair<Fd, Fd> socket_pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::system_error(errno, std::generic_category(), "socketpair");
  return {Fd(sv[0]), Fd(sv[1])};
}

std::pair<Fd, Fd> tcp_pair() {
  Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener.get() < 0 || ::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listener.get(), 1) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::system_error(errno, std::generic_category(), "tcp listener");
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0)
    throw std::system_error(errno, std::generic_category(), "connect");
  Fd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (server.get() < 0) throw std::system_error(errno, std::generic_category(), "accept");
  int one = 1;
  ::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  nonblock(client.get());
  nonblock(server.get());
  return {std::move(client), std::move(server)};
}

int open_fd_count() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    --n;  // the directory's own fd
  }
  return n;
}

bool passes_in_child(const std::function<bool()>& body) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    bool ok = false;
    try {
      ok = body();
    } catch (...) {
    }
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  if (WIFSIGNALED(status)) MESSAGE("child killed by signal " << WTERMSIG(status));
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace evw_test

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // through a pipe too, a hang shows where it is
  doctest::Context context(argc, argv);
  int rc = context.run();
  if (context.shouldExit()) return rc;
  std::printf("evw-tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return rc != 0 || failed != 0 ? 1 : 0;
}

#include <evw/evw.hpp>

namespace evw_test {

bool run_until(evw::Loop& loop, const std::function<bool()>& done, double seconds) {
  bool expired = false;
  loop.update_now();  // a loop that has not run for a while would expire the guard at once
  evw::Timer guard(loop, seconds, 0.0, [&](evw::Timer&, int) { expired = true; });
  guard.start();
  while (!done() && !expired) loop.run(evw::Run::Once);
  return done();
}

}  // namespace evw_test
