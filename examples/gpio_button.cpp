// Minimal example of evw::Gpio: count button presses on a sysfs GPIO line.
//   gpio_button [SYSFS_ROOT [LINE]]   e.g. gpio_button /sys/class/gpio 17
// Try it without a board: gpio-sim /tmp/gpio & gpio_button /tmp/gpio 17, then
// echo 1 > /tmp/gpio/sim/gpio17; echo 0 > /tmp/gpio/sim/gpio17 (one press).
#include <evw/evw.hpp>
#include <evw/watchers/gpio.hpp>

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <system_error>

constexpr const char* kDefaultRoot = "/sys/class/gpio";
constexpr int kDefaultLine = 17;
constexpr int kPresses = 5;           // exit after this many presses
constexpr double kDebounce = 0.02;    // seconds: contact bounce of a typical push button
constexpr bool kActiveLow = false;    // true for a button that pulls the line to ground

int main(int argc, char** argv) {
  const char* root = argc > 1 ? argv[1] : kDefaultRoot;
  const int line = argc > 2 ? std::atoi(argv[2]) : kDefaultLine;
  evw::Loop loop;
  try {
    int presses = 0;
    evw::Gpio button(loop, line,
                     evw::GpioConfig{.sysfs_root = root, .edge = evw::Edge::Both,
                                     .active_low = kActiveLow, .debounce = kDebounce},
                     [&](evw::Gpio& g, int) {
                       if (g.value() == 0) return std::printf("released\n"), void();
                       std::printf("press #%d\n", ++presses);
                       if (presses == kPresses) loop.stop();
                     });
    evw::Signal interrupt(loop, SIGINT, [&](evw::Signal&, int) {
      std::printf("SIGINT: stopping\n");
      loop.stop();
    });
    button.start();
    interrupt.start();
    std::printf("line %d under %s is %d; waiting for %d presses (Ctrl-C to quit)\n", line, root,
                button.value(), kPresses);
    std::fflush(stdout);
    loop.run();
    std::printf("%d press(es) counted, %llu bounce(s) ignored\n", presses,
                static_cast<unsigned long long>(button.debounced()));
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "gpio_button: %s\n", e.what());
    return 1;
  }
}
