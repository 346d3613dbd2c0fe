#include "periodic.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

#include "../core/access.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<64>) >= sizeof(ev_periodic));

namespace detail {

// libev's reschedule_cb: a C frame, so nothing may be thrown through it.
struct PeriodicTrampoline {
  // How far to park a periodic whose reschedule failed (libev's manual
  // suggests now + 1e30 for a periodic that should not fire again).
  static constexpr double kParked = 1e30;

  static ev_tstamp reschedule(ev_periodic* w, ev_tstamp now) noexcept {
    Periodic& p = *static_cast<Periodic*>(w->data);
    // Not to be moved from inside its reschedule callable either.
    Loop& loop = *Access::loop(p);
    WatcherBase* const running = std::exchange(Access::running(loop), &p);
    p.in_reschedule_ = true;
    try {
      const double at = p.reschedule_(p, now);
      p.in_reschedule_ = false;
      Access::running(loop) = running;
      // libev asserts at >= now after a reschedule; NaN would corrupt its heap.
      if (!(at >= now)) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "returned %.6f, which is before now (%.6f)", at, now);
        throw_invalid("Periodic", "reschedule", buf);
      }
      return at;
    } catch (...) {
      p.in_reschedule_ = false;
      Access::running(loop) = running;
      if (p.in_direct_call_) {
        if (!p.direct_error_) p.direct_error_ = std::current_exception();
      } else {
        Access::capture(*Access::loop(p), std::current_exception());
      }
      return now + kParked;
    }
  }
};

}  // namespace detail

namespace {

void periodic_callback(struct ev_loop*, ev_periodic* w, int revents) noexcept {
  detail::dispatch(*static_cast<Periodic*>(w->data), revents);
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Returns the offset to give libev: normalised into [0, interval) so that it
// stays small next to the clock (libev's numerical advice) while keeping the
// schedule offset + k * interval.
double checked_offset(double offset, double interval) {
  if (!std::isfinite(offset))
    detail::throw_invalid("Periodic", "offset", number(offset) + " must be finite");
  // libev asserts on a negative interval; NaN and infinity corrupt its heap.
  if (!(interval >= 0.0) || std::isinf(interval))
    detail::throw_invalid("Periodic", "interval", number(interval) + " must be finite and >= 0");
  if (interval == 0.0) return offset;
  double normal = std::fmod(offset, interval);
  if (normal < 0.0) normal += interval;
  if (normal >= interval) normal = 0.0;  // a tiny negative rounded up to interval
  return normal;
}

void check_reschedule(const Periodic::Reschedule& reschedule) {
  if (!reschedule) detail::throw_invalid("Periodic", "reschedule", "callable is empty");
}

}  // namespace

Periodic::Periodic(Loop& loop, Seconds offset, Seconds interval, Callback cb)
    : Watcher(loop, &ev_, "Periodic", std::move(cb)) {
  const double off = checked_offset(offset, interval);
  auto* w = detail::ev_of<ev_periodic>(*this);
  ev_periodic_set(w, off, interval, nullptr);
  ev_set_cb(w, periodic_callback);
  w->at = 0.0;
}

Periodic::Periodic(Loop& loop, Reschedule reschedule, Callback cb)
    : Watcher(loop, &ev_, "Periodic", std::move(cb)) {
  check_reschedule(reschedule);
  reschedule_ = std::move(reschedule);
  auto* w = detail::ev_of<ev_periodic>(*this);
  ev_periodic_set(w, 0.0, 0.0, detail::PeriodicTrampoline::reschedule);
  ev_set_cb(w, periodic_callback);
  w->at = 0.0;
}

Periodic::~Periodic() { stop(); }

Periodic::Periodic(Periodic&& other)
    : Watcher(std::move(other), &ev_),
      reschedule_(std::move(other.reschedule_)),
      direct_error_(std::exchange(other.direct_error_, nullptr)) {
  finish_move(other, sizeof ev_);
}

void Periodic::set(Seconds offset, Seconds interval) {
  refuse_in_reschedule("set");
  const double off = checked_offset(offset, interval);
  Frozen frozen = freeze();
  ev_periodic_set(detail::ev_of<ev_periodic>(*this), off, interval, nullptr);
  reschedule_ = nullptr;
  thaw(frozen);
}

void Periodic::set(Reschedule reschedule) {
  refuse_in_reschedule("set");
  check_reschedule(reschedule);
  Frozen frozen = freeze();
  reschedule_ = std::move(reschedule);
  ev_periodic_set(detail::ev_of<ev_periodic>(*this), 0.0, 0.0,
                  detail::PeriodicTrampoline::reschedule);
  thaw(frozen);
}

void Periodic::again() {
  require_attached("again");
  refuse_in_reschedule("again");
  in_direct_call_ = true;
  ev_periodic_again(raw_loop(), detail::ev_of<ev_periodic>(*this));
  finish_direct_call();
}

double Periodic::at() const noexcept { return ev_periodic_at(detail::ev_of<ev_periodic>(*this)); }
double Periodic::offset() const noexcept { return detail::ev_of<ev_periodic>(*this)->offset; }
double Periodic::interval() const noexcept { return detail::ev_of<ev_periodic>(*this)->interval; }

void Periodic::refuse_in_reschedule(const char* what) const {
  if (in_reschedule_)
    throw std::logic_error(std::string("evw::Periodic::") + what +
                           ": called from the periodic's own reschedule callable, which must not "
                           "change any watcher");
}

void Periodic::finish_direct_call() {
  in_direct_call_ = false;
  if (!direct_error_) return;
  ev_periodic_stop(raw_loop(), detail::ev_of<ev_periodic>(*this));
  std::rethrow_exception(std::exchange(direct_error_, nullptr));
}

void Periodic::start_impl() {
  in_direct_call_ = true;
  ev_periodic_start(raw_loop(), detail::ev_of<ev_periodic>(*this));
  finish_direct_call();
}

// ev_periodic_start computes the next time afresh (calling the reschedule
// callable); a move keeps the old watcher's. So it starts as a one-shot at
// that time and gets its schedule back at once: libev reads offset, interval
// and reschedule_cb again only when the periodic fires.
void Periodic::rehome_start_impl(WatcherBase&, bool active) noexcept {
  if (!active) return;
  auto* w = detail::ev_of<ev_periodic>(*this);
  const ev_tstamp offset = w->offset;
  const ev_tstamp interval = w->interval;
  auto* const reschedule = w->reschedule_cb;
  ev_periodic_set(w, ev_periodic_at(w), 0.0, nullptr);
  ev_periodic_start(raw_loop(), w);
  ev_periodic_set(w, offset, interval, reschedule);
}

void Periodic::stop_impl() noexcept {
  ev_periodic_stop(raw_loop(), detail::ev_of<ev_periodic>(*this));
}

}  // namespace evw
