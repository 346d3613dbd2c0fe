// Minimal example of evw::LoopThread: one loop per core, each accepting on its
// own SO_REUSEPORT listener of the same port (the kernel spreads connections),
// all shut down by one SIGTERM that reaches every loop.
// It connects to itself a few times, then sends itself SIGTERM.
#include <evw/evw.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

constexpr int kConnections = 12;

// A listener on 127.0.0.1:port (0: any free port) that shares its port.
int listen_reuseport(in_port_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = port;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    std::perror("listener"), ::_exit(1);
  port = addr.sin_port;
  return fd;
}

int main() {
  const unsigned cores = std::max(2u, std::thread::hardware_concurrency());
  in_port_t port = 0;
  std::vector<int> listeners;
  for (unsigned i = 0; i < cores; ++i) listeners.push_back(listen_reuseport(port));

  std::vector<std::unique_ptr<evw::LoopThread>> workers;
  std::vector<std::atomic<int>> served(cores);
  std::latch ready(cores);  // SIGTERM only once every loop watches it
  for (unsigned i = 0; i < cores; ++i) {
    auto& w = *workers.emplace_back(std::make_unique<evw::LoopThread>());
    w.post([&, i] {  // on the worker's thread: its watchers live in its loop
      evw::Loop& loop = w.loop();
      loop.add<evw::Io>(listeners[i], evw::Event::Read, [&, i](evw::Io& io, int) {
        const int c = ::accept4(io.fd(), nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;  // another wake-up took it
        const char reply[] = "hello\n";
        (void)!::write(c, reply, sizeof reply - 1);
        ::close(c);
        ++served[i];
      }).start();
      loop.add<evw::Signal>(SIGTERM, [&, i](evw::Signal&, int) {
        std::printf("loop %u: SIGTERM, served %d\n", i, served[i].load());
        w.stop();
      }).start();
      ready.count_down();
    });
  }
  ready.wait();

  for (int n = 0; n < kConnections; ++n) {
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = port;
    char buf[16] = {};
    if (::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::read(c, buf, sizeof buf) <= 0)
      std::perror("client"), ::_exit(1);
    ::close(c);
  }
  std::printf("%d connections to port %d, sending SIGTERM\n", kConnections, ntohs(port));
  ::kill(::getpid(), SIGTERM);  // whichever thread takes it, every loop sees it

  int total = 0;
  for (unsigned i = 0; i < cores; ++i) {
    workers[i]->join();
    total += served[i];
  }
  for (int fd : listeners) ::close(fd);
  std::printf("all %u loops stopped, %d connections served\n", cores, total);
  return total == kConnections ? 0 : 1;
}
