// Minimal example of evw::Timer: a one-shot, a repeating tick, and an
// inactivity timeout kept alive with again().
#include <evw/evw.hpp>

#include <cstdio>

using namespace std::chrono_literals;

constexpr int kTicks = 5;

int main() {
  evw::Loop loop;
  const double start = loop.now();
  auto at = [&] { return loop.now() - start; };

  evw::Timer once(loop, 50ms, 0s, [&](evw::Timer&, int) { std::printf("%.3fs one-shot\n", at()); });

  // An inactivity timeout: fires only if nobody calls again() for 300 ms.
  evw::Timer idle(loop, 0s, 300ms, [&](evw::Timer&, int) {
    std::printf("%.3fs idle timeout: stopping\n", at());
    loop.stop();
  });

  int ticks = 0;
  evw::Timer tick(loop, 100ms, 100ms, [&](evw::Timer& w, int) {
    std::printf("%.3fs tick %d (idle timer has %.3fs left, reset now)\n", at(), ++ticks, idle.remaining());
    idle.again();  // activity: push the timeout back
    if (ticks == kTicks) w.stop();
  });

  once.start();
  idle.again();  // starts it with its repeat interval
  tick.start();
  loop.run();
  std::printf("done after %d ticks\n", ticks);
}
