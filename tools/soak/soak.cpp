// soak: a mixed workload in one evw loop for a given time, watching for
// leaks. Echo traffic over socketpairs, repeating and one-shot timers (also
// loop-owned ones added and removed all the time), signals (raise), TCP
// urgent data over loopback (Priority), GPIO edges on the in-process gpio-sim,
// Async sends from another thread, and a churn of watchers with their own
// descriptors created and destroyed. Prints the events handled and, after a
// warm-up and at the end, the resident set size (/proc/self/statm) and the
// number of open descriptors; exits 1 if the RSS grew by more than the
// tolerance, the descriptor count grew, or any echo came back wrong.
//
//   soak [--duration SECONDS] [--warmup SECONDS] [--rss-tolerance-kb KB]
#include <evw/evw.hpp>

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <evw/sim/gpio_sim.hpp>

namespace {

// ---- knobs -------------------------------------------------------------------
constexpr int kEchoPairs = 8;           // socketpairs with a message bouncing on each
constexpr int kMessage = 64;            // bytes per echo message
constexpr int kTimers = 16;             // repeating timers, 1..16 ms
constexpr int kUrgentPairs = 2;         // loopback TCP pairs carrying urgent bytes
constexpr int kGpioLines = 2;           // gpio-sim lines toggled
constexpr double kTick = 0.001;         // period of the signal, urgent and GPIO drivers

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd >= 0) ::close(fd);
      fd = o.fd;
      o.fd = -1;
    }
    return *this;
  }
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

long rss_kb() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

int open_fds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    --n;  // the directory itself
  }
  return n;
}

std::pair<Fd, Fd> socket_pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) std::perror("socketpair"), std::exit(2);
  return {Fd(sv[0]), Fd(sv[1])};
}

std::pair<Fd, Fd> tcp_pair() {
  Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(listener.fd, 1) != 0 ||
      ::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    std::perror("listen"), std::exit(2);
  Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(client.fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) std::perror("connect"), std::exit(2);
  Fd server(::accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  const int one = 1;
  ::setsockopt(client.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return {std::move(client), std::move(server)};
}

void send_urgent(int client, int server) {
  const int one = 1;
  ::setsockopt(server, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);  // no delayed-ACK stalls
  const char c = '!';
  (void)::send(client, &c, 1, MSG_OOB | MSG_DONTWAIT);
}

void take_urgent(int fd) {
  char c;
  (void)::recv(fd, &c, 1, MSG_OOB);
  char buf[64];
  while (::recv(fd, buf, sizeof buf, 0) > 0) {
  }
}

struct Counts {
  std::uint64_t echo = 0, timers = 0, oneshots = 0, signals = 0, urgent = 0, gpio = 0, async = 0, churn = 0,
                iterations = 0, echo_errors = 0;
  std::uint64_t total() const { return echo + timers + oneshots + signals + urgent + gpio + async + churn; }
};

// One echo channel: the client sends a numbered message, the server sends it
// back, the client checks it and sends the next.
struct Echo {
  Fd client, server;
  std::unique_ptr<evw::Io> client_io, server_io;
  std::uint64_t next = 0;
  char in[kMessage] = {};
  int have = 0;
  char back[kMessage] = {};
  int back_have = 0;
};

void fill(char* buf, std::uint64_t n) {
  for (int i = 0; i < kMessage; ++i) buf[i] = static_cast<char>((n * 31 + static_cast<std::uint64_t>(i)) & 0xff);
}

}  // namespace

int main(int argc, char** argv) {
  double duration = 60, warmup = -1;
  long tolerance_kb = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string opt = argv[i];
    if (opt == "--duration") duration = std::atof(argv[i + 1]);
    else if (opt == "--warmup") warmup = std::atof(argv[i + 1]);
    else if (opt == "--rss-tolerance-kb") tolerance_kb = std::atol(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: soak [--duration S] [--warmup S] [--rss-tolerance-kb KB]\n");
      return 2;
    }
  }
  if (warmup < 0) warmup = duration / 10 < 1 ? 1 : (duration / 10 > 10 ? 10 : duration / 10);
  if (warmup >= duration) warmup = duration / 2;
  ::signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<evw::sim::GpioSim> sim;
  const std::string why = evw::sim::GpioSim::unavailable_reason();
  if (why.empty()) sim = evw::sim::GpioSim::in_temp_dir();
  std::printf("soak: %.0f s (warm-up %.0f s), gpio-sim: %s\n", duration, warmup, why.empty() ? "yes" : why.c_str());
  std::fflush(stdout);

  evw::Loop loop;
  Counts n;
  bool failed = false;

  // 1. Echo traffic.
  std::vector<std::unique_ptr<Echo>> echoes;
  for (int i = 0; i < kEchoPairs; ++i) {
    auto e = std::make_unique<Echo>();
    auto [c, s] = socket_pair();
    e->client = std::move(c);
    e->server = std::move(s);
    Echo* ep = e.get();
    e->server_io = std::make_unique<evw::Io>(loop, ep->server.fd, evw::Event::Read, [ep](evw::Io& w, int) {
      const ssize_t r = ::read(w.fd(), ep->back + ep->back_have, static_cast<std::size_t>(kMessage - ep->back_have));
      if (r <= 0) return;
      ep->back_have += static_cast<int>(r);
      if (ep->back_have < kMessage) return;
      (void)::write(w.fd(), ep->back, kMessage);  // small: fits the socket buffer
      ep->back_have = 0;
    });
    e->client_io = std::make_unique<evw::Io>(loop, ep->client.fd, evw::Event::Read, [ep, &n](evw::Io& w, int) {
      const ssize_t r = ::read(w.fd(), ep->in + ep->have, static_cast<std::size_t>(kMessage - ep->have));
      if (r <= 0) return;
      ep->have += static_cast<int>(r);
      if (ep->have < kMessage) return;
      char want[kMessage];
      fill(want, ep->next);
      if (std::memcmp(want, ep->in, kMessage) != 0) ++n.echo_errors;
      ++n.echo;
      ep->have = 0;
      fill(want, ++ep->next);
      (void)::write(w.fd(), want, kMessage);
    });
    e->server_io->start();
    e->client_io->start();
    char first[kMessage];
    fill(first, 0);
    (void)::write(ep->client.fd, first, kMessage);
    echoes.push_back(std::move(e));
  }

  // 2. Timers: repeating ones, and loop-owned one-shots added and removed.
  std::vector<std::unique_ptr<evw::Timer>> timers;
  for (int i = 0; i < kTimers; ++i) {
    timers.push_back(std::make_unique<evw::Timer>(loop, 0.001 * (i + 1), 0.001 * (i + 1),
                                                  [&n](evw::Timer&, int) { ++n.timers; }));
    timers.back()->start();
  }
  evw::Timer spawner(loop, 0.002, 0.002, [&](evw::Timer&, int) {
    auto& t = loop.add<evw::Timer>(0.001, 0.0, [&](evw::Timer& self, int) {
      ++n.oneshots;
      loop.remove(self);  // destroyed inside its own callback
    });
    t.start();
  });
  spawner.start();

  // 3. Signals.
  evw::Signal usr1(loop, SIGUSR1, [&n](evw::Signal&, int) { ++n.signals; });
  evw::Signal usr2(loop, SIGUSR2, [&n](evw::Signal&, int) { ++n.signals; });
  usr1.start();
  usr2.start();
  std::uint64_t ticks = 0;

  // 4. Urgent data.
  std::vector<std::pair<Fd, Fd>> urgent_pairs;
  std::vector<std::unique_ptr<evw::Priority>> urgent_watchers;
  for (int i = 0; i < kUrgentPairs; ++i) {
    urgent_pairs.push_back(tcp_pair());
    urgent_watchers.push_back(std::make_unique<evw::Priority>(loop, urgent_pairs.back().second.fd,
                                                              [&n](evw::Priority& w, int) {
                                                                ++n.urgent;
                                                                take_urgent(w.fd());
                                                              }));
    urgent_watchers.back()->start();
  }

  // 5. GPIO edges.
  std::vector<std::unique_ptr<evw::Gpio>> gpios;
  int level = 0;
  if (sim) {
    for (int i = 0; i < kGpioLines; ++i) {
      sim->set_input(static_cast<unsigned>(i), 0);
      evw::GpioConfig config{.sysfs_root = sim->root(), .edge = evw::Edge::Both};
      gpios.push_back(std::make_unique<evw::Gpio>(loop, i, config, [&n](evw::Gpio&, int) { ++n.gpio; }));
      gpios.back()->start();
    }
  }

  // The drivers of 3-5, every millisecond.
  evw::Timer driver(loop, kTick, kTick, [&](evw::Timer&, int) {
    ++ticks;
    ::raise(ticks % 10 == 0 ? SIGUSR2 : SIGUSR1);
    for (auto& [client, server] : urgent_pairs) send_urgent(client.fd, server.fd);
    if (sim) {
      level ^= 1;
      for (int i = 0; i < kGpioLines; ++i) sim->set_input(static_cast<unsigned>(i), level);
    }
  });
  driver.start();

  // 6. Async from another thread.
  evw::Async async(loop, [&n](evw::Async&, int) { ++n.async; });
  async.start();
  std::atomic<bool> stop_thread{false};
  std::thread sender([&] {
    while (!stop_thread.load()) {
      async.send();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });

  // 7. Churn: watchers with descriptors of their own, made and destroyed.
  evw::Timer churn(loop, 0.005, 0.005, [&](evw::Timer&, int) {
    auto [a, b] = socket_pair();
    auto [c, s] = tcp_pair();
    int got = 0;
    evw::Io io(loop, a.fd, evw::Event::Read, [&got](evw::Io& w, int) {
      char buf[16];
      if (::read(w.fd(), buf, sizeof buf) > 0) ++got;
    });
    evw::Priority pri(loop, s.fd, [&got](evw::Priority& w, int) {
      take_urgent(w.fd());
      ++got;
    });
    evw::Idle idle(loop, [](evw::Idle&, int) {});
    io.start();
    pri.start();
    idle.start();
    (void)::write(b.fd, "x", 1);
    send_urgent(c.fd, s.fd);
    loop.run(evw::Run::NoWait);  // a nested run, as some applications do
    loop.run(evw::Run::NoWait);
    ++n.churn;
  });
  churn.start();

  evw::Check check(loop, [&n](evw::Check&, int) { ++n.iterations; });
  check.start();

  // Measuring: a baseline after the warm-up, the end state at the end.
  long rss_start = 0, rss_end = 0;
  int fds_start = 0, fds_end = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  double next_report = 10;
  evw::Timer monitor(loop, 0.25, 0.25, [&](evw::Timer&, int) {
    const double t = elapsed();
    if (rss_start == 0 && t >= warmup) {
      rss_start = rss_kb();
      fds_start = open_fds();
      std::printf("soak: after warm-up (%.1f s): RSS %ld KiB, %d open fds\n", t, rss_start, fds_start);
      std::fflush(stdout);
    }
    if (t >= next_report) {
      std::printf("soak: %5.0f s: %llu events, RSS %ld KiB, %d fds\n", t,
                  static_cast<unsigned long long>(n.total()), rss_kb(), open_fds());
      std::fflush(stdout);
      next_report += 10;
    }
    if (t >= duration) {
      rss_end = rss_kb();
      fds_end = open_fds();
      loop.stop(evw::Break::All);
    }
  });
  monitor.start();

  try {
    while (rss_end == 0) loop.run();
  } catch (const std::exception& e) {
    std::printf("soak: FAIL: an exception left run(): %s\n", e.what());
    failed = true;
  }
  stop_thread = true;
  sender.join();
  const double seconds = elapsed();

  std::printf("soak: events handled: %llu in %.1f s (%.0f/s), %llu loop iterations\n",
              static_cast<unsigned long long>(n.total()), seconds, static_cast<double>(n.total()) / seconds,
              static_cast<unsigned long long>(n.iterations));
  std::printf("soak:   echo %llu, timers %llu, one-shot loop-owned timers %llu, signals %llu (raised %llu), "
              "urgent %llu, gpio %llu, async %llu, churn cycles %llu\n",
              static_cast<unsigned long long>(n.echo), static_cast<unsigned long long>(n.timers),
              static_cast<unsigned long long>(n.oneshots), static_cast<unsigned long long>(n.signals),
              static_cast<unsigned long long>(ticks), static_cast<unsigned long long>(n.urgent),
              static_cast<unsigned long long>(n.gpio), static_cast<unsigned long long>(n.async),
              static_cast<unsigned long long>(n.churn));
  std::printf("soak: RSS after warm-up %ld KiB, at end %ld KiB (%+ld KiB, tolerance %ld KiB)\n", rss_start, rss_end,
              rss_end - rss_start, tolerance_kb);
  std::printf("soak: open fds after warm-up %d, at end %d\n", fds_start, fds_end);
  if (n.echo_errors != 0) {
    std::printf("soak: FAIL: %llu echo messages came back wrong\n", static_cast<unsigned long long>(n.echo_errors));
    failed = true;
  }
  if (rss_end - rss_start > tolerance_kb) {
    std::printf("soak: FAIL: RSS grew by %ld KiB\n", rss_end - rss_start);
    failed = true;
  }
  if (fds_end > fds_start) {
    std::printf("soak: FAIL: %d more descriptors open\n", fds_end - fds_start);
    failed = true;
  }
  const bool every_source = n.echo && n.timers && n.oneshots && n.signals && n.urgent && n.async && n.churn &&
                            (!sim || n.gpio);
  if (!every_source) {
    std::printf("soak: FAIL: some event source never fired\n");
    failed = true;
  }
  std::printf("soak: %s\n", failed ? "FAILED" : "passed");
  return failed ? 1 : 0;
}
