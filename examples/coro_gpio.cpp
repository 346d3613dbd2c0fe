// Minimal example of evw coroutines with GPIO: a button handler written as straight-line code,
// awaiting a plain evw::Gpio (co_await button.edge()) whose own callback keeps running.
//   ./coro_gpio     runs on gpio-sim (a simulated /sys/class/gpio) and presses the button itself;
//                   on a board, drop the simulator and keep the default GpioConfig::sysfs_root.
#include <evw/coro/coro.hpp>
#include <evw/evw.hpp>
#include <evw/watchers/gpio.hpp>

#include <evw/sim/gpio_sim.hpp>

#include <cstdio>
#include <string>

using namespace std::chrono_literals;

constexpr int kLine = 17;
constexpr int kPresses = 3;
constexpr auto kPressTime = 40ms;
constexpr auto kQuietTime = 300ms;  // no edge for this long: stop listening

// Counts presses (rising edges) until the button has been quiet for kQuietTime.
evw::Task<int> count_presses(evw::Loop& loop, evw::Gpio& button) {
  int presses = 0;
  for (;;) {
    // Starts the watcher for the wait, stops it again after (or on the timeout).
    auto edge = co_await evw::with_timeout(loop, kQuietTime, button.edge());
    if (!edge) break;
    std::printf("line %d: %s\n", kLine, button.value() ? "pressed" : "released");
    presses += button.value();
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
  int edges = 0;  // the callback API, as before: it sees every edge, awaited or not
  evw::Gpio button(loop, kLine, evw::GpioConfig{.sysfs_root = sim->root(), .edge = evw::Edge::Both},
                   [&](evw::Gpio&, int) { ++edges; });
  // Both run at once; when_all waits for the two.
  auto [presses, done] =
      evw::sync_wait(loop, evw::when_all(count_presses(loop, button), press_button(loop, *sim)));
  (void)done;
  std::printf("%d presses counted; the callback saw %d edges\n", presses, edges);
  return presses == kPresses ? 0 : 1;
}
