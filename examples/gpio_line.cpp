// Minimal example of evw::GpioLine: every edge of one line of a GPIO character
// device, with its kernel timestamp and sequence numbers.
//   gpio_line [CHIP [LINE]]   e.g. gpio_line /dev/gpiochip0 4
#include <evw/evw.hpp>
#include <evw/watchers/gpio_line.hpp>

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <system_error>

constexpr const char* kDefaultChip = "/dev/gpiochip0";
constexpr int kDefaultLine = 0;
constexpr int kEvents = 10;          // exit after this many edges
constexpr double kDebounce = 0.005;  // seconds, done by the kernel

int main(int argc, char** argv) {
  const char* chip = argc > 1 ? argv[1] : kDefaultChip;
  const int offset = argc > 2 ? std::atoi(argv[2]) : kDefaultLine;
  evw::Loop loop;
  try {
    int seen = 0;
    evw::GpioLine line(loop, chip, offset,
                       evw::GpioLineConfig{.edge = evw::Edge::Both, .debounce = kDebounce},
                       [&](evw::GpioLine& l, int) {
                         for (const evw::GpioEvent& e : l.last_events()) {
                           std::printf("%-7s t=%llu ns seqno=%u line_seqno=%u%s\n",
                                       e.edge == evw::Edge::Rising ? "rising" : "falling",
                                       static_cast<unsigned long long>(e.timestamp_ns), e.seqno,
                                       e.line_seqno, e.lost ? " (events lost before)" : "");
                           if (++seen == kEvents) loop.stop();
                         }
                       });
    evw::Signal interrupt(loop, SIGINT, [&](evw::Signal&, int) { loop.stop(); });
    line.start();
    interrupt.start();
    std::printf("%s line %d is %d; printing %d edges (Ctrl-C to quit)\n", chip, offset,
                line.read_value(), kEvents);
    std::fflush(stdout);
    loop.run();
    std::printf("%d edge(s), %llu lost\n", seen, static_cast<unsigned long long>(line.lost()));
  } catch (const std::system_error& e) {
    if (e.code() == std::errc::no_such_file_or_directory)
      std::fprintf(stderr, "gpio_line: there is no GPIO chip %s on this machine\n", chip);
    else
      std::fprintf(stderr, "gpio_line: %s\n", e.what());
    return 1;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "gpio_line: %s\n", e.what());
    return 2;
  }
}
