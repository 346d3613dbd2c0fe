// evw::Periodic — a timer on the wall clock (libev's ev_periodic).
//
// Three modes. Absolute (interval 0): fire once when the system time reaches
// `offset`. Repeating (interval > 0): fire at every time t with
// t = offset (mod interval), e.g. offset 0, interval 3600 is "every full hour,
// UTC", whatever the clock does in between. Reschedule: a callable returns the
// next time to fire (as pyev's Scheduler).
//
// Caveats: times are wall-clock seconds (as loop.now()), so a periodic follows
// clock changes; for "in N seconds" use Timer. With interval > 0 the offset is
// normalised into [0, interval) (same schedule; offset() reports the
// normalised value). Intervals under about 1/8192 s lose precision.
// The reschedule callable runs inside libev: it must return a time >= now,
// and must not start, stop, change or destroy any watcher or call into the
// loop (libev forbids it; set() and again() on its own periodic throw
// std::logic_error there). It is called even in an iteration in which a
// callback has thrown (libev needs the time). What it throws, or a time in the
// past or NaN (std::invalid_argument), comes out of start()/set()/again() when
// called from there, otherwise out of Loop::run(); the periodic then stays
// active but parked ~1e30 s ahead until again() or set().
//
// revents: Event::Periodic. Plus whatever feed() passes.
#pragma once

#include <exception>
#include <functional>

#include "../core/loop.hpp"
#include "../core/time.hpp"
#include "../core/watcher.hpp"

namespace evw {

namespace detail {
struct PeriodicTrampoline;
}

/// Calls back at absolute wall-clock times (libev's ev_periodic).
class Periodic final : public detail::Watcher<Periodic> {
 public:
  /// Any callable `double(Periodic& watcher, double now)` returning the next
  /// time to fire (>= now, wall-clock seconds).
  using Reschedule = std::function<double(Periodic&, double)>;

  /// @brief A stopped periodic: at `offset` (interval 0) or at every
  /// offset + k * interval (interval > 0). Seconds or std::chrono durations.
  /// @throws std::invalid_argument if offset is not finite, or interval is
  ///         negative, infinite or NaN; if cb is empty.
  Periodic(Loop& loop, Seconds offset, Seconds interval, Callback cb);
  /// @brief A stopped periodic whose times come from `reschedule`.
  /// @throws std::invalid_argument if reschedule or cb is empty.
  Periodic(Loop& loop, Reschedule reschedule, Callback cb);
  ~Periodic();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// The next time to fire is kept (the reschedule callable is not called).
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Periodic(Periodic&& other);
  Periodic& operator=(Periodic&& other) { return move_assign(other); }

  /// @brief New offset and interval (leaves reschedule mode); allowed while
  /// active or pending (restarts, keeps a pending event).
  /// @throws as the constructor; std::logic_error inside its reschedule callable.
  void set(Seconds offset, Seconds interval);
  /// @brief Switch to a reschedule callable; allowed while active or pending.
  /// @throws std::invalid_argument if empty; what the callable throws when
  ///         the periodic is active; std::logic_error inside its reschedule callable.
  void set(Reschedule reschedule);
  /// @brief Recompute the next time from now (ev_periodic_again): stops and
  /// starts, so it also starts an inactive periodic and drops a pending event.
  /// @throws std::logic_error if the loop is gone or inside the reschedule
  ///         callable; what the reschedule callable throws.
  void again();
  /// @brief The next time it fires (wall-clock seconds); meaningful while active.
  double at() const noexcept;
  /// @brief The offset (normalised into [0, interval) when interval > 0); 0 in reschedule mode.
  double offset() const noexcept;
  /// @brief The interval; 0 for a one-shot and in reschedule mode.
  double interval() const noexcept;
  /// @brief True in reschedule mode.
  bool has_reschedule() const noexcept { return static_cast<bool>(reschedule_); }

 private:
  friend struct detail::PeriodicTrampoline;
  // After a call into libev that may have run the reschedule callable: what
  // it threw was kept here (not sent to the loop); stop and rethrow it.
  void finish_direct_call();
  void refuse_in_reschedule(const char* what) const;
  void start_impl() override;
  void stop_impl() noexcept override;
  void rehome_start_impl(WatcherBase& from, bool active) noexcept override;

  Reschedule reschedule_;
  std::exception_ptr direct_error_;
  bool in_direct_call_ = false;
  bool in_reschedule_ = false;
  detail::EvStorage<64> ev_;
};

}  // namespace evw
