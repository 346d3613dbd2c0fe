// Minimal example of evw coroutines: a TCP echo server, one coroutine per client.
//   ./coro_echo 7000      then: nc 127.0.0.1 7000      stop with Ctrl-C (SIGINT) or SIGTERM
// The `yield (fd, "read")` generator loop people write to learn this, done right.
#include <evw/coro/coro.hpp>
#include <evw/evw.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <utility>

constexpr int kBacklog = 16;
constexpr size_t kBufferSize = 4096;

// Owns a descriptor: closed when the coroutine holding it ends or is cancelled.
struct Socket {
  int fd;
  explicit Socket(int f) : fd(f) {}
  Socket(Socket&& other) noexcept : fd(std::exchange(other.fd, -1)) {}
  ~Socket() { if (fd >= 0) ::close(fd); }
};

evw::Task<void> echo(evw::Loop& loop, Socket client) {
  std::printf("client %d joined\n", client.fd);
  char buf[kBufferSize];
  for (;;) {
    co_await evw::readable(loop, client.fd);
    ssize_t n = ::read(client.fd, buf, sizeof buf);
    if (n < 0 && errno == EAGAIN) continue;
    if (n <= 0) break;
    for (ssize_t sent = 0; sent < n;) {  // a full socket buffer waits, it does not drop
      ssize_t w = ::write(client.fd, buf + sent, static_cast<size_t>(n - sent));
      if (w >= 0) sent += w;
      else if (errno == EAGAIN) co_await evw::writable(loop, client.fd);
      else co_return;
    }
  }
  std::printf("client %d left\n", client.fd);
}

evw::Task<void> accept_clients(evw::Loop& loop, int listener) {
  for (;;) {
    co_await evw::readable(loop, listener);
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) evw::spawn(loop, echo(loop, Socket(fd)));  // runs on its own
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  Socket listener(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(listener.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener.fd, kBacklog) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  evw::Loop loop;
  std::printf("echo server on 127.0.0.1:%s\n", argv[1]);
  std::fflush(stdout);
  // Serve until a signal comes: the first to finish wins, the others are cancelled.
  auto first = evw::sync_wait(loop, evw::when_any(accept_clients(loop, listener.fd),
                                                  evw::signal(loop, SIGINT),
                                                  evw::signal(loop, SIGTERM)));
  std::printf("%s: closing\n", first.index() == 1 ? "SIGINT" : "SIGTERM");
}  // destroying the loop cancels the clients' coroutines; their Sockets close
