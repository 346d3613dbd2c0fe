// Minimal example of evw::Stat: watch a file that the program itself
// creates, grows and removes.
#include <evw/core/loop.hpp>
#include <evw/watchers/stat.hpp>
#include <evw/watchers/timer.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace std::chrono_literals;

constexpr auto kPoll = 100ms;  // fallback polling where inotify cannot help
constexpr auto kStep = 200ms;  // time between the program's own changes
constexpr int kAppends = 3;

int main() {
  char dir[] = "/tmp/evw-stat-example-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return 1;
  const std::string path = std::string(dir) + "/watched.txt";

  evw::Loop loop;
  evw::Stat stat(loop, path, kPoll, [&](evw::Stat& w, int) {
    if (w.attr().st_nlink == 0) {
      std::printf("%s is gone\n", w.path().c_str());
      w.stop();
    } else if (w.prev().st_nlink == 0) {
      std::printf("%s appeared, %lld bytes\n", w.path().c_str(), static_cast<long long>(w.attr().st_size));
    } else {
      std::printf("%s changed: %lld -> %lld bytes\n", w.path().c_str(),
                  static_cast<long long>(w.prev().st_size), static_cast<long long>(w.attr().st_size));
    }
  });

  int step = 0;
  evw::Timer writer(loop, kStep, kStep, [&](evw::Timer& w, int) {
    if (step++ < kAppends) {
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (fd < 0 || ::write(fd, "hello\n", 6) != 6) std::perror(path.c_str());
      if (fd >= 0) ::close(fd);
    } else {
      ::unlink(path.c_str());
      w.stop();
    }
  });

  stat.start();
  writer.start();
  loop.run();  // ends when the file is gone and the writer is done
  ::rmdir(dir);
}
