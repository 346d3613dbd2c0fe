// Minimal example of evw::Attr: print a sysfs/kernfs attribute each time the
// kernel notifies a change (cgroup.events, a GPIO value, md's sync_action...).
//   ./attr PATH [SECONDS]   e.g. ./attr /sys/fs/cgroup/system.slice/cron.service/cgroup.events
//   ./attr                  watches a sysfs GPIO value on gpio-sim and toggles the line itself
#include <evw/evw.hpp>

#include <evw/sim/gpio_sim.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

constexpr int kLine = 4;
constexpr int kToggles = 4;
constexpr double kToggleEvery = 0.05;  // seconds

int main(int argc, char** argv) {
  std::unique_ptr<evw::sim::GpioSim> sim;
  std::string path;
  if (argc > 1) {
    path = argv[1];
  } else {
    if (std::string why = evw::sim::GpioSim::unavailable_reason(); !why.empty()) {
      std::printf("give a PATH: gpio-sim cannot run here (%s)\n", why.c_str());
      return 0;
    }
    sim = evw::sim::GpioSim::in_temp_dir();
    std::ofstream(sim->root() + "/export") << kLine;
    const std::string dir = sim->root() + "/gpio" + std::to_string(kLine);
    std::ofstream(dir + "/direction") << "in";
    std::ofstream(dir + "/edge") << "both";
    path = dir + "/value";
  }
  evw::Loop loop;
  int changes = 0;
  evw::Attr attr(loop, path, [&](evw::Attr& w, int revents) {
    if (revents & evw::Event::Error) {
      std::printf("%s: %s\n", w.path().c_str(), w.error().message().c_str());
      loop.stop();
      return;
    }
    ++changes;
    std::printf("%s: \"%s\"\n", w.path().c_str(), w.value().c_str());
  });
  std::printf("%s: \"%s\" (watching)\n", path.c_str(), attr.value().c_str());
  attr.start();
  int level = 0, toggles = 0;
  evw::Timer toggle(loop, kToggleEvery, kToggleEvery, [&](evw::Timer& t, int) {
    if (++toggles > kToggles) {
      t.stop();
      loop.stop();
      return;
    }
    sim->set_input(kLine, level ^= 1);
  });
  if (sim) toggle.start();
  evw::Signal interrupt(loop, SIGINT, [&](evw::Signal&, int) { loop.stop(); });
  interrupt.start();
  evw::Timer end(loop, argc > 2 ? std::atof(argv[2]) : 0.0, 0.0, [&](evw::Timer&, int) { loop.stop(); });
  if (argc > 2) end.start();
  loop.run();
  return !sim || changes == kToggles ? 0 : 1;
}
