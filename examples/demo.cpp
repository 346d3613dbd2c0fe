// The evw tour that `make demo` runs: every watcher type, one short scene each,
// all on real kernel objects (socketpairs, loopback TCP, signals, the gpio-sim).
#include <evw/coro/coro.hpp>
#include <evw/evw.hpp>
#include <evw/sim/gpio_sim.hpp>  // pkg-config evw-gpiosim

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <cstdio>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace {

void scene_io(evw::Loop& loop) {
  int sv[2];
  ::socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  int echoed = 0;
  evw::Io reader(loop, sv[0], evw::Event::Read, [&](evw::Io& w, int) {
    char buf[32];
    ssize_t n = ::read(w.fd(), buf, sizeof buf);
    std::printf("  Io Event::Read on fd %d: \"%.*s\"\n", w.fd(), static_cast<int>(n), buf);
    if (++echoed == 2) w.stop();
  });
  reader.start();
  (void)!::write(sv[1], "first", 5);
  loop.run(evw::Run::Once);
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
    std::printf("  Priority: EPOLLPRI on a TCP socket, urgent byte '%c' (revents Event::Pri=%d)\n", c,
                (revents & evw::Event::Pri) != 0);
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
  low.set_priority(evw::min_priority);
  high.set_priority(evw::max_priority);
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

void scene_periodic(evw::Loop& loop) {
  int n = 0;
  evw::Periodic p(loop, 0.0, 0.02, [&](evw::Periodic& w, int) {
    std::printf("  Periodic on the wall clock: tick at %.2f (every %.2fs)\n", w.at(), w.interval());
    if (++n == 2) w.stop();
  });
  p.start();
  loop.run();
}

void scene_idle_prepare_check(evw::Loop& loop) {
  int prepares = 0, checks = 0;
  evw::Prepare prep(loop, [&](evw::Prepare&, int) { ++prepares; });
  evw::Check chk(loop, [&](evw::Check&, int) { ++checks; });
  evw::Idle idle(loop, [&](evw::Idle& w, int) {
    std::printf("  Idle ran with nothing else to do (prepare %d, check %d so far)\n", prepares, checks);
    w.stop();
    prep.stop();
    chk.stop();
  });
  prep.start();
  chk.start();
  idle.start();
  loop.run();
}

void scene_child_async(evw::Loop&) {
  evw::Loop& def = evw::Loop::default_loop();  // Child watchers live in the default loop
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(7);
  evw::Child child(def, pid, [](evw::Child& w, int) {
    std::printf("  Child %d exited with status %d\n", w.rpid(), WEXITSTATUS(w.rstatus()));
    w.stop();
  });
  child.start();
  int results = 0;
  evw::Async async(def, [&](evw::Async& w, int) {
    std::printf("  Async: a worker thread woke the loop (thread-safe send)\n");
    if (++results == 1) w.stop();
  });
  async.start();
  std::thread worker([&] { async.send(); });
  def.run();
  worker.join();
}

void scene_stat(evw::Loop& loop) {
  char dir[] = "/tmp/evw-demo-XXXXXX";
  ::mkdtemp(dir);
  const std::string path = std::string(dir) + "/watched";
  evw::Stat st(loop, path, 0.01, [&](evw::Stat& w, int) {
    std::printf("  Stat: %s now has %lld bytes (was %lld)\n", path.c_str(),
                static_cast<long long>(w.attr().st_size), static_cast<long long>(w.prev().st_size));
    w.stop();
  });
  st.start();
  evw::Timer writer(loop, 0.02, 0.0, [&](evw::Timer&, int) { std::ofstream(path) << "hello\n"; });
  writer.start();
  loop.run();
  ::unlink(path.c_str());
  ::rmdir(dir);
}

void scene_embed_cleanup(evw::Loop& loop) {
  int sv[2];
  ::socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  {
    evw::Loop inner(evw::Backend::Epoll);
    evw::Io io(inner, sv[0], evw::Event::Read, [](evw::Io& w, int) {
      std::printf("  Embed: an Io of an embedded loop fired while only the outer loop runs\n");
      w.stop();
    });
    io.start();
    evw::Embed embed(loop, inner);
    embed.start();
    // Loop-owned, so it is still there when ~Loop runs the Cleanup watchers.
    inner.add<evw::Cleanup>([](evw::Cleanup&, int) { std::printf("  Cleanup: the embedded loop says goodbye\n"); })
        .start();
    (void)!::write(sv[1], "x", 1);
    while (io.is_active()) loop.run(evw::Run::Once);
    embed.stop();
  }
  ::close(sv[0]);
  ::close(sv[1]);
}

void scene_gpio(evw::Loop& loop) {
  if (auto why = evw::sim::GpioSim::unavailable_reason(); !why.empty()) {
    std::printf("  (GPIO scene not run: %s)\n", why.c_str());
    return;
  }
  constexpr int kLine = 17, kPresses = 3;
  auto sim = evw::sim::GpioSim::in_temp_dir();
  std::printf("  gpio-sim mounted at %s (a simulated /sys/class/gpio)\n", sim->root().c_str());
  int presses = 0;
  evw::Gpio button(loop, kLine, evw::GpioConfig{.sysfs_root = sim->root(), .edge = evw::Edge::Rising},
                   [&](evw::Gpio& g, int) {
                     std::printf("  Gpio %d: rising edge, value now %d (press %d)\n", g.line(), g.value(), ++presses);
                     if (presses == kPresses) g.stop();
                   });
  button.start();
  int level = 0;
  evw::Timer finger(loop, 0.01, 0.01, [&](evw::Timer& w, int) {
    sim->set_input(kLine, level ^= 1);  // press, release, press, ...
    if (!button.is_active()) w.stop();
  });
  finger.start();
  loop.run();
}

// Not the default loop: Child watches its one child through a pidfd and
// reaps nothing else (any loop, any thread).
void scene_child_pidfd(evw::Loop& loop) {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(3);
  evw::Child child(loop, pid, [](evw::Child& w, int revents) {
    if (revents & evw::Event::Error) std::printf("  Child: no status: %s\n", w.error().message().c_str());
    else std::printf("  Child %d exited with status %d, seen through its pidfd\n", w.rpid(), WEXITSTATUS(w.rstatus()));
  });
  try {
    child.start();
  } catch (const std::system_error& e) {  // ENOSYS before Linux 5.3
    std::printf("  (pidfd scene not run: %s)\n", e.what());
    ::waitpid(pid, nullptr, 0);
    return;
  }
  loop.run();  // the watcher stops itself at the exit
}

// Attr: any sysfs/kernfs file that notifies, read as text at each change
// (here gpio-sim's `value`, the file Gpio is built on).
void scene_attr(evw::Loop& loop) {
  if (auto why = evw::sim::GpioSim::unavailable_reason(); !why.empty()) {
    std::printf("  (Attr scene not run: %s)\n", why.c_str());
    return;
  }
  constexpr int kLine = 4;
  auto sim = evw::sim::GpioSim::in_temp_dir();
  const std::string dir = sim->root() + "/gpio" + std::to_string(kLine);
  std::ofstream(sim->root() + "/export") << kLine;
  std::ofstream(dir + "/direction") << "in";
  std::ofstream(dir + "/edge") << "both";
  evw::Attr value(loop, dir + "/value", [](evw::Attr& w, int) {
    std::printf("  Attr: %s changed, now \"%s\"\n", w.path().c_str(), w.value().c_str());
    if (w.value() == "0") w.stop();
  });
  std::printf("  Attr: %s reads \"%s\" at first\n", value.path().c_str(), value.value().c_str());
  value.start();
  int level = 0;
  evw::Timer driver(loop, 0.01, 0.01, [&](evw::Timer& w, int) {
    sim->set_input(kLine, level ^= 1);
    if (!value.is_active()) w.stop();
  });
  driver.start();
  loop.run();
  std::ofstream(sim->root() + "/unexport") << kLine;
}

evw::Task<int> wait_for_data(evw::Loop& loop, int fd) {
  int revents = co_await evw::readable(loop, fd);
  char buf[16];
  ssize_t n = ::read(fd, buf, sizeof buf);
  std::printf("  coroutine: co_await readable -> revents %d, read %zd bytes\n", revents, n);
  co_await evw::sleep(loop, 10ms);
  co_return static_cast<int>(n);
}

void scene_coroutine(evw::Loop& loop) {
  int sv[2];
  ::socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  (void)!::write(sv[1], "abc", 3);
  int n = evw::sync_wait(loop, wait_for_data(loop, sv[0]));
  std::printf("  coroutine returned %d after a co_await sleep\n", n);
  ::close(sv[0]);
  ::close(sv[1]);
}

}  // namespace

int main() {
  evw::Loop loop;
  std::vector<std::pair<const char*, std::function<void(evw::Loop&)>>> scenes = {
      {"Io", scene_io},
      {"Timer", scene_timer},
      {"Signal", scene_signal},
      {"Priority (EPOLLPRI)", scene_priority},
      {"Periodic", scene_periodic},
      {"Idle, Prepare, Check", scene_idle_prepare_check},
      {"Child and Async (default loop)", scene_child_async},
      {"Child in any loop (pidfd)", scene_child_pidfd},
      {"Stat", scene_stat},
      {"Embed and Cleanup", scene_embed_cleanup},
      {"Gpio on the simulator", scene_gpio},
      {"Attr (a notifying sysfs file, on the simulator)", scene_attr},
      {"coroutines", scene_coroutine},
      {"priorities and errors", scene_priorities_and_errors},
  };
  for (auto& [name, run] : scenes) {
    std::printf("== %s\n", name);
    run(loop);
  }
  std::printf("tour done: %zu scenes, %zu watchers left in the loop\n", scenes.size(), loop.watcher_count());
  return loop.watcher_count() == 0 ? 0 : 1;
}
