// Minimal example of evw::Signal: signals become ordinary loop events, so the
// handler may do anything (no async-signal-safety rules inside the callback).
#include <evw/evw.hpp>

#include <signal.h>
#include <unistd.h>

#include <cstdio>

constexpr int kUsr1Wanted = 3;

int main() {
  evw::Loop loop;
  int usr1 = 0;
  evw::Signal on_usr1(loop, SIGUSR1, [&](evw::Signal&, int) {
    std::printf("SIGUSR1 #%d\n", ++usr1);
    if (usr1 == kUsr1Wanted) loop.stop();
  });
  evw::Signal on_term(loop, SIGTERM, [&](evw::Signal& w, int) {
    std::printf("SIGTERM: bye\n");
    w.loop().stop();
  });
  on_usr1.start();
  on_term.start();

  // Send ourselves signals from a timer; from a shell: kill -USR1 <pid>.
  evw::Timer sender(loop, 0.01, 0.05, [](evw::Timer&, int) { ::kill(::getpid(), SIGUSR1); });
  sender.start();

  std::printf("pid %d waiting for %d x SIGUSR1 (or SIGTERM)\n", ::getpid(), kUsr1Wanted);
  loop.run();
}
