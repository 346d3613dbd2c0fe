// Minimal example of evw coroutines with GPIO: a button handler written as straight-line code.
//   ./coro_gpio     runs on gpio-sim (a simulated /sys/class/gpio) and presses the button itself;
//                   on a board, drop the simulator and keep the default GpioConfig::sysfs_root.
#include <evw/coro/coro.hpp>
#include <evw/evw.hpp>
#include <evw/watchers/gpio.hpp>

#include <gpio-sim/gpio_sim.hpp>

#include <cstdio>
#include <string>

using namespace std::chrono_literals;

constexpr int kLine = 17;
constexpr int kPresses = 3;
constexpr auto kPressTime = 40ms;
constexpr auto kQuietTime = 300ms;  // no edge for this long: stop listening

// Counts presses (rising edges) until the button has been quiet for kQuietTime.
evw::Task<int> count_presses(evw::Loop& loop, const std::string& sysfs_root) {
  evw::Watch<evw::Gpio> button(loop, kLine,
                               evw::GpioConfig{.sysfs_root = sysfs_root, .edge = evw::Edge::Both});
  int presses = 0;
  for (;;) {
    auto edge = co_await evw::with_timeout(loop, kQuietTime, button.next());
    if (!edge) break;
    std::printf("line %d: %s\n", kLine, button->value() ? "pressed" : "released");
    presses += button->value();
  }
  std::printf("quiet for %lld ms: done\n", static_cast<long long>(kQuietTime.count()));
  co_return presses;
}

// Plays the user: presses and releases the simulated button.
evw::Task<void> press_button(evw::Loop& loop, evw::sim::GpioSim& sim) {
  for (int i = 0; i < kPresses; ++i) {
    co_await evw::sleep(loop, kPressTime);
    sim.set_input(kLine, 1);
    co_await evw::sleep(loop, kPressTime);
    sim.set_input(kLine, 0);
  }
}

int main() {
  if (std::string why = evw::sim::GpioSim::unavailable_reason(); !why.empty()) {
    std::fprintf(stderr, "gpio-sim cannot run here: %s\n", why.c_str());
    return 1;
  }
  auto sim = evw::sim::GpioSim::in_temp_dir();
  evw::Loop loop;
  // Both run at once; when_all waits for the two.
  auto [presses, done] =
      evw::sync_wait(loop, evw::when_all(count_presses(loop, sim->root()), press_button(loop, *sim)));
  (void)done;
  std::printf("%d presses counted\n", presses);
  return presses == kPresses ? 0 : 1;
}
