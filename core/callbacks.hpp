// evw — what the compiler says about a callback of the wrong signature:
// "the callback must be callable as void(evw::Io&, int revents)", not the
// name of an internal type. static_assert messages are literals (until
// C++26), hence one specialisation per watcher type; a type missing here
// gets the generic message.
#pragma once

#include "function.hpp"

namespace evw {

class Async;
class Check;
class Child;
class Cleanup;
class Embed;
class Fork;
class Gpio;
class GpioLine;
class Idle;
class Io;
class Periodic;
class Prepare;
class Priority;
class Signal;
class Stat;
class Timer;

namespace detail {

template <class W, class F>
struct BadCallable<void(W&, int), F> {
  static_assert(always_false<F>, "evw: the callback must be callable as void(W& watcher, int revents), "
                                 "W being the watcher's type");
};

// clang-format off
template <class F> struct BadCallable<void(Async&, int), F> { static_assert(always_false<F>, "evw: the callback must be callable as void(evw::Async&, int revents)"); };
template <class F> struct BadCallable<void(Check&, int), F> { static_assert(always_false<F>, "evw: the callback must be callable as void(evw::Check&, int revents)"); };
template <class F> struct BadCallable<void(Child&, int), F> { static_assert(always_false<F>, "evw: the callback must be callable as void(evw::Child&, int revents)"); };
template <class F> struct BadCallable<void(Cleanup&, int), F> { static_assert(always_false<F>, "evw: the callback must be callable as void(evw::Cleanup&, int revents)"); };
template <class F> struct BadCallable<void(Embed&, int), F> { static_assert(always_false<F>, "evw: the callback must be callable as void(evw::Embed&, int revents)"); };
template <class F> struct BadCallable<void(Fork&, int), F> { static_assert(always_false<F>, "evw: the callback must be callable as void(evw::Fork&, int revents)"); };
template <class F> struct BadCallable<void(Gpio&, int), F> { static_assert(always_false<F>, "evw: the callback must be callable as void(evw::Gpio&, int revents)"); };
template <class F> struct BadCallable<void(GpioLine&, int), F> { static_assert(always_false<F>, "evw: the callback must be callable as void(evw::GpioLine&, int revents)"); };
template <class F> struct BadCallable<void(Idle&, int), F> { static_assert(always_false<F>, "evw: the callback must be callable as void(evw::Idle&, int revents)"); };
template <class F> struct BadCallable<void(Io&, int), F> { static_assert(always_false<F>, "evw: the callback must be callable as void(evw::Io&, int revents)"); };
template <class F> struct BadCallable<void(Periodic&, int), F> { static_assert(always_false<F>, "evw: the callback must be callable as void(evw::Periodic&, int revents)"); };
template <class F> struct BadCallable<void(Prepare&, int), F> { static_assert(always_false<F>, "evw: the callback must be callable as void(evw::Prepare&, int revents)"); };
template <class F> struct BadCallable<void(Priority&, int), F> { static_assert(always_false<F>, "evw: the callback must be callable as void(evw::Priority&, int revents)"); };
template <class F> struct BadCallable<void(Signal&, int), F> { static_assert(always_false<F>, "evw: the callback must be callable as void(evw::Signal&, int revents)"); };
template <class F> struct BadCallable<void(Stat&, int), F> { static_assert(always_false<F>, "evw: the callback must be callable as void(evw::Stat&, int revents)"); };
template <class F> struct BadCallable<void(Timer&, int), F> { static_assert(always_false<F>, "evw: the callback must be callable as void(evw::Timer&, int revents)"); };
// clang-format on

}  // namespace detail
}  // namespace evw
