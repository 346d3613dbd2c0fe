// Minimal example of evw::Prepare and evw::Check: drive a foreign poll()-based
// library from an evw loop, as libev's manual describes for ev_prepare/ev_check.
#include <evw/core/loop.hpp>
#include <evw/watchers/check.hpp>
#include <evw/watchers/io.hpp>
#include <evw/watchers/prepare.hpp>
#include <evw/watchers/timer.hpp>

#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <deque>
#include <string>
#include <vector>

constexpr int kLibraryTimeoutMs = 150;  // the library wants to be called at least this often
constexpr double kWriteEvery = 0.1;     // seconds between the program's writes
constexpr const char* kMessages[] = {"message 1", "message 2", "", "", "quit"};  // "": a pause

// The "foreign library": speaks poll(), knows nothing of evw.
struct Library {
  int fd;
  int before_poll(std::vector<pollfd>& fds) {  // returns its timeout in ms
    fds.assign(1, pollfd{fd, POLLIN, 0});
    return kLibraryTimeoutMs;
  }
  bool after_poll(const std::vector<pollfd>& fds) {  // returns true when done
    char buf[64];
    const ssize_t n = (fds[0].revents & POLLIN) ? ::read(fd, buf, sizeof buf) : 0;
    const std::string text(buf, n > 0 ? static_cast<size_t>(n) : 0);
    std::printf("library: %s\n", n > 0 ? ("read \"" + text + "\"").c_str() : "nothing to read");
    return text == "quit";
  }
};

int main() {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return 1;
  Library library{pipe_fds[0]};
  evw::Loop loop;
  std::vector<pollfd> fds;
  std::deque<evw::Io> ios;  // watchers for the library's fds, for one iteration
  evw::Timer timeout(loop, 0.0, 0.0, [](evw::Timer&, int) {});  // only wakes the loop

  // Prepare: ask the library what to wait for; start watchers for exactly that.
  evw::Prepare prepare(loop, [&](evw::Prepare&, int) {
    const int ms = library.before_poll(fds);
    for (const pollfd& p : fds)  // (this library only ever asks for POLLIN)
      ios.emplace_back(loop, p.fd, evw::Event::Read, [](evw::Io&, int) {}).start();
    timeout.set(ms / 1000.0, 0.0);
    timeout.start();
  });
  // Check: take the events (before the Io callbacks would run), stop it all, let the library work.
  evw::Check check(loop, [&](evw::Check& self, int) {
    for (size_t i = 0; i < ios.size(); ++i)
      if (ios[i].clear_pending() & evw::Event::Read) fds[i].revents = POLLIN;
    ios.clear();
    timeout.stop();
    if (library.after_poll(fds)) {
      prepare.stop();
      self.stop();
    }
  });

  size_t next = 0;  // the program's own writes into the library's pipe
  evw::Timer writer(loop, kWriteEvery, kWriteEvery, [&](evw::Timer& w, int) {
    const std::string text = kMessages[next++];
    if (!text.empty() && ::write(pipe_fds[1], text.data(), text.size()) < 0) w.loop().stop();
    if (next == std::size(kMessages)) w.stop();
  });

  prepare.start();
  check.start();
  writer.start();
  loop.run();  // ends when the library has read "quit"
  std::printf("library finished\n");
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}
