// Minimal example of evw::CgroupEvents with evw::Child: start a command in a
// cgroup of its own and wait until the group is empty, as service managers
// do. The command's own exit is not the end: whatever it left running in the
// background keeps the group populated. Needs cgroup v2 and the right to
// create a group (root, or a delegated subtree); without, it says why and exits.
//   ./supervise [COMMAND]   default: a shell that leaves a background job behind
#include <evw/evw.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

constexpr const char* kDefaultCommand = "sleep 0.3 & echo 'main: exits, its background job lives on'";
constexpr double kGiveUp = 10.0;  // seconds

// Where cgroup v2 is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid system.
static std::string cgroup2_root() {
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream text;
  text << in.rdbuf();
  for (const evw::MountEntry& m : evw::Mounts::parse(text.str()))
    if (m.fstype == "cgroup2") return m.mount_point;
  return "";
}

int main(int argc, char** argv) {
  const char* command = argc > 1 ? argv[1] : kDefaultCommand;
  const std::string root = cgroup2_root();
  const std::string group = root + "/evw-supervise-" + std::to_string(::getpid());
  if (root.empty() || ::mkdir(group.c_str(), 0755) != 0) {
    std::printf("cannot create a cgroup v2 group (%s): nothing to supervise here\n",
                root.empty() ? "no cgroup2 mount" : std::strerror(errno));
    return 0;
  }
  evw::Loop loop;  // any loop: Child uses a pidfd outside the default loop
  bool empty = false;
  evw::CgroupEvents events(loop, group, [&](evw::CgroupEvents& w, int) {
    std::printf("group %s\n", w.populated() ? "populated" : "empty");
    if (!w.populated()) {
      empty = true;
      loop.stop();
    }
  });
  events.start();

  int go[2];
  if (::pipe(go) != 0) return 1;
  const pid_t pid = ::fork();
  if (pid == 0) {  // wait until moved into the group, then run the command
    char c;
    ::close(go[1]);
    if (::read(go[0], &c, 1) != 1) ::_exit(127);
    ::execl("/bin/sh", "sh", "-c", command, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(go[0]);
  std::ofstream(group + "/cgroup.procs") << pid << std::flush;
  (void)!::write(go[1], "g", 1);
  ::close(go[1]);

  evw::Child child(loop, pid, [](evw::Child& w, int) {
    std::printf("main process %d exited with %d\n", w.rpid(), WEXITSTATUS(w.rstatus()));
  });
  child.start();
  evw::Timer give_up(loop, kGiveUp, 0.0, [&](evw::Timer&, int) { loop.stop(); });
  give_up.start();
  loop.run();
  std::printf(empty ? "service ended: every process is gone\n" : "gave up waiting\n");
  if (!empty) std::ofstream(group + "/cgroup.kill") << 1 << std::flush;
  events.stop();
  for (int i = 0; i < 500 && ::rmdir(group.c_str()) != 0 && errno == EBUSY; ++i) ::usleep(2000);
  return empty ? 0 : 1;
}
