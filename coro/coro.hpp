// evw coroutines — the umbrella header of the coroutine layer:
//   #include <evw/coro/coro.hpp>
//
// Straight-line code over evw's watchers: evw::Task<T>, evw::spawn (and its
// evw::SpawnHandle: cancel, join), evw::sync_wait, the awaitables (readable, writable, urgent, sleep, signal,
// Watch<W>, gpio.edge() on a Gpio or GpioLine) and the combinators (when_all, when_any, with_timeout). A layer on
// top of the callback API, which it does not change. Caveats are in each header.
#pragma once

#include "awaitables.hpp"
#include "edge.hpp"
#include "kernel.hpp"
#include "offload.hpp"
#include "spawn.hpp"
#include "task.hpp"
#include "when.hpp"
