// gpio-sim MOUNTPOINT [--chips N] [--lines M] [--allow-other]
// Serves the simulated sysfs GPIO tree in the foreground until SIGINT or SIGTERM (or until
// someone unmounts it), then unmounts and exits 0.
#include "gpio_sim.hpp"

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <string>
#include <string_view>

namespace {

constexpr long kCheckMountNs = 200'000'000;  // how often to notice an external umount

void usage(std::FILE* out) {
  std::fputs(
      "usage: gpio-sim MOUNTPOINT [--chips N] [--lines M] [--allow-other]\n"
      "Mounts a simulated /sys/class/gpio on MOUNTPOINT and serves it until SIGINT/SIGTERM.\n"
      "  --chips N       number of gpiochip directories (default 1)\n"
      "  --lines M       lines per chip (default 64); chip k is gpiochip<k*M>\n"
      "  --allow-other   let other users in (allow_other,default_permissions)\n"
      "Drive input levels by writing 0 or 1 to MOUNTPOINT/sim/gpioN.\n",
      out);
}

bool parse_count(std::string_view text, unsigned& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() && value > 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mountpoint;
  evw::sim::Options opts;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      usage(stdout);
      return 0;
    }
    if (arg == "--allow-other") {
      opts.allow_other = true;
    } else if (arg == "--chips" || arg == "--lines") {
      unsigned& target = arg == "--chips" ? opts.chips : opts.lines;
      if (i + 1 >= argc || !parse_count(argv[i + 1], target)) {
        std::fprintf(stderr, "gpio-sim: %s needs a positive number\n", argv[i]);
        return 2;
      }
      ++i;
    } else if (!arg.empty() && arg.front() != '-' && mountpoint.empty()) {
      mountpoint = arg;
    } else {
      std::fprintf(stderr, "gpio-sim: unexpected argument '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (mountpoint.empty()) {
    usage(stderr);
    return 2;
  }

  // Block the stop signals before the serving thread exists, then wait for them here.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, nullptr);

  try {
    evw::sim::GpioSim sim(mountpoint, opts);
    std::printf("gpio-sim: mounted at %s (%u chip%s x %u lines, gpio0..gpio%u)\n", sim.root().c_str(),
                opts.chips, opts.chips == 1 ? "" : "s", opts.lines, sim.line_count() - 1);
    std::fflush(stdout);
    const timespec tick{0, kCheckMountNs};
    while (true) {
      const int signal = sigtimedwait(&stop, nullptr, &tick);
      if (signal > 0) break;
      if (signal < 0 && errno != EAGAIN && errno != EINTR) {
        std::fprintf(stderr, "gpio-sim: sigtimedwait: %s\n", std::strerror(errno));
        return 1;
      }
      if (!sim.serving()) {
        std::fprintf(stderr, "gpio-sim: %s was unmounted\n", sim.root().c_str());
        break;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
