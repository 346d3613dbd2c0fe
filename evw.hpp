// evw — typed event watchers on libev. The umbrella header:
//   #include <evw/evw.hpp>
#pragma once

#include "core/events.hpp"
#include "core/loop.hpp"
#include "core/time.hpp"
#include "core/watcher.hpp"
#include "watchers/io.hpp"
#include "watchers/priority.hpp"
#include "watchers/signal.hpp"
#include "watchers/timer.hpp"

namespace evw {
/// The library's version, as in evw.pc.
inline constexpr const char* VERSION = "0.1.0";
}
