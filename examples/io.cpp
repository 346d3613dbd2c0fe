// Minimal example of evw::Io: a TCP echo server, one Io watcher per client.
//   ./io 7000      then: nc 127.0.0.1 7000      stop with Ctrl-C (SIGINT) or SIGTERM
#include <evw/evw.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

constexpr int kBacklog = 16;
constexpr size_t kBufferSize = 4096;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, kBacklog) != 0) {
    std::perror("bind/listen");
    return 1;
  }

  evw::Loop loop;
  std::map<int, std::unique_ptr<evw::Io>> clients;  // fd -> its watcher

  auto echo = [&](evw::Io& w, int) {
    char buf[kBufferSize];
    ssize_t n = ::read(w.fd(), buf, sizeof buf);
    if (n > 0) {
      (void)!::write(w.fd(), buf, static_cast<size_t>(n));  // a real server would buffer
      return;
    }
    std::printf("client %d left\n", w.fd());
    int fd = w.fd();
    ::close(fd);
    clients.erase(fd);  // destroys the running watcher: allowed
  };

  evw::Io acceptor(loop, listener, evw::Event::Read, [&](evw::Io& w, int) {
    int fd = ::accept4(w.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    std::printf("client %d joined\n", fd);
    auto& io = *(clients[fd] = std::make_unique<evw::Io>(loop, fd, evw::Event::Read, echo));
    io.start();
  });
  acceptor.start();

  auto quit = [&](evw::Signal& s, int) {
    std::printf("signal %d: closing %zu client(s)\n", s.signum(), clients.size());
    loop.stop(evw::Break::All);
  };
  evw::Signal sigint(loop, SIGINT, quit), sigterm(loop, SIGTERM, quit);
  sigint.start();
  sigterm.start();

  std::printf("echo server on 127.0.0.1:%s\n", argv[1]);
  std::fflush(stdout);
  loop.run();
  for (auto& [fd, io] : clients) ::close(fd);
  ::close(listener);
}
