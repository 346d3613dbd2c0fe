// Misuse fuzzer: random sequences of API calls that hold evw wrong — bad and
// edge arguments, fds closed and reused under active watchers, every call in
// every state, watchers and loops destroyed from callbacks (their own and
// others'), nested run(), loop.stop() variants, exceptions from callbacks,
// Loop::add/remove misuse, detached watchers — over a few Loops and every
// watcher type (Gpio excepted: it needs the FUSE simulator; CgroupEvents on
// an empty cgroup the test makes, when cgroup v2 lets it; Mounts, Attr and
// Pressure on /proc files, Child on other loops with real short-lived
// children through pidfds), and moves of every one of them (a loop-owned or
// running watcher must refuse).
//
// The contract: evw may throw, but only the std:: types documented for the
// misuse (std::logic_error and its invalid_argument/out_of_range, and
// std::system_error); nothing may crash, abort, hang, leak a descriptor or
// trip a sanitizer. Each seed runs in a forked child, so an abort is reported
// with its seed (and the step it died at) instead of killing the suite.
//
// make check runs a few seeds; EVW_MISUSE_SEEDS=<n> runs n seeds (EVW_OPS=<n>
// operations each), EVW_SEED=<n> replays one, EVW_MISUSE_VERBOSE=1 logs each
// step to stderr.
#include <evw/evw.hpp>

#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "kernel_support.hpp"
#include "support.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define EVW_MISUSE_LSAN 1
#endif

namespace {

using evw::detail::WatcherBase;

// Shared with the parent: where the child was when it died.
struct Shared {
  unsigned long step;
  char op[96];
  char failure[2048];
};

struct FuzzError {  // what callbacks throw on purpose: not a std::exception
  int n;
};

enum Kind { IO, TIMER, SIGNAL, PRIORITY, PERIODIC, IDLE, PREPARE, CHECK, STAT, ASYNC, FORK,
            CLEANUP, EMBED, CHILD, MOUNTS, ATTR, PRESSURE, CGROUP_EVENTS, POLL, KINDS };
const char* const kind_names[] = {"Io",    "Timer", "Signal", "Priority", "Periodic",
                                  "Idle",  "Prepare", "Check", "Stat",   "Async",
                                  "Fork",  "Cleanup", "Embed", "Child",  "Mounts",
                                  "Attr",  "Pressure", "CgroupEvents", "Poll"};

constexpr int kLoops = 3;     // slot kLoops is the default loop (never destroyed)
constexpr int kSlots = 48;    // watchers
constexpr int kFds = 12;      // descriptors of socketpairs, pipes, TCP pairs
constexpr int kMaxNest = 3;   // run() nesting from callbacks

struct Fuzz;
Fuzz* g = nullptr;
// An empty cgroup v2 group the test case made ("" without one): CgroupEvents watches it.
std::string g_cgroup;

// Lives in a watcher's data(): when the watcher dies (by any hand: ours, its
// loop's, a callback's), its registry slot empties.
struct Tag {
  explicit Tag(int s) : slot(s) {}
  Tag(const Tag&) = delete;
  Tag& operator=(const Tag&) = delete;
  ~Tag();
  int slot;
};

struct Entry {
  WatcherBase* w = nullptr;
  std::unique_ptr<WatcherBase> holder;  // user-owned; null for Loop::add ones
  Kind kind = IO;
  int loop = 0;
};

struct Fuzz {
  std::mt19937_64 rng;
  Shared* shared;
  bool verbose;
  std::unique_ptr<evw::Loop> loops[kLoops];
  unsigned run_depth[kLoops + 1] = {};  // run() calls of ours in progress, per loop
  Entry slots[kSlots];
  int fds[kFds];
  std::string path;
  int nest = 0;
  unsigned long step = 0;

  explicit Fuzz(std::uint64_t seed, Shared* sh) : rng(seed), shared(sh) {
    verbose = std::getenv("EVW_MISUSE_VERBOSE") != nullptr;
    for (int& fd : fds) fd = -1;
    path = "/tmp/evw-misuse-" + std::to_string(::getpid());
  }

  std::uint64_t r(std::uint64_t n) { return n == 0 ? 0 : rng() % n; }
  bool chance(int percent) { return r(100) < static_cast<std::uint64_t>(percent); }

  void note(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(shared->op, sizeof shared->op, fmt, ap);
    va_end(ap);
    shared->step = step;
    if (verbose) std::fprintf(stderr, "[%lu] %s\n", step, shared->op);
  }

  [[noreturn]] void fail(const std::string& what) {
    std::snprintf(shared->failure, sizeof shared->failure, "step %lu (%s): %s", step, shared->op,
                  what.c_str());
    std::fflush(stderr);
    ::_exit(3);
  }

  // Runs f; an evw exception of a documented type is fine, anything else fails.
  template <class F>
  void guarded(F&& f) {
    try {
      f();
    } catch (const FuzzError&) {
      // Ours, from a Periodic's reschedule callable (start/set/again/resume
      // call it): documented to come out unchanged.
    } catch (const std::system_error&) {
    } catch (const std::logic_error&) {  // invalid_argument, out_of_range, logic_error
    } catch (const std::exception& e) {
      fail(std::string("undocumented exception ") + typeid(e).name() + ": " + e.what());
    }
  }

  evw::Loop* loop_at(int i) {
    if (i == kLoops) return &evw::Loop::default_loop();
    return loops[i].get();
  }
  int loop_index(const evw::Loop* l) {
    for (int i = 0; i <= kLoops; ++i)
      if (loop_at(i) == l) return i;
    return -1;
  }
  int any_loop() { return static_cast<int>(r(kLoops + 1)); }

  // ---- arguments ----------------------------------------------------------
  // any_number: also numbers that are not ours (never closed by us). Not for
  // Io or Priority: either on a loop's own epoll descriptor (EINVAL) or on one
  // that closes a cycle of epoll sets (ELOOP: a Priority on it puts it into
  // the loop's EPOLLPRI set, which libev then adds to it) aborts in libev's
  // epoll_modify — a known libev-inherent issue (README, Reliability), and
  // the loops' descriptors are among these numbers.
  int any_fd(bool any_number = true) {
    switch (r(10)) {
      case 0: return -1 - static_cast<int>(r(3));
      case 1: return 1000000000;
      case 2: return std::numeric_limits<int>::max();
      case 3: if (any_number) return static_cast<int>(r(64)); [[fallthrough]];
      default: return fds[r(kFds)] >= 0 ? fds[r(kFds)] : static_cast<int>(r(64));
    }
  }
  double any_time() {
    switch (r(12)) {
      case 0: return std::numeric_limits<double>::quiet_NaN();
      case 1: return std::numeric_limits<double>::infinity();
      case 2: return -std::numeric_limits<double>::infinity();
      case 3: return -1.0 - static_cast<double>(r(100));
      case 4: return 1e300;
      case 5: return std::numeric_limits<double>::denorm_min();
      case 6: return 0.0;
      case 7: return -0.0;
      default: return static_cast<double>(r(30)) / 1000.0;
    }
  }
  int any_events() {
    static const int masks[] = {evw::Event::Read, evw::Event::Write, evw::Event::Read | evw::Event::Write, 0, evw::Event::Pri,
                                0x80, evw::Event::Read | evw::Event::Timer, -1, evw::Event::Error};
    return masks[r(std::size(masks))];
  }
  // Poll: valid and invalid events and modes (Exclusive with OneShot, Pri or RdHup is refused).
  int any_poll_events() {
    static const int masks[] = {evw::Event::Read, evw::Event::Write, evw::Event::Pri, evw::Event::RdHup,
                                evw::Event::Read | evw::Event::RdHup, evw::Event::Read | evw::Event::Write | evw::Event::Pri,
                                0, evw::Event::Hup, -1};
    return masks[r(std::size(masks))];
  }
  int any_poll_mode() { return static_cast<int>(r(9)) - (chance(5) ? 100 : 0); }
  int any_revents() {
    static const int masks[] = {0, evw::Event::Read, evw::Event::Write, evw::Event::Timer, evw::Event::Signal, evw::Event::Pri,
                                evw::Event::Hup, evw::Event::Error, evw::Event::Custom, -1, evw::Event::Cleanup, evw::Event::Embed};
    return masks[r(std::size(masks))];
  }
  int any_signal() {
    // Only signals the child ignores (see child_main) are ever raised.
    static const int sigs[] = {SIGUSR1, SIGUSR2, SIGWINCH, SIGUSR1, SIGUSR2, 0, -1, NSIG, 1000,
                               SIGKILL, SIGSTOP, SIGCHLD, 32, 33};
    return sigs[r(std::size(sigs))];
  }
  int any_priority() { return static_cast<int>(r(7)) - 3; }
  // A child that exits soon (for Child's pidfd form on loops other than the
  // default one), or numbers that are no child of ours.
  int any_child() {
    switch (r(6)) {
      case 0: return 0;
      case 1: return 1;  // init: not our child
      case 2: return -5;
      default: {
        const pid_t pid = ::fork();
        if (pid == 0) {
          ::usleep(static_cast<useconds_t>(r(20000)));
          ::_exit(static_cast<int>(r(4)));
        }
        return pid > 0 ? pid : 0;
      }
    }
  }
  // Notifying kernel files, and paths that are none.
  std::string any_attr_path() {
    static const char* const paths[] = {"/proc/self/mountinfo", "/proc/pressure/cpu", "", "/nonexistent/evw",
                                        "/proc/self/status"};
    if (chance(10)) return path;  // a regular file (if it exists): EPERM at start
    return paths[r(std::size(paths))];
  }
  // The test's empty group (if any), and directories that are no cgroup v2 group.
  std::string any_cgroup() {
    static const char* const others[] = {"", "/nonexistent/evw", "/proc", "/tmp"};
    if (!g_cgroup.empty() && chance(70)) return g_cgroup;
    return others[r(std::size(others))];
  }
  evw::PressureConfig any_pressure() {
    evw::PressureConfig c;
    c.resource = static_cast<evw::Resource>(r(4));  // 3 is no Resource
    c.stall = static_cast<evw::Stall>(r(2));
    static const long long windows_ms[] = {2000, 4000, 1000, 0, -2000, 20000};
    c.window = std::chrono::milliseconds(windows_ms[r(std::size(windows_ms))]);
    c.threshold = chance(10) ? c.window * 2 : c.window / 10;
    if (chance(10)) c.cgroup = chance(50) ? "/nonexistent/evw" : "/proc";
    return c;
  }

  // The known libev issue above also comes by reuse: a descriptor closed
  // under an Io/Priority watcher whose number a new loop's epoll set then
  // takes. (Re)starting such a watcher is skipped.
  static bool is_epoll(int fd) {
    char link[64], target[64] = {};
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    return ::readlink(link, target, sizeof target - 1) > 0 &&
           std::strcmp(target, "anon_inode:[eventpoll]") == 0;
  }
  bool on_epoll(const WatcherBase* w) {
    if (const auto* io = dynamic_cast<const evw::Io*>(w)) return is_epoll(io->fd());
    if (const auto* p = dynamic_cast<const evw::Priority*>(w)) return is_epoll(p->fd());
    if (const auto* p = dynamic_cast<const evw::Poll*>(w)) return is_epoll(p->fd());
    return false;
  }

  // ---- watchers -----------------------------------------------------------
  int free_slot() {
    for (int tries = 0; tries < 4; ++tries) {
      int i = static_cast<int>(r(kSlots));
      if (slots[i].w == nullptr) return i;
    }
    return -1;
  }
  int live_slot() {
    for (int tries = 0; tries < 6; ++tries) {
      int i = static_cast<int>(r(kSlots));
      if (slots[i].w != nullptr) return i;
    }
    return -1;
  }

  template <class W>
  void on_event(W& w, int revents);

  template <class W, class... Args>
  void make(int slot, Kind kind, int li, bool owned, Args&&... args) {
    evw::Loop* l = loop_at(li);
    W* w;
    if (owned) {
      w = &l->add<W>(std::forward<Args>(args)..., [](W& self, int rev) { g->on_event(self, rev); });
    } else {
      auto p = std::make_unique<W>(*l, std::forward<Args>(args)...,
                                   [](W& self, int rev) { g->on_event(self, rev); });
      w = p.get();
      slots[slot].holder = std::move(p);
    }
    slots[slot].w = w;
    slots[slot].kind = kind;
    slots[slot].loop = li;
    w->data() = std::make_shared<Tag>(slot);
  }

  void create() {
    const int slot = free_slot();
    if (slot < 0) return;
    int li = any_loop();
    if (loop_at(li) == nullptr) return;
    Kind kind = static_cast<Kind>(r(KINDS));
    if (kind == CHILD && chance(70)) li = kLoops;
    const bool owned = chance(40);
    note("create %s in loop %d%s", kind_names[kind], li, owned ? " (owned)" : "");
    guarded([&] {
      switch (kind) {
        case IO: make<evw::Io>(slot, kind, li, owned, any_fd(false), any_events()); break;
        case TIMER: make<evw::Timer>(slot, kind, li, owned, any_time(), any_time()); break;
        case SIGNAL: make<evw::Signal>(slot, kind, li, owned, any_signal()); break;
        case PRIORITY: make<evw::Priority>(slot, kind, li, owned, any_fd(false)); break;
        case PERIODIC:
          if (chance(50)) {
            make<evw::Periodic>(slot, kind, li, owned, any_time(), any_time());
          } else {
            // Must not touch watchers (documented); returns odd times, or throws.
            const int mode = static_cast<int>(r(5));
            make<evw::Periodic>(slot, kind, li, owned,
                                evw::Periodic::Reschedule([mode](evw::Periodic&, double now) {
                                  switch (mode) {
                                    case 0: return now - 1.0;
                                    case 1: return std::numeric_limits<double>::quiet_NaN();
                                    case 2: throw FuzzError{2};
                                    case 3: return std::numeric_limits<double>::infinity();
                                    default: return now + 0.005;
                                  }
                                }));
          }
          break;
        case IDLE: make<evw::Idle>(slot, kind, li, owned); break;
        case PREPARE: make<evw::Prepare>(slot, kind, li, owned); break;
        case CHECK: make<evw::Check>(slot, kind, li, owned); break;
        case STAT: make<evw::Stat>(slot, kind, li, owned, chance(10) ? std::string() : path, any_time()); break;
        case ASYNC: make<evw::Async>(slot, kind, li, owned); break;
        case FORK: make<evw::Fork>(slot, kind, li, owned); break;
        case CLEANUP: make<evw::Cleanup>(slot, kind, li, owned); break;
        case EMBED: {
          evw::Loop* other = loop_at(any_loop());
          if (other == nullptr) return;
          make<evw::Embed>(slot, kind, li, owned, *other);
          break;
        }
        case CHILD:
          if (li == kLoops) make<evw::Child>(slot, kind, li, owned, chance(10) ? -5 : 0);
          else make<evw::Child>(slot, kind, li, owned, any_child());  // a pidfd
          break;
        case MOUNTS:
          if (chance(80)) make<evw::Mounts>(slot, kind, li, owned);
          else make<evw::Mounts>(slot, kind, li, owned, any_attr_path());
          break;
        case ATTR: make<evw::Attr>(slot, kind, li, owned, any_attr_path()); break;
        case PRESSURE: make<evw::Pressure>(slot, kind, li, owned, any_pressure()); break;
        case CGROUP_EVENTS: make<evw::CgroupEvents>(slot, kind, li, owned, any_cgroup()); break;
        case POLL: make<evw::Poll>(slot, kind, li, owned, any_fd(false), any_poll_events(), any_poll_mode()); break;
        default: break;
      }
    });
    // A FuzzError from a reschedule callable in a constructor cannot happen:
    // the callable runs at start(), not at construction.
  }

  void destroy(int slot) {
    Entry& e = slots[slot];
    note("destroy %s #%d", kind_names[e.kind], slot);
    if (e.holder) {
      e.holder.reset();  // Tag empties the slot
    } else if (e.w != nullptr) {
      WatcherBase* w = e.w;
      if (!w->is_attached()) return;  // cannot happen: an owned watcher dies with its loop
      evw::Loop& l = w->loop();
      l.remove(*w);
    }
    e.w = nullptr;
  }

  // Moves the watcher into a new one, which takes its slot (its Tag goes
  // along in data()); a loop-owned watcher, or one whose callback runs, refuses.
  template <class W>
  void move_watcher(int slot) {
    Entry& e = slots[slot];
    const bool owned = !e.holder;
    auto to = std::make_unique<W>(std::move(static_cast<W&>(*e.w)));
    if (owned) fail("moving a loop-owned watcher did not throw");
    std::unique_ptr<WatcherBase> from = std::move(e.holder);
    e.w = to.get();
    e.holder = std::move(to);
    from.reset();  // moved from: empty, its destructor must be safe
  }
  void move(int slot);
  void poke(int slot);       // a random call on a watcher
  void specific(int slot);   // a type-specific call
  void fd_op();
  void loop_op();
  void run_loop(int li, bool from_callback);
  void action(WatcherBase* self, int li);  // what a callback does
  void one_step();
  void teardown();
};

Tag::~Tag() {
  if (g != nullptr) g->slots[slot].w = nullptr;
}

template <class W>
void Fuzz::on_event(W& w, int) {
  const int li = w.is_attached() ? loop_index(&w.loop()) : -1;
  // Level-triggered sources would spin: consume most of the time (only our
  // own descriptors, all nonblocking: a random number may be stdin).
  bool ours = false;
  if constexpr (std::is_same_v<W, evw::Io> || std::is_same_v<W, evw::Priority> || std::is_same_v<W, evw::Poll>)
    for (int fd : fds) ours = ours || (fd >= 0 && fd == w.fd());
  if constexpr (std::is_same_v<W, evw::Io>) {
    if (ours && chance(70)) {
      char buf[256];
      while (::read(w.fd(), buf, sizeof buf) > 0) {}
    }
  }
  if constexpr (std::is_same_v<W, evw::Priority>) {
    if (ours && chance(70)) {
      char c;
      while (::recv(w.fd(), &c, 1, MSG_OOB | MSG_DONTWAIT) > 0) {}
      if (chance(30)) w.stop();  // HUP/ERR keep firing
    }
  }
  if constexpr (std::is_same_v<W, evw::Poll>) {
    if (ours && chance(70)) {
      char buf[256];
      while (::recv(w.fd(), buf, sizeof buf, MSG_OOB | MSG_DONTWAIT) > 0) {}
      while (::recv(w.fd(), buf, sizeof buf, MSG_DONTWAIT) > 0) {}
      if (chance(30)) w.stop();  // HUP/ERR, RdHup and Write keep firing
    }
    if (chance(20)) w.rearm();
  }
  if (nest >= kMaxNest || !chance(35)) return;
  ++nest;
  action(&w, li);
  --nest;
}

void Fuzz::action(WatcherBase* self, int li) {
  const auto saved_step = step;
  switch (r(16)) {
    case 0: note("cb: stop self"); self->stop(); break;
    case 1: {  // destroy self: nothing of *self is touched after this
      for (int i = 0; i < kSlots; ++i)
        if (slots[i].w == self) {
          note("cb: destroy self #%d", i);
          destroy(i);
          break;
        }
      break;
    }
    case 2: {
      const int s = live_slot();
      if (s >= 0) {
        note("cb: destroy other #%d", s);
        destroy(s);
      }
      break;
    }
    case 3: case 4: {  // destroy a loop: its own or another
      const int target = r(2) == 0 && li >= 0 && li < kLoops ? li : static_cast<int>(r(kLoops));
      if (!loops[target]) break;
      // A loop that libev runs outside run() (an Embed's prepare sweeps the
      // embedded loop with ev_run): documented as not covered (README, Loop).
      if (loops[target]->depth() != run_depth[target]) break;
      note("cb: destroy loop %d (from loop %d)", target, li);
      loops[target].reset();
      break;
    }
    case 5: case 6: {
      const int target = r(2) == 0 && li >= 0 ? li : any_loop();
      if (loop_at(target) == nullptr) break;
      note("cb: nested run of loop %d (from %d)", target, li);
      run_loop(target, true);
      break;
    }
    case 7: note("cb: throw"); throw FuzzError{7};
    case 8: {
      if (li < 0 || loop_at(li) == nullptr) break;
      const int how = static_cast<int>(r(5)) - 1;
      note("cb: stop(%d) loop %d", how, li);
      loop_at(li)->stop(how);
      break;
    }
    case 9:
      if (on_epoll(self)) break;
      note("cb: set_priority self");
      guarded([&] { self->set_priority(any_priority()); });
      break;
    case 10: {
      const int s = live_slot();
      if (s >= 0) poke(s);
      break;
    }
    case 11: {
      const int s = live_slot();
      if (s >= 0) specific(s);
      break;
    }
    case 12: fd_op(); break;
    case 13: create(); break;
    case 14: {
      note("cb: feed self");
      guarded([&] { self->feed(any_revents()); });
      break;
    }
    default: {
      note("cb: poke self");
      for (int i = 0; i < kSlots; ++i)
        if (slots[i].w == self) {
          specific(i);
          break;
        }
      break;
    }
  }
  (void)saved_step;
}

// Runs a loop once, bounded: a guard timer breaks every level after 20 ms.
void Fuzz::run_loop(int li, bool from_callback) {
  evw::Loop* l = loop_at(li);
  const int flags = static_cast<int>(r(4)) == 0 ? 0 : (r(2) == 0 ? evw::Run::NoWait : evw::Run::Once);
  evw::Timer guard(*l, 0.02, 0.02, [](evw::Timer& t, int) { t.loop().stop(evw::Break::All); });
  guard.start();
  note("run loop %d flags %d%s", li, flags, from_callback ? " (nested)" : "");
  ++run_depth[li];
  try {
    l->run(flags);
  } catch (const FuzzError&) {
    // a callback's deliberate throw, rethrown unchanged: fine
  } catch (const std::system_error&) {
  } catch (const std::logic_error&) {
    // A Periodic's reschedule verdict (invalid_argument) comes out of run().
  } catch (const std::exception& e) {
    fail(std::string("run() threw undocumented ") + typeid(e).name() + ": " + e.what());
  }
  // The loop may be gone (a callback destroyed it): guard is detached then.
  if (loop_at(li) == l) --run_depth[li];
  else run_depth[li] = 0;
}

void Fuzz::move(int slot) {
  note("move %s #%d", kind_names[slots[slot].kind], slot);
  guarded([&] {
    switch (slots[slot].kind) {
      case IO: move_watcher<evw::Io>(slot); break;
      case TIMER: move_watcher<evw::Timer>(slot); break;
      case SIGNAL: move_watcher<evw::Signal>(slot); break;
      case PRIORITY: move_watcher<evw::Priority>(slot); break;
      case PERIODIC: move_watcher<evw::Periodic>(slot); break;
      case IDLE: move_watcher<evw::Idle>(slot); break;
      case PREPARE: move_watcher<evw::Prepare>(slot); break;
      case CHECK: move_watcher<evw::Check>(slot); break;
      case STAT: move_watcher<evw::Stat>(slot); break;
      case ASYNC: move_watcher<evw::Async>(slot); break;
      case FORK: move_watcher<evw::Fork>(slot); break;
      case CLEANUP: move_watcher<evw::Cleanup>(slot); break;
      case EMBED: move_watcher<evw::Embed>(slot); break;
      case CHILD: move_watcher<evw::Child>(slot); break;
      case MOUNTS: move_watcher<evw::Mounts>(slot); break;
      case ATTR: move_watcher<evw::Attr>(slot); break;
      case PRESSURE: move_watcher<evw::Pressure>(slot); break;
      case CGROUP_EVENTS: move_watcher<evw::CgroupEvents>(slot); break;
      default: break;
    }
  });
}

void Fuzz::poke(int slot) {
  WatcherBase* w = slots[slot].w;
  const char* k = kind_names[slots[slot].kind];
  switch (r(10)) {
    case 0: case 1:
      if (on_epoll(w)) break;
      note("start %s #%d", k, slot);
      guarded([&] { w->start(); });
      break;
    case 2: note("stop %s #%d", k, slot); w->stop(); break;
    case 3: note("feed %s #%d", k, slot); guarded([&] { w->feed(any_revents()); }); break;
    case 4: note("clear_pending %s #%d", k, slot); w->clear_pending(); break;
    case 5:
      if (on_epoll(w)) break;  // restarts it
      note("set_priority %s #%d", k, slot);
      guarded([&] { w->set_priority(any_priority()); });
      break;
    case 6: {
      note("queries %s #%d", k, slot);
      (void)w->is_active();
      (void)w->is_pending();
      (void)w->priority();
      guarded([&] { (void)w->loop(); });
      break;
    }
    case 7: {  // remove() misuse: a user-owned watcher, or the wrong loop
      const int li = any_loop();
      evw::Loop* l = loop_at(li);
      if (l == nullptr) break;
      const bool mine = w->is_attached() && &w->loop() == l && !slots[slot].holder;
      if (mine) break;  // a legal remove: destroy() does those
      note("remove %s #%d from loop %d (misuse)", k, slot, li);
      try {
        l->remove(*w);
        fail("Loop::remove of a watcher not owned by that loop did not throw");
      } catch (const std::logic_error&) {
      }
      break;
    }
    case 8: move(slot); break;
    default: specific(slot); break;
  }
}

void Fuzz::specific(int slot) {
  WatcherBase* base = slots[slot].w;
  const char* k = kind_names[slots[slot].kind];
  note("specific %s #%d", k, slot);
  guarded([&] {
    switch (slots[slot].kind) {
      case IO: {
        auto& w = static_cast<evw::Io&>(*base);
        if (chance(50)) w.set(any_fd(false), any_events());
        else w.set_events(any_events());
        (void)w.fd();
        break;
      }
      case TIMER: {
        auto& w = static_cast<evw::Timer&>(*base);
        switch (r(4)) {
          case 0: w.set(any_time(), any_time()); break;
          case 1: w.again(); break;
          case 2: w.set_repeat(any_time()); break;
          default: (void)w.remaining(); break;
        }
        break;
      }
      case SIGNAL: {
        auto& w = static_cast<evw::Signal&>(*base);
        if (chance(60)) w.set(any_signal());
        else {
          const int sig = w.signum();
          // Only ever raised while watched or ignored: the child ignores these.
          if (sig == SIGUSR1 || sig == SIGUSR2 || sig == SIGWINCH) ::raise(sig);
        }
        break;
      }
      case PRIORITY: static_cast<evw::Priority&>(*base).set(any_fd(false)); break;
      case PERIODIC: {
        auto& w = static_cast<evw::Periodic&>(*base);
        switch (r(3)) {
          case 0: w.set(any_time(), any_time()); break;
          case 1:
            try {
              w.again();
            } catch (const FuzzError&) {
            }
            break;
          default: (void)w.at(); break;
        }
        break;
      }
      case STAT: {
        auto& w = static_cast<evw::Stat&>(*base);
        if (chance(40)) w.set(chance(10) ? std::string("a\0b", 3) : path, any_time());
        else w.refresh();
        break;
      }
      case ASYNC: static_cast<evw::Async&>(*base).send(); break;
      case EMBED: {
        auto& w = static_cast<evw::Embed&>(*base);
        if (chance(50)) {
          evw::Loop* other = loop_at(any_loop());
          if (other != nullptr) w.set(*other);
        } else if (w.is_attached()) {
          // sweep() runs the other loop: count it as ours.
          const int oi = loop_index(&w.other());
          if (oi >= 0) ++run_depth[oi];
          evw::Loop* other = &w.other();
          try {
            w.sweep();
          } catch (const FuzzError&) {
          } catch (...) {
            if (loop_at(oi) == other) --run_depth[oi];
            throw;
          }
          if (oi >= 0 && loop_at(oi) == other) --run_depth[oi];
        }
        break;
      }
      case CHILD: {
        auto& w = static_cast<evw::Child&>(*base);
        if (w.uses_pidfd() && chance(50)) w.set(any_child(), chance(10));
        else if (chance(50)) w.set(chance(10) ? -1 : 0, chance(50));
        else {
          const pid_t pid = ::fork();
          if (pid == 0) ::_exit(0);
        }
        break;
      }
      case MOUNTS: {
        auto& w = static_cast<evw::Mounts&>(*base);
        if (chance(30)) w.set(chance(70) ? std::string("/proc/self/mountinfo") : any_attr_path());
        (void)w.find("/");
        (void)w.changes().size();
        break;
      }
      case ATTR: {
        auto& w = static_cast<evw::Attr&>(*base);
        if (chance(50)) w.set(any_attr_path());
        (void)w.value();
        break;
      }
      case PRESSURE: {
        auto& w = static_cast<evw::Pressure&>(*base);
        if (chance(50)) w.set(any_pressure());
        (void)w.stats();
        break;
      }
      case CGROUP_EVENTS: {
        auto& w = static_cast<evw::CgroupEvents&>(*base);
        if (chance(50)) w.set(any_cgroup());
        (void)w.populated();
        (void)w.frozen();
        break;
      }
      case POLL: {
        auto& w = static_cast<evw::Poll&>(*base);
        if (chance(50)) w.set(any_fd(false), any_poll_events(), any_poll_mode());
        else w.rearm();
        break;
      }
      default: {
        if (chance(50) || on_epoll(base)) base->stop();
        else base->start();
        break;
      }
    }
  });
}

void Fuzz::fd_op() {
  const int i = static_cast<int>(r(kFds));
  switch (r(7)) {
    case 0: {  // close under whatever watches it
      if (fds[i] < 0) break;
      note("close fd %d", fds[i]);
      ::close(fds[i]);
      fds[i] = -1;
      break;
    }
    case 1: case 2: {  // new pair: the lowest free numbers, so reuse is likely
      const int j = static_cast<int>(r(kFds));
      if (fds[i] >= 0 || fds[j] >= 0 || i == j) break;
      int sv[2] = {-1, -1};
      const int type = static_cast<int>(r(3));
      if (type == 0) {
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) break;
      } else if (type == 1) {
        if (::pipe2(sv, O_NONBLOCK | O_CLOEXEC) != 0) break;
      } else {
        auto [a, b] = evw_test::tcp_pair();
        sv[0] = a.release();
        sv[1] = b.release();
      }
      fds[i] = sv[0];
      fds[j] = sv[1];
      note("new %s pair %d %d", type == 0 ? "unix" : type == 1 ? "pipe" : "tcp", sv[0], sv[1]);
      break;
    }
    case 3: {  // write, or urgent data
      if (fds[i] < 0) break;
      note("write fd %d", fds[i]);
      if (chance(50)) (void)!::send(fds[i], "!", 1, MSG_OOB | MSG_DONTWAIT | MSG_NOSIGNAL);
      else (void)!::write(fds[i], "x", 1);
      break;
    }
    case 4: {  // reuse a number under its watchers: dup2 another file onto it
      const int j = static_cast<int>(r(kFds));
      if (fds[i] < 0 || fds[j] < 0 || i == j) break;
      note("dup2 fd %d onto %d", fds[j], fds[i]);
      ::dup2(fds[j], fds[i]);
      break;
    }
    case 5: {
      if (fds[i] < 0) break;
      note("shutdown fd %d", fds[i]);
      ::shutdown(fds[i], SHUT_RDWR);
      break;
    }
    default: {
      note("touch/unlink stat path");
      if (chance(50)) {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
          (void)!::write(fd, "x", 1);
          ::close(fd);
        }
      } else {
        ::unlink(path.c_str());
      }
      break;
    }
  }
}

void Fuzz::loop_op() {
  const int li = static_cast<int>(r(kLoops));
  switch (r(8)) {
    case 0: {
      if (loops[li]) {
        note("destroy loop %d", li);
        loops[li].reset();
      } else {
        static const unsigned flags[] = {evw::LoopFlag::Auto, evw::Backend::Epoll, evw::Backend::Poll,
                                         evw::Backend::Select, evw::Backend::Kqueue,
                                         evw::Backend::Epoll | evw::LoopFlag::SignalFd,
                                         evw::LoopFlag::ForkCheck | evw::Backend::Epoll,
                                         evw::Backend::LinuxAio};
        // Not BACKEND_IOURING: libev 4.33's io_uring backend (experimental)
        // aborts under this abuse ("io_uring_enter did not consume all sqes")
        // — a known libev issue (README, Reliability). Embed's refusal of
        // io_uring loops is tested in test_embed.cpp.
        const unsigned f = flags[r(std::size(flags))];
        note("new loop %d flags 0x%x", li, f);
        guarded([&] { loops[li] = std::make_unique<evw::Loop>(f); });
      }
      break;
    }
    case 1: {
      evw::Loop* l = loop_at(any_loop());
      if (l == nullptr) break;
      note("loop misc");
      l->update_now();
      (void)l->now();
      (void)l->iteration();
      (void)l->pending_count();
      l->stop(static_cast<int>(r(5)) - 1);
      break;
    }
    case 2: {
      evw::Loop* l = loop_at(any_loop());
      if (l == nullptr) break;
      note("suspend/resume");
      if (chance(50)) l->suspend();
      try {
        l->resume();  // may call reschedule callables
      } catch (...) {
      }
      break;
    }
    default: {
      const int target = any_loop();
      if (loop_at(target) != nullptr) run_loop(target, false);
      break;
    }
  }
}

void Fuzz::one_step() {
  ++step;
  switch (r(10)) {
    case 0: case 1: create(); break;
    case 2: case 3: case 4: {
      const int s = live_slot();
      if (s >= 0) poke(s);
      break;
    }
    case 5: {
      const int s = live_slot();
      if (s >= 0) destroy(s);
      break;
    }
    case 6: fd_op(); break;
    case 7: case 8: loop_op(); break;
    default: {
      const int s = live_slot();
      if (s >= 0) specific(s);
      break;
    }
  }
}

void Fuzz::teardown() {
  note("teardown");
  // Detached watchers first, in random order with their loops.
  for (int i = 0; i < kLoops; ++i)
    if (chance(50)) loops[i].reset();
  for (int i = 0; i < kSlots; ++i)
    if (slots[i].holder) {
      // A detached watcher: every call but start/feed/loop() stays safe.
      WatcherBase* w = slots[i].w;
      w->stop();
      (void)w->clear_pending();
      if (!on_epoll(w)) guarded([&] { w->start(); });
      slots[i].holder.reset();
    }
  for (auto& l : loops) l.reset();
  // What is left on the default loop (Loop::add'ed ones).
  for (int i = 0; i < kSlots; ++i)
    if (slots[i].w != nullptr) destroy(i);
  for (int& fd : fds)
    if (fd >= 0) ::close(std::exchange(fd, -1));
  ::unlink(path.c_str());
}

int count_fds() { return evw_test::open_fd_count(); }

std::string list_fds() {
  std::string out;
  for (int fd = 0; fd < 1024; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0) continue;
    char link[64], target[128] = {};
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    (void)!::readlink(link, target, sizeof target - 1);
    out += std::to_string(fd) + "=" + target + " ";
  }
  return out;
}

[[noreturn]] void child_main(std::uint64_t seed, unsigned long ops, Shared* shared) {
  // doctest's crash handlers are inherited: the parent reports the signal.
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) ::signal(sig, SIG_DFL);
  ::alarm(20);  // a hang is a failure, reported by the parent as SIGALRM
  // Raised signals must never kill the child when unwatched.
  for (int sig : {SIGUSR1, SIGUSR2, SIGWINCH}) ::signal(sig, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  evw::Loop& def = evw::Loop::default_loop();
  def.fork();  // the parent may have used it
  // The default loop keeps what its first Signal/Async/Stat/Priority create,
  // and the timerfd libev makes for the first Periodic.
  {
    evw::Periodic per(def, 0.0, 1.0, [](evw::Periodic&, int) {});
    per.start();
    evw::Signal s(def, SIGUSR1, [](evw::Signal&, int) {});
    s.start();
    evw::Async a(def, [](evw::Async&, int) {});
    a.start();
    evw::Stat st(def, "/", 0.0, [](evw::Stat&, int) {});
    st.start();
    auto [x, y] = evw_test::tcp_pair();
    evw::Priority p(def, x.get(), [](evw::Priority&, int) {});
    p.start();
    def.run(evw::Run::NoWait);
  }
  def.run(evw::Run::NoWait);
  const int baseline = count_fds();
  const std::string before = list_fds();
  try {
    Fuzz fuzz(seed, shared);
    g = &fuzz;
    try {
      for (unsigned long i = 0; i < ops; ++i) fuzz.one_step();
    } catch (const FuzzError&) {
      // A callback's throw out of invoke(): not used, but harmless.
    } catch (const std::exception& e) {
      fuzz.fail(std::string("escaped: ") + typeid(e).name() + ": " + e.what());
    }
    fuzz.teardown();
    try {
      def.run(evw::Run::NoWait);  // a default-loop callback's throw may still be queued
    } catch (const FuzzError&) {
    }
    g = nullptr;
    // Children forked for Child watchers: reap what libev has not.
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {}
    const int now = count_fds();
    if (now != baseline) {
      std::snprintf(shared->failure, sizeof shared->failure,
                    "descriptor leak: %d open at the start, %d at the end; before: %s; after: %s",
                    baseline, now, before.c_str(), list_fds().c_str());
      ::_exit(4);
    }
  } catch (const FuzzError&) {
    std::snprintf(shared->failure, sizeof shared->failure, "FuzzError escaped at step %lu (%s)",
                  shared->step, shared->op);
    ::_exit(6);
  } catch (...) {
    std::snprintf(shared->failure, sizeof shared->failure, "exception escaped at step %lu (%s)",
                  shared->step, shared->op);
    ::_exit(6);
  }
#ifdef EVW_MISUSE_LSAN
  if (__lsan_do_recoverable_leak_check() != 0) {
    std::snprintf(shared->failure, sizeof shared->failure, "LeakSanitizer found leaks");
    ::_exit(5);
  }
#endif
  ::_exit(0);
}

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 0) : fallback;
}

// Runs one seed in a child; an empty string if it passed, else what happened.
std::string run_seed(std::uint64_t seed, unsigned long ops) {
  void* mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(mem != MAP_FAILED);
  auto* shared = static_cast<Shared*>(mem);
  std::memset(shared, 0, sizeof *shared);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) child_main(seed, ops, shared);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  std::string out;
  if (WIFSIGNALED(status)) {
    out = std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
          ::strsignal(WTERMSIG(status)) + ") at step " + std::to_string(shared->step) + " (" +
          shared->op + ")";
  } else if (WEXITSTATUS(status) != 0) {
    out = "exit " + std::to_string(WEXITSTATUS(status)) + ": " + shared->failure;
  }
  ::munmap(mem, sizeof(Shared));
  return out;
}

}  // namespace

TEST_CASE("misuse: random abuse of the API never crashes, aborts, hangs or leaks") {
  const bool replay = std::getenv("EVW_SEED") != nullptr && *std::getenv("EVW_SEED") != '\0';
  const std::uint64_t first = replay ? env_number("EVW_SEED", 0) : std::random_device{}();
  const unsigned long seeds = replay ? 1 : env_number("EVW_MISUSE_SEEDS", 12);
  const unsigned long ops = env_number("EVW_OPS", 400);
  MESSAGE("misuse: seeds " << first << ".." << first + seeds - 1 << ", " << ops
                           << " operations each (replay: EVW_SEED=<n> EVW_OPS=" << ops << ")");
  evw_test::TempCgroup group("evw-misuse");
  g_cgroup = group.ok() ? group.path() : "";
  if (!group.ok()) MESSAGE("misuse: CgroupEvents only on paths that are no group: " << group.why());
  unsigned long failed = 0;
  for (unsigned long i = 0; i < seeds; ++i) {
    const std::uint64_t seed = first + i;
    const std::string what = run_seed(seed, ops);
    if (!what.empty()) {
      ++failed;
      FAIL_CHECK("EVW_SEED=" << seed << " EVW_OPS=" << ops << ": " << what);
    }
  }
  g_cgroup.clear();
  CHECK(failed == 0);
}
