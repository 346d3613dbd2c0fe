// evw — a span of time in seconds, given as a number or a std::chrono duration.
#pragma once

#include <chrono>

namespace evw {

/// Seconds as libev counts them (a double). Converts implicitly from a number
/// of seconds and from any std::chrono::duration, so `Timer(loop, 1.5, 0, cb)`
/// and `Timer(loop, 1500ms, 0s, cb)` mean the same.
struct Seconds {
  double value;
  constexpr Seconds(double seconds) noexcept : value(seconds) {}  // NOLINT: implicit on purpose
  template <class Rep, class Period>
  constexpr Seconds(std::chrono::duration<Rep, Period> d) noexcept  // NOLINT
      : value(std::chrono::duration<double>(d).count()) {}
  constexpr operator double() const noexcept { return value; }  // NOLINT
};

}  // namespace evw
