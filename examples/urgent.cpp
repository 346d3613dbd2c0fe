// Minimal example of evw::Priority: TCP urgent data (MSG_OOB) arrives as Event::Pri,
// next to the ordinary Event::Read stream on the same socket.
#include <evw/evw.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>

constexpr const char* kMessages[] = {"hello", "world", "bye"};
constexpr char kUrgentByte = '!';

int main() {
  // A loopback connection: `client` sends, `server` receives.
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

  evw::Loop loop;
  evw::Io reader(loop, server, evw::Event::Read, [](evw::Io& w, int) {
    char buf[64];
    ssize_t n = ::recv(w.fd(), buf, sizeof buf, 0);
    std::printf("Event::Read: %.*s\n", static_cast<int>(n), buf);
  });
  int urgent_seen = 0;
  evw::Priority urgent(loop, server, [&](evw::Priority& w, int revents) {
    char c = 0;
    ::recv(w.fd(), &c, 1, MSG_OOB);  // reading the byte clears EPOLLPRI
    std::printf("Event::Pri:  urgent byte '%c' (revents 0x%x)\n", c, revents);
    ++urgent_seen;
  });
  reader.start();
  urgent.start();

  int step = 0;
  evw::Timer sender(loop, 0.01, 0.02, [&](evw::Timer& w, int) {
    if (step < 3) {
      ::send(client, kMessages[step], 5, 0);
      if (step == 1) ::send(client, &kUrgentByte, 1, MSG_OOB);
      ++step;
    } else {
      w.stop();
      loop.stop(evw::Break::All);
    }
  });
  sender.start();
  loop.run();
  std::printf("%d urgent byte(s) seen\n", urgent_seen);
  ::close(client);
  ::close(server);
  ::close(listener);
  return urgent_seen == 1 ? 0 : 1;
}
