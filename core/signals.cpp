#include "signals.hpp"

#include <ev.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <string>

#include "access.hpp"
#include "sys.hpp"
#include "wakeup.hpp"

namespace evw::detail {

// One (signal, loop) pair. Slots are never freed: a slot whose loop stopped
// watching stays in its signal's list for the next loop, so the handler can
// walk the list without a lock while loops come and go.
struct SignalSlot {
  std::atomic<Wakeup*> loop{nullptr};  // set while the loop watches the signal
  std::atomic<int> busy{0};            // handlers between reading `loop` and done with it
  std::atomic<bool> raised{false};     // set by the handler, taken by the loop
  SignalSlot* next = nullptr;          // set before the slot is published, then constant
};

namespace {

static_assert(std::atomic<Wakeup*>::is_always_lock_free && std::atomic<int>::is_always_lock_free &&
                  std::atomic<bool>::is_always_lock_free,
              "the signal handler needs lock-free atomics");

struct Table {
  std::atomic<SignalSlot*> head{nullptr};
  unsigned loops = 0;         // loops watching the signal (guarded by table_mutex)
  struct sigaction saved {};  // the disposition before evw took it (guarded)
};

std::mutex table_mutex;  // watch/unwatch; never taken by the handler
Table table[NSIG];

// Async-signal-safe: lock-free atomics and ev_async_send / ev_feed_signal.
void on_signal(int signum) {
  const int saved_errno = errno;
  for (SignalSlot* s = table[signum].head.load(); s != nullptr; s = s->next) {
    s->busy.fetch_add(1);  // before reading `loop`: unwatch_signal waits for it
    if (Wakeup* w = s->loop.load()) {
      s->raised.store(true);
      w->send();
    }
    s->busy.fetch_sub(1);
  }
  // For libev's own signal watchers (the default loop's SIGCHLD); a no-op for
  // a signal no libev loop watches.
  ev_feed_signal(signum);
  errno = saved_errno;
}

void install(int signum) noexcept {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigfillset(&sa.sa_mask);   // as libev: one handler at a time
  sa.sa_flags = SA_RESTART;  // as libev: no EINTR in the application's own calls
  ::sigaction(signum, &sa, nullptr);
}

LoopSignal* find(Wakeup& wakeup, int signum) noexcept {
  for (LoopSignal& s : wakeup.signals)
    if (s.signum == signum) return &s;
  return nullptr;
}

}  // namespace

void watch_signal(Wakeup& wakeup, WatcherBase& w, int signum, bool raised) {
  auto& signals = wakeup.signals;
  if (LoopSignal* s = find(wakeup, signum)) {
    s->watchers.push_back(&w);
    if (raised) s->slot->raised.store(true);
    return;
  }
  // The loop's first watcher of signum: allocate everything before publishing.
  LoopSignal entry{signum, nullptr, {&w}};
  signals.reserve(signals.size() + 1);
  std::lock_guard lock(table_mutex);
  Table& t = table[signum];
  SignalSlot* slot = t.head.load();
  while (slot != nullptr && slot->loop.load() != nullptr) slot = slot->next;
  if (slot == nullptr) {
    slot = new SignalSlot;  // never freed (see SignalSlot)
    slot->next = t.head.load();
    t.head.store(slot);
  }
  if (t.loops++ == 0) {
    ::sigaction(signum, nullptr, &t.saved);
    install(signum);
  }
  slot->raised.store(raised);
  slot->loop.store(&wakeup);
  entry.slot = slot;
  signals.push_back(std::move(entry));
  // A signal carried over (see Signal::stop_impl) needs its wake callback.
  if (raised) wakeup.send();
}

bool unwatch_signal(Wakeup& wakeup, WatcherBase& w, int signum) noexcept {
  auto& signals = wakeup.signals;
  auto it = std::find_if(signals.begin(), signals.end(), [&](const LoopSignal& s) { return s.signum == signum; });
  if (it == signals.end()) return false;
  std::erase(it->watchers, &w);
  if (!it->watchers.empty()) return false;
  SignalSlot* slot = it->slot;
  signals.erase(it);
  std::lock_guard lock(table_mutex);
  slot->loop.store(nullptr);
  // A handler on another thread may have read the loop just before: once it
  // is done, none can reach this loop through the slot any more, and the
  // slot's flag says whether the loop received the signal.
  while (slot->busy.load() != 0) sched_yield();
  const bool raised = slot->raised.exchange(false);
  Table& t = table[signum];
  if (--t.loops == 0) ::sigaction(signum, &t.saved, nullptr);
  return raised;
}

void drop_signal(Wakeup& wakeup, WatcherBase& w, int signum) noexcept {
  LoopSignal* s = find(wakeup, signum);
  if (s != nullptr && s->watchers.size() == 1 && s->watchers.front() == &w) s->slot->raised.store(false);
}

void feed_signals(Loop& loop, struct ev_loop* raw, std::vector<LoopSignal>& signals) noexcept {
  for (LoopSignal& s : signals) {
    if (!s.slot->raised.load(std::memory_order_relaxed) || !s.slot->raised.exchange(false)) continue;
    Access::note_feed(loop);
    // The watchers run at their priorities later in this iteration (the wake
    // callback has max priority; ev_feed_event rescans the priorities).
    for (WatcherBase* w : s.watchers) ev_feed_event(raw, Access::ev(*w), EV_SIGNAL);
  }
}

void after_default_loop() noexcept {
  std::lock_guard lock(table_mutex);
  Table& t = table[SIGCHLD];
  if (t.loops == 0) return;
  ::sigaction(SIGCHLD, nullptr, &t.saved);  // libev's handler: what evw gives back
  install(SIGCHLD);
}

void probe_wakeup_fd(const char* kind) {
  const int fd = sys::retry_eintr([] { return sys::eventfd(0, EFD_CLOEXEC); });
  if (const int err = errno; fd < 0)
    throw_system(err, std::string("evw::") + kind +
                            ": cannot create the loop's wakeup descriptor (eventfd)");
  sys::close(fd);
}

}  // namespace evw::detail
