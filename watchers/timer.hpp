// evw::Timer — a relative timeout, optionally repeating (libev's ev_timer).
//
// Caveats: timers run on the loop's monotonic clock and are based on
// loop.now(), the time of the start of the iteration; call loop.update_now()
// after long work. For an inactivity timeout call restart() on each activity:
// it (re)starts the timer `after` from now, active or not, one-shot or
// repeating, as libuv's uv_timer_start and asio's expires_after do. again()
// is libev's ev_timer_again, which *stops* a one-shot timer (repeat 0). Both
// drop a pending expiry; set() keeps it. A timer with after <= 0 fires in the
// next iteration.
//
// revents: Event::Timer (and whatever feed() passes).
#pragma once

#include "../core/loop.hpp"
#include "../core/time.hpp"
#include "../core/watcher.hpp"

namespace evw {

/// Calls back after `after` seconds, then every `repeat` seconds if repeat > 0.
class Timer final : public detail::Watcher<Timer> {
 public:
  /// @brief A stopped timer. `after` and `repeat` are seconds or std::chrono durations.
  /// @throws std::invalid_argument if after is not finite, or repeat is negative,
  ///         infinite or NaN; if cb is empty.
  Timer(Loop& loop, Seconds after, Seconds repeat, Callback cb);
  ~Timer();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Timer(Timer&& other);
  Timer& operator=(Timer&& other) { return move_assign(other); }
  /// @brief New timing; allowed while active or pending (restarts from now,
  /// keeps a pending expiry). @throws as the constructor.
  void set(Seconds after, Seconds repeat);
  /// @brief (Re)start from now with `after`, whatever the repeat, active or
  /// not; a pending expiry is dropped. The idle-timeout idiom.
  /// @throws std::logic_error if the loop is gone.
  void restart();
  /// @brief The same with a new `after`, kept for later restart() calls.
  /// @throws std::invalid_argument if after is not finite; std::logic_error
  ///         if the loop is gone.
  void restart(Seconds after);
  /// @brief libev's ev_timer_again: active and repeating → expires `repeat`
  /// from now; repeat 0 → **stops** (also a one-shot timer that is active);
  /// inactive and repeating → starts. Drops a pending expiry.
  /// @throws std::logic_error if the loop is gone.
  void again();
  /// @brief The delay restart() and start() use, in seconds.
  double after() const noexcept;
  /// @brief Seconds until it fires (0 if it is not active). (ev_timer_remaining)
  double remaining() const noexcept;
  /// @brief The repeat interval in seconds.
  double repeat() const noexcept;
  /// @brief Change the repeat interval used from the next expiry or again().
  /// @throws std::invalid_argument as the constructor.
  void set_repeat(Seconds repeat);

 private:
  void start_impl() override;
  void stop_impl() noexcept override;
  // libev turns ev_timer's `at` into an absolute time once started, so
  // `after` is kept apart: in the libev struct's data pointer (as bits),
  // which a Timer does not need (its callback finds the Timer by offset).
  static Timer& from_ev(void* w) noexcept;
  void set_after(double after) noexcept;
  detail::EvStorage<48> ev_;
};

}  // namespace evw
