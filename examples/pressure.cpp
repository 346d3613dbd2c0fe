// Minimal example of evw::Pressure: a cache that drops entries under memory
// pressure, the systemd way. Started by systemd with MemoryPressureWatch=
// (e.g. `systemd-run -p MemoryPressureWatch=on ./pressure 60`) it watches what
// $MEMORY_PRESSURE_WATCH says; started by hand, this process's own cgroup, or
// the whole system's /proc/pressure/memory: some 200 ms of stall per 2 s.
//   ./pressure [SECONDS]   runs SECONDS (default 1) and exits
#include <evw/evw.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <system_error>

constexpr int kEntries = 1000;
constexpr double kDefaultSeconds = 1.0;
constexpr double kDemoAt = 0.3;  // feed one event here, as the kernel would under pressure

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : kDefaultSeconds;
  std::map<int, std::string> cache;
  for (int i = 0; i < kEntries; ++i) cache[i] = std::string(1024, 'x');

  evw::Loop loop;
  auto on_pressure = [&](evw::Pressure& p, int revents) {
    if (revents & (evw::Event::Error | evw::Event::Hup)) {
      std::printf("pressure source gone (%s): running without\n", p.error().message().c_str());
      return;  // the watcher has stopped itself
    }
    // Drop the older half: what a cache would give back first.
    const std::size_t drop = cache.size() / 2;
    for (std::size_t i = 0; i < drop; ++i) cache.erase(cache.begin());
    std::printf("memory pressure (some avg10 %.2f%%): dropped %zu entries, %zu left\n",
                p.stats().some.avg10, drop, cache.size());
  };
  try {
    evw::Pressure pressure = evw::Pressure::from_environment(loop, on_pressure);
    std::printf("watching %s (%s), trigger \"%s\"\n", pressure.path().c_str(),
                pressure.is_stream() ? "POLLIN" : "POLLPRI", pressure.trigger().c_str());
    pressure.start();
    evw::Timer demo(loop, kDemoAt, 0.0, [&](evw::Timer&, int) { pressure.feed(evw::Event::Pri); });
    evw::Timer end(loop, seconds, 0.0, [&](evw::Timer&, int) { loop.stop(); });
    demo.start();
    end.start();
    loop.run();
  } catch (const std::system_error& e) {
    // EHOSTDOWN: the service manager turned it off; ENOENT/EOPNOTSUPP: no PSI here.
    std::printf("no memory pressure watching: %s\n", e.what());
  }
  std::printf("%zu cache entries at exit\n", cache.size());
  return 0;
}
