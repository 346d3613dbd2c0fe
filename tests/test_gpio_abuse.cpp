// Gpio under random abuse on the simulator (the misuse fuzzer leaves Gpio
// out): watchers sharing lines, reconfigured, started, stopped, fed, read
// (read_value) and destroyed at random (also from their callbacks), lines
// unexported behind their back as another process would, input toggled.
// Nothing may crash or throw anything but the documented exception types;
// every descriptor comes back and every line evw exported is unexported again
// once its last watcher is gone (and only then: a line with watchers left
// that evw exported stays exported).
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>

#include "../tools/gpio-sim/gpio_sim.hpp"
#include "support.hpp"

namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

void write_text(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)!::write(fd, text.data(), text.size());  // the kernel's errno is fine here
  ::close(fd);
}

}  // namespace

TEST_CASE("gpio abuse: random use of Gpio watchers on shared simulated lines") {
  if (auto why = evw::sim::GpioSim::unavailable_reason(); !why.empty()) EVW_SKIP(why);
  const char* env = std::getenv("EVW_SEED");
  const unsigned long seed = env != nullptr ? std::strtoul(env, nullptr, 10) : std::random_device{}();
  const unsigned long ops = std::getenv("EVW_OPS") != nullptr ? std::strtoul(std::getenv("EVW_OPS"), nullptr, 10) : 600;
  MESSAGE("gpio abuse: seed " << seed << ", " << ops << " operations (replay: EVW_SEED=" << seed << ")");
  std::mt19937_64 rng(seed);
  auto pick = [&](unsigned n) { return static_cast<unsigned>(rng() % n); };

  auto sim = evw::sim::GpioSim::in_temp_dir();
  const int fds_before = evw_test::open_fd_count();
  constexpr unsigned kLines[] = {3, 4, 5};
  constexpr unsigned kSlots = 6;
  unsigned long events = 0, refused = 0;
  bool foreign[8] = {};  // lines the "other process" exported last
  {
    evw::Loop loop;
    std::unique_ptr<evw::Gpio> w[kSlots];
    auto config = [&] {
      evw::GpioConfig c;
      c.sysfs_root = sim->root();
      c.edge = static_cast<evw::Edge>(pick(4));
      c.active_low = pick(2) == 1;
      c.debounce = pick(4) == 0 ? 0.001 : 0.0;
      return c;
    };
    auto callback = [&](evw::Gpio& g, int) {
      ++events;
      switch (pick(8)) {
        case 0: g.stop(); break;
        case 3: (void)g.read_value(); break;  // may throw: run() reports it
        case 1:  // destroy itself
          for (auto& slot : w)
            if (slot.get() == &g) slot.reset();
          break;
        case 2: {  // destroy another one
          w[pick(kSlots)].reset();
          break;
        }
        default: break;  // the watcher may be gone: touch nothing
      }
    };
    // The last fifth has no foreign exports: it starts with every line
    // unexported behind evw's back, so at the end each exported line is evw's.
    const unsigned long calm = ops * 4 / 5;
    // In it, a line some live watcher has set up since is still exported
    // (the others on it never unexport it under that one), and a line no
    // live watcher uses is not.
    bool fresh[8] = {};  // set up (constructor or set()) in the calm part
    unsigned long step = 0;
    auto check_shared = [&] {
      if (step < calm) return;
      for (unsigned l : kLines) {
        bool used = false;
        for (auto& slot : w)
          if (slot && slot->line() == static_cast<int>(l) && fresh[l]) used = true;
        bool any = false;
        for (auto& slot : w)
          if (slot && slot->line() == static_cast<int>(l)) any = true;
        if (!any) fresh[l] = false;
        CAPTURE(l);
        if (used) CHECK(exists(sim->root() + "/gpio" + std::to_string(l)));
        if (!any) CHECK_FALSE(exists(sim->root() + "/gpio" + std::to_string(l)));
      }
    };
    for (; step < ops; ++step) {
      CAPTURE(step);
      if (step == calm) {
        for (unsigned l : kLines) write_text(sim->root() + "/unexport", std::to_string(l));
        for (bool& f : foreign) f = false;
      }
      auto& slot = w[pick(kSlots)];
      const int line = static_cast<int>(kLines[pick(3)]);
      unsigned op = pick(11);
      if (op == 7 && step >= calm) op = 10;
      try {
        switch (op) {
          case 0:
            slot = std::make_unique<evw::Gpio>(loop, line, config(), callback);
            if (step >= calm) fresh[line] = true;
            break;
          case 1:
            if (slot) slot->start();
            break;
          case 2:
            if (slot) slot->stop();
            break;
          case 3:
            if (slot) {
              slot->set(line, config());
              if (step >= calm) fresh[line] = true;
            }
            break;
          case 4:
            if (slot) slot->set_priority(static_cast<int>(pick(5)) - 2);
            break;
          case 5:
            if (slot) slot->feed(evw::Event::Pri);
            break;
          case 6:
            slot.reset();
            break;
          case 7: {  // another process unexports (or exports) the line behind evw's back
            const bool unexport = pick(2) == 0;
            write_text(sim->root() + (unexport ? "/unexport" : "/export"), std::to_string(line));
            foreign[line] = !unexport;
            break;
          }
          case 8:
            if (slot) (void)slot->read_value();
            break;
          default:
            sim->set_input(static_cast<unsigned>(line), pick(2));
            loop.run(evw::Run::NoWait);
            break;
        }
      } catch (const std::system_error&) {
        ++refused;
      } catch (const std::invalid_argument&) {
        ++refused;
      } catch (const std::logic_error&) {
        ++refused;
      }
      check_shared();
    }
    try {
      loop.run(evw::Run::NoWait);
    } catch (const std::system_error&) {
      ++refused;  // a read_value() in a callback
    }
    for (auto& slot : w) slot.reset();
  }
  MESSAGE("gpio abuse: " << events << " callbacks, " << refused << " calls refused with an exception");
  // A line evw exported is unexported with its last watcher.
  for (unsigned line : kLines) {
    CAPTURE(line);
    CHECK_FALSE(foreign[line]);
    CHECK_FALSE(exists(sim->root() + "/gpio" + std::to_string(line)));
  }
  CHECK(evw_test::open_fd_count() == fds_before);
}
