// Minimal example of evw::Periodic: a tick on every full quarter second of
// the wall clock, and a reschedule callable that picks its own times.
#include <evw/core/loop.hpp>
#include <evw/watchers/periodic.hpp>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <string>

using namespace std::chrono_literals;

constexpr double kGrid = 0.25;   // seconds: tick when the clock shows k * 0.25 s
constexpr int kTicks = 4;
constexpr double kBackoff = 1.5;  // the rescheduled watcher waits 0.1, 0.15, 0.225 ... s

// hh:mm:ss.mmm of a wall-clock time (UTC)
static std::string clock_text(double t) {
  char buf[32];
  std::time_t secs = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(std::fmod(t, 1.0) * 1000));
  return buf;
}

int main() {
  evw::Loop loop;

  // offset 0, interval 0.25 s: fires at ...:00.000, ...:00.250, ...:00.500, ...
  int ticks = 0;
  evw::Periodic grid(loop, 0s, kGrid, [&](evw::Periodic& w, int) {
    std::printf("grid tick %d at %s UTC, next at %s\n", ++ticks, clock_text(loop.now()).c_str(),
                clock_text(w.at()).c_str());
    if (ticks == kTicks) w.stop();
  });

  // Reschedule mode: the callable returns the next time; it must not touch watchers.
  double wait = 0.1;
  int backoffs = 0;
  evw::Periodic backoff(
      loop,
      [&](evw::Periodic&, double now) {
        const double next = now + wait;
        wait *= kBackoff;
        return next;
      },
      [&](evw::Periodic& w, int) {
        std::printf("backoff %d at %s UTC\n", ++backoffs, clock_text(loop.now()).c_str());
        if (backoffs == kTicks) w.stop();
      });

  grid.start();
  backoff.start();
  loop.run();  // returns when both have stopped
  std::printf("done: %d grid ticks, %d backoffs\n", ticks, backoffs);
}
