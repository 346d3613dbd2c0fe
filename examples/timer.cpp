// Minimal example of evw::Timer: a one-shot, a repeating tick, and an
// inactivity timeout pushed back with restart() on each activity.
#include <evw/evw.hpp>

#include <cstdio>

using namespace std::chrono_literals;

constexpr int kTicks = 5;

int main() {
  evw::Loop loop;
  const double start = loop.now();
  auto at = [&] { return loop.now() - start; };

  evw::Timer once(loop, 50ms, 0s, [&](evw::Timer&, int) { std::printf("%.3fs one-shot\n", at()); });

  // An inactivity timeout: fires only if nothing happens for 300 ms.
  evw::Timer idle(loop, 300ms, 0s, [&](evw::Timer&, int) {
    std::printf("%.3fs idle timeout: stopping\n", at());
    loop.stop();
  });

  int ticks = 0;
  evw::Timer tick(loop, 100ms, 100ms, [&](evw::Timer& w, int) {
    std::printf("%.3fs tick %d (idle timer has %.3fs left, reset now)\n", at(), ++ticks, idle.remaining());
    idle.restart();  // activity: 300 ms from now again
    if (ticks == kTicks) w.stop();
  });

  once.start();
  idle.start();
  tick.start();
  loop.run();
  std::printf("done after %d ticks\n", ticks);
}
