// Minimal example of evw::Child: spawn processes and reap them on the
// default loop (libev's SIGCHLD: any child, stops and continues too; other
// loops watch one child each by its pidfd, see supervise.cpp).
#include <evw/core/loop.hpp>
#include <evw/watchers/child.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

constexpr const char* kCommand = "sleep 0.2; exit 3";  // run by /bin/sh
constexpr int kDirectExit = 7;                       // a forked child _exits with this

static void report(evw::Child& w, int) {
  const int status = w.rstatus();
  if (WIFEXITED(status))
    std::printf("child %d exited with %d\n", w.rpid(), WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    std::printf("child %d was killed by signal %d\n", w.rpid(), WTERMSIG(status));
  w.stop();
}

int main() {
  evw::Loop& loop = evw::Loop::default_loop();  // owns SIGCHLD

  pid_t shell = ::fork();
  if (shell < 0) return 1;
  if (shell == 0) {
    ::execl("/bin/sh", "sh", "-c", kCommand, static_cast<char*>(nullptr));
    ::_exit(127);  // exec failed
  }
  pid_t quick = ::fork();
  if (quick < 0) return 1;
  if (quick == 0) ::_exit(kDirectExit);

  std::printf("spawned %d (sh -c '%s') and %d\n", shell, kCommand, quick);
  // A child that exits before its watcher starts is still reported: libev
  // reaps when the loop runs.
  evw::Child a(loop, shell, report);
  evw::Child b(loop, quick, report);
  a.start();
  b.start();
  loop.run();  // returns once both watchers have stopped
  std::printf("all children reaped\n");
}
