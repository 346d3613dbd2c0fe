// evw — typed event watchers on libev. The umbrella header:
//   #include <evw/evw.hpp>
// Coroutines (Task, spawn, sync_wait, co_await readable/sleep/…,
// when_all/when_any/with_timeout) are opt-in: #include <evw/coro/coro.hpp>
#pragma once

#include "core/events.hpp"
#include "core/loop.hpp"
#include "core/loop_handle.hpp"
#include "core/loop_thread.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "core/watcher.hpp"
#include "core/work_pool.hpp"
#include "watchers/async.hpp"
#include "watchers/attr.hpp"
#include "watchers/cgroup_events.hpp"
#include "watchers/check.hpp"
#include "watchers/child.hpp"
#include "watchers/cleanup.hpp"
#include "watchers/embed.hpp"
#include "watchers/fork.hpp"
#include "watchers/gpio.hpp"
#include "watchers/gpio_line.hpp"
#include "watchers/idle.hpp"
#include "watchers/io.hpp"
#include "watchers/mounts.hpp"
#include "watchers/periodic.hpp"
#include "watchers/prepare.hpp"
#include "watchers/pressure.hpp"
#include "watchers/poll.hpp"
#include "watchers/priority.hpp"
#include "watchers/signal.hpp"
#include "watchers/stat.hpp"
#include "watchers/timer.hpp"

namespace evw {
/// The library's version, as in evw.pc.
inline constexpr const char* version = "0.2.0";
}
