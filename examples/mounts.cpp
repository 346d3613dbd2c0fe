// Minimal example of evw::Mounts: print what is mounted, unmounted, remounted
// or moved, like `findmnt --poll` (and util-linux's libmount monitor).
//   ./mounts [SECONDS]     prints changes for SECONDS (default: until Ctrl-C)
//   try: sudo mount -t tmpfs demo /mnt; sudo mount -o remount,ro /mnt; sudo umount /mnt
#include <evw/evw.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>

static const char* kind_name(evw::MountChange::Kind kind) {
  switch (kind) {
    case evw::MountChange::Kind::Added: return "mounted";
    case evw::MountChange::Kind::Removed: return "unmounted";
    case evw::MountChange::Kind::Changed: return "changed";
  }
  return "?";
}

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.0;
  evw::Loop loop;
  evw::Mounts mounts(loop, [](evw::Mounts& w, int revents) {
    if (revents & evw::Event::Error) {
      std::printf("cannot read %s: %s\n", w.path().c_str(), w.error().message().c_str());
      return;
    }
    for (const evw::MountChange& c : w.changes()) {
      const evw::MountEntry& m = c.entry;
      std::printf("%-9s %s (%s from %s, %s)\n", kind_name(c.kind), m.mount_point.c_str(), m.fstype.c_str(),
                  m.source.c_str(), m.options.c_str());
      if (c.kind == evw::MountChange::Kind::Changed && c.previous.mount_point != m.mount_point)
        std::printf("          moved from %s\n", c.previous.mount_point.c_str());
      else if (c.kind == evw::MountChange::Kind::Changed)
        std::printf("          options were %s\n", c.previous.options.c_str());
    }
  });
  std::printf("%zu mounts; watching %s\n", mounts.table().size(), mounts.path().c_str());
  mounts.start();
  evw::Signal interrupt(loop, SIGINT, [&](evw::Signal&, int) { loop.stop(); });
  interrupt.start();
  evw::Timer end(loop, seconds, 0.0, [&](evw::Timer&, int) { loop.stop(); });
  if (seconds > 0) end.start();
  loop.run();
  return 0;
}
