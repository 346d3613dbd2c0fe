#include "timer.hpp"

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "../core/access.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<48>) >= sizeof(ev_timer));

namespace {

}  // namespace

// The Timer around an ev_timer: container_of. offsetof on a class with
// virtual functions is conditionally supported; g++ and clang support it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
Timer& Timer::from_ev(void* w) noexcept {
  return *reinterpret_cast<Timer*>(static_cast<char*>(w) - offsetof(Timer, ev_));
}
#pragma GCC diagnostic pop

double Timer::after() const noexcept {
  return std::bit_cast<double>(reinterpret_cast<std::uintptr_t>(detail::ev_of<ev_timer>(*this)->data));
}

void Timer::set_after(double after) noexcept {
  detail::ev_of<ev_timer>(*this)->data = reinterpret_cast<void*>(std::bit_cast<std::uintptr_t>(after));
}

namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

void check_repeat(double repeat) {
  // libev asserts on a negative repeat; NaN and infinity corrupt its heap.
  if (!(repeat >= 0.0) || std::isinf(repeat))
    detail::throw_invalid("Timer", "repeat", number(repeat) + " must be finite and >= 0");
}

void check(double after, double repeat) {
  if (!std::isfinite(after))
    detail::throw_invalid("Timer", "after", number(after) + " must be finite");
  check_repeat(repeat);
}

}  // namespace

Timer::Timer(Loop& loop, Seconds after, Seconds repeat, Callback cb)
    : Watcher(loop, &ev_, "Timer", std::move(cb)) {
  check(after, repeat);
  auto* w = detail::ev_of<ev_timer>(*this);
  ev_timer_set(w, after, repeat);
  set_after(after);
  ev_set_cb(w, [](struct ev_loop*, ev_timer* t, int revents) noexcept { detail::dispatch(from_ev(t), revents); });
}

Timer::~Timer() { stop(); }

Timer::Timer(Timer&& other) : Watcher(std::move(other), &ev_) {
  const double after = other.after();
  finish_move(other, sizeof ev_);  // points the libev struct's data at this
  set_after(after);
}

void Timer::set(Seconds after, Seconds repeat) {
  check(after, repeat);
  Frozen frozen = freeze();
  set_after(after);
  ev_timer_set(detail::ev_of<ev_timer>(*this), after, repeat);
  thaw(frozen);
}

void Timer::restart() {
  Loop* loop = detail::Access::loop(*this);
  if (loop == nullptr) [[unlikely]] require_attached("restart");
  auto* w = detail::ev_of<ev_timer>(*this);
  const double after = this->after();
  if (after > 0.0 && !detail::Access::failed(*loop)) [[likely]] {
    // ev_timer_again re-arms at now + repeat in place (one heap adjustment,
    // not a stop and a start) and drops a pending expiry: lend it `after`.
    const double repeat = w->repeat;
    w->repeat = after;
    ev_timer_again(loop->raw(), w);
    w->repeat = repeat;
    return;
  }
  // after <= 0 (ev_timer_again would stop), or an exception is being
  // reported (stop() also forgets the expiry recorded for the next run()).
  stop();
  ev_timer_set(w, after, w->repeat);
  start_impl();
}

void Timer::restart(Seconds after) {
  if (!std::isfinite(static_cast<double>(after)))
    detail::throw_invalid("Timer", "after", number(after) + " must be finite");
  require_attached("restart");
  set_after(after);
  restart();
}

// On every event of an inactivity timeout: kept to a tail call. The libev
// struct is addressed as the member it is (no load of ev_offset_), and the
// detached case ends in the throw, so nothing needs saving around it.
void Timer::again() {
  Loop* loop = detail::Access::loop(*this);
  if (loop == nullptr) [[unlikely]] {
    require_attached("again");  // throws: detached
    __builtin_unreachable();
  }
  ev_timer_again(loop->raw(), reinterpret_cast<ev_timer*>(&ev_));
}

double Timer::remaining() const noexcept {
  if (!is_active()) return 0.0;
  return ev_timer_remaining(raw_loop(), detail::ev_of<ev_timer>(*this));
}

double Timer::repeat() const noexcept { return detail::ev_of<ev_timer>(*this)->repeat; }

void Timer::set_repeat(Seconds repeat) {
  check_repeat(repeat);
  detail::ev_of<ev_timer>(*this)->repeat = repeat;
}

void Timer::start_impl() { ev_timer_start(raw_loop(), detail::ev_of<ev_timer>(*this)); }
void Timer::stop_impl() noexcept { ev_timer_stop(raw_loop(), detail::ev_of<ev_timer>(*this)); }

}  // namespace evw
