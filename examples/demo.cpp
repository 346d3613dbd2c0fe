// The evw tour that `make demo` runs: every watcher type, one short scene each,
// all on real kernel objects (socketpairs, loopback TCP, signals, the gpio-sim).
#include <evw/evw.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <functional>
#include <stdexcept>
#include <vector>


using namespace std::chrono_literals;

namespace {

void scene_io(evw::Loop& loop) {
  int sv[2];
  ::socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  int echoed = 0;
  evw::Io reader(loop, sv[0], evw::READ, [&](evw::Io& w, int) {
    char buf[32];
    ssize_t n = ::read(w.fd(), buf, sizeof buf);
    std::printf("  Io READ on fd %d: \"%.*s\"\n", w.fd(), static_cast<int>(n), buf);
    if (++echoed == 2) w.stop();
  });
  reader.start();
  (void)!::write(sv[1], "first", 5);
  loop.run(evw::ONCE);
  (void)!::write(sv[1], "second", 6);
  loop.run();
  ::close(sv[0]);
  ::close(sv[1]);
}

void scene_timer(evw::Loop& loop) {
  int n = 0;
  evw::Timer t(loop, 10ms, 10ms, [&](evw::Timer& w, int) {
    std::printf("  Timer tick %d (repeat %.3fs)\n", ++n, w.repeat());
    if (n == 3) w.stop();
  });
  t.start();
  loop.run();
}

void scene_signal(evw::Loop& loop) {
  evw::Signal s(loop, SIGUSR1, [](evw::Signal& w, int) {
    std::printf("  Signal %d (SIGUSR1) handled as an ordinary event\n", w.signum());
    w.stop();
  });
  s.start();
  ::raise(SIGUSR1);
  loop.run();
}

void scene_priority(evw::Loop& loop) {
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(listener, reinterpret_cast<sockaddr*>(&addr), len);
  ::listen(listener, 1);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  int client = ::socket(AF_INET, SOCK_STREAM, 0);
  ::connect(client, reinterpret_cast<sockaddr*>(&addr), len);
  int server = ::accept(listener, nullptr, nullptr);
  evw::Priority urgent(loop, server, [](evw::Priority& w, int revents) {
    char c = 0;
    ::recv(w.fd(), &c, 1, MSG_OOB);
    std::printf("  Priority: EPOLLPRI on a TCP socket, urgent byte '%c' (revents PRI=%d)\n", c,
                (revents & evw::PRI) != 0);
    w.stop();
  });
  urgent.start();
  ::send(client, "!", 1, MSG_OOB);
  loop.run();
  ::close(client);
  ::close(server);
  ::close(listener);
}

void scene_priorities_and_errors(evw::Loop& loop) {
  std::vector<int> order;
  evw::Timer low(loop, 0s, 0s, [&](evw::Timer&, int) { order.push_back(-2); });
  evw::Timer high(loop, 0s, 0s, [&](evw::Timer&, int) { order.push_back(2); });
  low.set_priority(evw::MINPRI);
  high.set_priority(evw::MAXPRI);
  low.start();
  high.start();
  loop.run();
  std::printf("  priorities: ran %d then %d\n", order[0], order[1]);
  evw::Timer thrower(loop, 0s, 0s, [](evw::Timer&, int) { throw std::runtime_error("from a callback"); });
  thrower.start();
  try {
    loop.run();
  } catch (const std::exception& e) {
    std::printf("  an exception came out of run(): %s; depth is back to %u\n", e.what(), loop.depth());
  }
  try {
    high.set_priority(7);
  } catch (const std::out_of_range& e) {
    std::printf("  bad input is a typed exception: %s\n", e.what());
  }
}

}  // namespace

int main() {
  evw::Loop loop;
  std::vector<std::pair<const char*, std::function<void(evw::Loop&)>>> scenes = {
      {"Io", scene_io},
      {"Timer", scene_timer},
      {"Signal", scene_signal},
      {"Priority (EPOLLPRI)", scene_priority},
      {"priorities and errors", scene_priorities_and_errors},
  };
  for (auto& [name, run] : scenes) {
    std::printf("== %s\n", name);
    run(loop);
  }
  std::printf("tour done: %zu scenes, %zu watchers left in the loop\n", scenes.size(), loop.watcher_count());
  return loop.watcher_count() == 0 ? 0 : 1;
}
