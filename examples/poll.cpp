// Minimal example of evw::Poll: an edge-triggered reader that drains until EAGAIN on each event
// and learns from Event::RdHup that the peer has finished writing.
#include <evw/evw.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

constexpr const char* kMessages[] = {"hello", "world", "bye"};

int main() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) return 1;
  const int peer = sv[0], us = sv[1];

  evw::Loop loop;
  std::string received;
  evw::Poll reader(loop, us, evw::Event::Read | evw::Event::RdHup, evw::PollMode::Edge,
                   [&](evw::Poll& w, int revents) {
                     char buf[64];
                     ssize_t n;
                     while ((n = ::read(w.fd(), buf, sizeof buf)) > 0)  // edge-triggered: drain
                       received.append(buf, static_cast<size_t>(n));
                     std::printf("event:%s%s, have \"%s\"\n", revents & evw::Event::Read ? " Read" : "",
                                 revents & evw::Event::RdHup ? " RdHup" : "", received.c_str());
                     if (revents & evw::Event::RdHup) w.stop();  // the peer will send no more
                   });
  reader.start();

  // One write per iteration, then the peer shuts down its writing side.
  int next = 0;
  evw::Timer writer(loop, 0.01, 0.01, [&](evw::Timer& t, int) {
    if (next < 3) {
      const std::string m = std::string(kMessages[next++]) + " ";
      if (::write(peer, m.data(), m.size()) < 0) std::perror("write");
    } else {
      ::shutdown(peer, SHUT_WR);
      t.stop();
    }
  });
  writer.start();
  loop.run();
  std::printf("peer hung up after \"%s\"\n", received.c_str());
  ::close(peer);
  ::close(us);
  return received == "hello world bye " ? 0 : 1;
}
