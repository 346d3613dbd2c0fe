// Minimal example of an HTTP/1.1 keep-alive server on evw::Io: every request gets
// "Hello, World!" (the TechEmpower plaintext shape). One Io per connection, switched
// between Read and Write; pipelined requests are answered in order.
//   ./http 8080                 then: curl http://127.0.0.1:8080/   (or wrk -c100)
//   ./http 0 --requests 3       any free port; exits after answering 3 requests
// Stop with Ctrl-C (SIGINT) or SIGTERM.
#include <evw/evw.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

constexpr std::string_view kResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
constexpr size_t kMaxRequest = 8192;  // a longer header block closes the connection

struct Connection;
std::unordered_map<int, std::unique_ptr<Connection>> connections;  // by fd
long served = 0, max_requests = 0;                                 // 0: serve forever

struct Connection {
  evw::Io io;
  std::string in, out;  // bytes read but not answered yet; responses not written yet

  Connection(evw::Loop& loop, int fd)
      : io(loop, fd, evw::Event::Read, [this](evw::Io&, int revents) { on_event(revents); }) {}

  void on_event(int revents) {
    const int fd = io.fd();
    if (revents & evw::Event::Read) {
      char buf[4096];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return close();  // client left
      if (n > 0) in.append(buf, static_cast<size_t>(n));
      size_t start = 0;  // answer every complete request; a partial one waits for more bytes
      for (size_t end; (end = in.find("\r\n\r\n", start)) != std::string::npos; start = end + 4) {
        out += kResponse;
        if (++served == max_requests) io.loop().stop();
      }
      in.erase(0, start);
      if (in.size() > kMaxRequest) return close();
    }
    while (!out.empty()) {  // a write may take only part: keep the rest for later
      const ssize_t n = ::write(fd, out.data(), out.size());
      if (n < 0 && errno != EAGAIN && errno != EINTR) return close();
      if (n < 0) break;  // the socket is full
      out.erase(0, static_cast<size_t>(n));
    }
    // Wait for room to write the rest, or else for the next request. Reading stops while a
    // response is stuck, so a client that does not read cannot make the server buffer forever.
    const int wanted = out.empty() ? evw::Event::Read : evw::Event::Write;
    if (io.events() != wanted) io.set_events(wanted);
  }

  void close() {  // destroys this connection and its running watcher: allowed
    const int fd = io.fd();
    connections.erase(fd);
    ::close(fd);
  }
};

int main(int argc, char** argv) {
  if (argc != 2 && !(argc == 4 && std::string_view(argv[2]) == "--requests")) {
    std::fprintf(stderr, "usage: %s PORT [--requests N]\n", argv[0]);
    return 2;
  }
  if (argc == 4) max_requests = std::atol(argv[3]);
  ::signal(SIGPIPE, SIG_IGN);  // a client gone with a response in flight: write() fails with EPIPE
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listener, SOMAXCONN) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {  // port 0: which?
    std::perror("bind/listen");
    return 1;
  }

  evw::Loop loop;
  evw::Io acceptor(loop, listener, evw::Event::Read, [&](evw::Io& w, int) {
    const int fd = ::accept4(w.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or the client gave up before we accepted
    auto& c = connections[fd] = std::make_unique<Connection>(loop, fd);
    c->io.start();
  });
  auto quit = [&](evw::Signal&, int) { loop.stop(); };
  evw::Signal sigint(loop, SIGINT, quit), sigterm(loop, SIGTERM, quit);
  acceptor.start();
  sigint.start();
  sigterm.start();

  std::printf("listening on http://127.0.0.1:%d/\n", ntohs(addr.sin_port));
  std::fflush(stdout);
  loop.run();
  std::printf("served %ld requests\n", served);
  for (auto& [fd, c] : connections) ::close(fd);
  connections.clear();  // before the loop goes
  ::close(listener);
}
