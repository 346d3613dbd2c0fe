// Minimal example of evw::PollMode::Exclusive: one listening socket watched
// by a loop per core; the kernel wakes one loop per connection, not all of
// them (the thundering herd). Compare examples/reuseport.cpp: one socket per
// loop instead. It connects to itself a few times, then stops every loop.
#include <evw/evw.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
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

int main() {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listener, 64) != 0 || ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    std::perror("listener"), ::_exit(1);

  const unsigned loops = std::max(2u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<evw::LoopThread>> workers;
  std::vector<std::atomic<int>> served(loops), empty(loops);
  std::latch ready(loops);
  for (unsigned i = 0; i < loops; ++i) {
    auto& w = *workers.emplace_back(std::make_unique<evw::LoopThread>());
    w.post([&, i] {  // on the worker's thread: its watchers live in its loop
      w.loop().add<evw::Poll>(listener, evw::Event::Read, evw::PollMode::Exclusive, [&, i](evw::Poll& p, int) {
        int c = ::accept4(p.fd(), nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) ++empty[i];  // woken, but another loop took it: rare with Exclusive
        for (; c >= 0; c = ::accept4(p.fd(), nullptr, nullptr, SOCK_CLOEXEC)) {
          (void)!::write(c, "hello\n", 6);
          ::close(c);
          ++served[i];
        }
      }).start();
      ready.count_down();
    });
  }
  ready.wait();

  for (int n = 0; n < kConnections; ++n) {
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    char buf[16] = {};
    if (::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::read(c, buf, sizeof buf) <= 0)
      std::perror("client"), ::_exit(1);
    ::close(c);
  }
  int total = 0;
  for (unsigned i = 0; i < loops; ++i) {
    workers[i]->stop();
    workers[i]->join();
    std::printf("loop %u: served %d, woken for nothing %d\n", i, served[i].load(), empty[i].load());
    total += served[i];
  }
  ::close(listener);
  std::printf("%d connections to one socket, %u loops, %d served\n", kConnections, loops, total);
  return total == kConnections ? 0 : 1;
}
