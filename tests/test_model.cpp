// A randomized model-based test of the loop and eleven watcher types.
//
// A driver performs long random sequences of operations on real watchers
// (Io, Timer, Signal, Priority, Idle, Prepare, Check, Periodic, Async, Attr,
// Poll), fed by real event sources: socketpair writes, loopback TCP urgent data
// (MSG_OOB), raise(), Async::send() and feed(); and functions posted to the
// loop from a second thread (Loop::post through a LoopHandle). Attr watches
// the cgroup.events of two empty cgroups of its own, a real notifying kernfs
// file that stays quiet (nothing joins them), so its events are the fed ones
// and set() moves it between the two files: real files and the loop's EPOLLPRI
// table, deterministic. (Its kernel-driven changes are not in the model: the
// kernel may delay a cgroup notification by up to 10 ms, which no step can
// predict; tests/test_attr.cpp covers them.) Poll watches the socketpairs
// (beside Io), the TCP server sides (beside Priority, sharing their
// registration in the loop's EPOLLPRI table), a socketpair whose peer shut
// down writing (Event::RdHup) and one whose peer is closed (Event::Hup), in
// level, edge-triggered, one-shot and edge+one-shot mode. Left out:
// PollMode::Exclusive (it only decides which of several loops wakes, and
// there is one loop here; tests/test_poll.cpp measures it), Event::Read on
// the TCP fds and edge mode there (urgent bytes stay in the stream as holes
// and ACKs, window updates and retransmissions wake the socket: that is the
// TCP stack's business, not a prediction) and Event::Error (no source here
// has one). The model follows each fd's kernel registration: the union of its watchers'
// events, a one-shot's arming, an edge's pending wakeup, and every epoll_ctl
// evw makes (see Reg); a start() or set() meeting another PollMode on the fd
// must throw std::logic_error exactly when the model says so. Operations:
// create (user- or loop-owned), start, stop, set, set_priority, feed,
// clear_pending, again (rearm for Poll), destroy, run(Run::Once |
// Run::NoWait), destroy the loop; and, armed before a run, actions done from
// inside callbacks: stop or destroy the watcher itself or another one, start,
// feed, clear or re-prioritise another one, rearm itself (Poll), throw.
//
// A reference model tracks what each watcher must be (attached, active,
// pending and with which revents, priority, callback count) and, for each
// run(), which deliveries must happen. After every step evw is compared with
// it; each run() is checked event by event: every expected delivery happens
// exactly once with the expected revents, a delivery always has the highest
// priority among those still due in its phase, and nothing else is
// delivered. So: feed() + run(Run::NoWait) delivers exactly once; stop() clears a
// pending event; set()/set_priority() keep a pending event and deliver it
// once, at the new priority; an exception from a callback comes out of run()
// and the events not yet delivered come first in the next run().
//
// The model spells out the libev rules evw inherits: one iteration delivers,
// in this order, (0) what was pending before run(), (1) the Prepare
// watchers, (2) what the poll found: I/O, the EPOLLPRI table (Priority and
// Poll), expired timers and periodics, signals and Async sends (through
// libev's wakeup pipe, coalesced),
// Idle watchers (only those of the highest idle priority, and only if nothing
// of that priority or higher is pending: the wakeup pipe and the EPOLLPRI
// drain are internal max_priority watchers; evw's wakeup callback, run by the
// pipe after a signal or a post, sends itself again if a callback threw before
// it, so the next iteration has the pipe pending too), then Check watchers.
//
// Seeded: the seed is printed; EVW_SEED=<n> replays a run and EVW_OPS=<n>
// sets the number of operations (200,000 by default, about half a second;
// `make stress` runs 1,000,000 for each of several seeds). A failure prints the seed, the step and the last
// operations.
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "kernel_support.hpp"
#include "support.hpp"

namespace {

using evw::detail::WatcherBase;

enum class Kind : std::uint8_t { Io, Timer, Signal, Priority, Idle, Prepare, Check, Periodic, Async, Attr, Poll };
constexpr int kKinds = 11;

// start() or set(), run; true if it threw std::logic_error (another PollMode on the fd).
template <class F>
bool throws_logic_error(F&& op) {
  try {
    op();
  } catch (const std::logic_error&) {
    return true;
  }
  return false;
}

// How evw disagreed with the model about a mode conflict.
const char* mode_verdict(bool threw) {
  return threw ? "threw std::logic_error, the model sees no other mode on the fd"
               : "did not throw, though the fd is watched with another mode";
}

const char* kind_name(Kind k) {
  static const char* const names[] = {"Io",   "Timer",   "Signal", "Priority", "Idle",
                                      "Prepare", "Check", "Periodic", "Async", "Attr", "Poll"};
  return names[static_cast<int>(k)];
}

// Actions a callback performs (armed before a run, done at the first call).
enum class Act : std::uint8_t {
  None, StopSelf, DestroySelf, StopOther, DestroyOther, StartOther, FeedOther, ClearOther,
  PriorityOther, Throw, RearmSelf, Skipped
};

const char* act_name(Act a) {
  static const char* const names[] = {"none",       "stop-self",   "destroy-self", "stop-other",
                                      "destroy-other", "start-other", "feed-other", "clear-other",
                                      "priority-other", "throw",    "rearm-self", "skipped"};
  return names[static_cast<int>(a)];
}

// What a callback throws when armed with Act::Throw; run() must let it out unchanged.
struct ModelThrow {
  int slot;
  std::uint64_t serial;
};

constexpr int kSlots = 16;
constexpr int kPairs = 4;      // socketpairs for Io (it watches a, the driver writes into b)
constexpr int kTcp = 3;        // loopback TCP pairs for Priority (it watches the server side)
// The fds a Poll watches, numbered: the socketpairs' `a` ends (0..kPairs-1,
// shared with Io, which is libev's and independent), the TCP server sides
// (shared with Priority: one registration in the loop's EPOLLPRI table) and
// the `a` end of a socketpair whose peer shut down writing (always readable,
// writable, and EPOLLRDHUP), and one whose peer is closed (all that and
// EPOLLHUP, which epoll reports whatever was asked).
constexpr int kPollTcp = kPairs;
constexpr int kPollHup = kPairs + kTcp;
constexpr int kPollClosed = kPollHup + 1;
constexpr int kPollFds = kPollClosed + 1;
constexpr int kMaxUnread = 32;
constexpr int kSignals[] = {SIGUSR1, SIGUSR2};
constexpr double kFar = 1000.0;        // a timer that never fires during a test
constexpr double kFarInterval = 1e9;   // a periodic grid whose next point is years away

struct Slot {
  // --- the model ---
  bool used = false;
  Kind kind = Kind::Io;
  std::uint64_t serial = 0;
  bool loop_owned = false;
  bool attached = false;
  bool active = false;
  int pending = 0;  // revents of the pending event, 0 if none (outside run())
  int priority = 0;
  std::uint64_t calls = 0;
  int source = 0;  // Io: socketpair; Priority: TCP pair; Attr: cgroup; Poll: fd number (see kPollFds)
  int events = 0;  // Io, Poll
  int pmode = 0;   // Poll: its PollMode
  int signum = 0;
  double after = 0, repeat = 0;
  bool due = false;  // Timer: its time is in the past (fires at the next poll while active)
  int mode = 0;      // Periodic: 0 one-shot in the past, 1 one-shot far ahead, 2 far grid
  double offset = 0, interval = 0;
  bool sent = false;  // Async: libev's `sent` flag (kept while stopped)
  // --- the real watcher ---
  std::unique_ptr<WatcherBase> owner;  // user-owned watchers
  WatcherBase* w = nullptr;
  std::uint64_t real_calls = 0;
  // --- armed for the next run() ---
  Act act = Act::None;
  int target = -1;
  std::uint64_t target_serial = 0;
  int arg = 0;
};

struct Fired {
  int slot;
  std::uint64_t serial;
  int revents;
  int priority;  // w.priority() at the call
  Act act;
  int target;
  std::uint64_t target_serial;
  int arg;
  bool threw = false;  // Act::StartOther: start() threw std::logic_error (another PollMode on the fd)
};

struct Expect {
  int slot;
  int revents;
};

struct Trace {
  std::uint64_t step;
  const char* op;
  int slot;
  long a, b;
};

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 0);
}

// A second thread that runs a job on request and returns when it is done:
// the model's posts come from it, as other threads' posts do.
class Poster {
 public:
  Poster() : thread_([this] { serve(); }) {}
  ~Poster() {
    {
      std::lock_guard lock(mutex_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void run(std::function<void()> job) {
    std::unique_lock lock(mutex_);
    job_ = std::move(job);
    cv_.notify_all();
    cv_.wait(lock, [this] { return !job_; });
  }

 private:
  void serve() {
    std::unique_lock lock(mutex_);
    for (;;) {
      cv_.wait(lock, [this] { return quit_ || job_; });
      if (quit_) return;
      job_();
      job_ = nullptr;
      cv_.notify_all();
    }
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool quit_ = false;
  std::thread thread_;
};

// Counts its destruction unless moved from: a posted function is destroyed
// once, run or not.
struct Gone {
  std::uint64_t* count;
  explicit Gone(std::uint64_t* c) noexcept : count(c) {}
  Gone(Gone&& o) noexcept : count(std::exchange(o.count, nullptr)) {}
  Gone& operator=(Gone&&) = delete;
  ~Gone() {
    if (count != nullptr) ++*count;
  }
};

class Model {
 public:
  Model(std::uint64_t seed, std::uint64_t ops) : seed_(seed), ops_(ops), rng_(seed) {}

  // Runs the whole sequence; returns an empty string or the first disagreement.
  std::string run();
  double seconds() const { return seconds_; }
  std::uint64_t deliveries() const { return deliveries_; }
  std::uint64_t runs() const { return runs_; }
  std::uint64_t steps() const { return step_; }

 private:
  // ---- randomness ----
  std::uint64_t below(std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  // ---- failure reporting ----
  void fail(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
  bool failed() const { return !error_.empty(); }
  void trace(const char* op, int slot, long a = 0, long b = 0) {
    trace_[trace_next_++ % trace_.size()] = {step_, op, slot, a, b};
  }

  // ---- event sources ----
  void open_sources();
  void write_pair(int i);
  void drain_pair(int i);
  void send_urgent(int i);
  void drain_urgent(int i);

  // ---- model helpers ----
  int natural(const Slot& s) const;
  int io_ready(const Slot& s) const;
  bool signal_watched(int signum) const;
  bool any_active() const;
  bool will_not_block() const;
  void m_start(int k);
  void m_stop(int k);
  void signal_discard(const Slot& s);
  void m_destroy(int k);
  void m_feed(int k, int revents);
  void m_clear(int k);
  void m_set_priority(int k, int pri);
  void m_rearm(int k);
  // The loop's EPOLLPRI table: Poll and Priority watchers registered per fd.
  static bool on_table(const Slot& s) { return s.kind == Kind::Poll || s.kind == Kind::Priority; }
  static int table_fd(const Slot& s) { return s.kind == Kind::Priority ? kPollTcp + s.source : s.source; }
  static int node_events(const Slot& s) { return s.kind == Kind::Priority ? evw::Event::Pri : s.events; }
  static int node_mode(const Slot& s) { return s.kind == Kind::Priority ? evw::PollMode::Level : s.pmode; }
  static bool linked(const Slot& s) { return s.used && s.attached && s.active && on_table(s); }
  int poll_fd(int f) const;
  int fd_ready(int f) const;
  int reg_union(int f) const;
  int reg_count(int f) const;
  int reg_mode(int f) const;
  int reportable(int f) const;
  bool would_conflict(int k, int f, int mode) const;
  bool start_conflicts(int k) const;
  void reg_arm(int f, bool fresh);
  void reg_linked(int f);
  void reg_unlinked(int f, int old_union);
  void start_checked(int k);
  void remove_expect(int k);
  void cleared(const Slot& s) {
    if (!in_run_ && s.attached && s.pending != 0) ++dummies_;
  }

  // ---- the real side ----
  template <class W, class... Args>
  W& construct(Slot& s, int k, bool loop_owned, Args&&... args);
  template <class W>
  auto callback(int k, std::uint64_t serial);
  void on_event(WatcherBase& w, int k, std::uint64_t serial, int revents);
  void destroy_real(int k);
  template <class F>
  bool expect_throw(const char* what, F&& f);

  // ---- operations ----
  void step();
  void op_create(int k);
  void op_destroy(int k);
  void op_start(int k);
  void op_stop(int k);
  void op_set(int k);
  void op_set_priority(int k);
  void op_feed(int k);
  void op_clear_pending(int k);
  void op_again(int k);
  void choose_poll(int& source, int& events, int& pmode);
  template <class F>
  void table_set(int k, int source, int events, int pmode, F&& apply);
  void op_make_ready();
  void op_drain();
  void op_post();
  void check_posts(bool threw);
  void op_run();
  void op_destroy_loop();
  void arm_actions();

  // ---- checking a run ----
  void begin_phase(int phase);
  void compute_phase2();
  bool runs_before_pipe(int k);
  void check_run(bool threw, const ModelThrow& thrown, bool returned, unsigned iter_before);
  void check_all();

  std::uint64_t seed_, ops_;
  bool strict_ = env_number("EVW_MODEL_STRICT", 1) != 0;
  std::mt19937_64 rng_;
  std::string error_;
  std::uint64_t step_ = 0;
  std::vector<Trace> trace_ = std::vector<Trace>(env_number("EVW_TRACE", 40));
  std::size_t trace_next_ = 0;

  std::unique_ptr<evw::Loop> loop_;
  std::array<Slot, kSlots> slots_;
  std::uint64_t next_serial_ = 0;

  struct Pair {
    evw_test::Fd a, b;
    int unread = 0;
  };
  struct Tcp {
    evw_test::Fd client, server;
    bool urgent = false;
  };
  std::array<Pair, kPairs> pairs_;
  std::array<Tcp, kTcp> tcps_;
  Pair hup_;  // its b end shut down writing at once
  evw_test::Fd closed_;  // the a end of a socketpair whose b end is closed
  // The kernel's state of each fd's registration in the loop's EPOLLPRI
  // table (epoll_ctl on it whenever a node is linked, or unlinked with the
  // union of events changing, or rearm()ed): a one-shot registration is
  // `armed` until it reports; an edge-triggered one reports only when
  // `queued` (the ADD or MOD found it ready, or a wakeup came since: a write
  // into the socketpair, whose wakeup key is EPOLLIN|EPOLLPRI).
  struct Reg {
    bool armed = false, queued = false;
  };
  std::array<Reg, kPollFds> regs_;
  // Attr's quiet files: the cgroup.events of two empty cgroups (none without cgroup v2).
  std::array<std::unique_ptr<evw_test::TempCgroup>, 2> groups_;
  std::array<std::string, 2> attr_paths_;
  bool attr_files_ = false;

  // libev's wakeup pipe of the current loop, and its per-loop flags.
  bool pipe_dirty_ = false, sig_pending_ = false, async_pending_ = false;
  // libev's pipe watcher in the iteration being checked: pending (it runs
  // in this iteration), and done. It runs at max priority after the
  // max-priority watchers libev queued behind it (its queue is a stack): the
  // Timer, Periodic and Check watchers of priority 2 and what their callbacks
  // fed on top, which are `before_pipe_`.
  bool pipe_due_ = false, pipe_ran_ = false;
  std::vector<int> before_pipe_;
  // evw's wakeup callback (core/wakeup.cpp) is among what the pipe watcher
  // runs. If a callback threw before it runs and posts are queued, it sends
  // itself again for them: the next iteration has the pipe dirty, and no
  // Idle watcher runs there. (Until 2026-12-05 it sent even with no posts.)
  bool wake_due_ = false;
  // Functions posted from the poster thread to the current loop: how many,
  // how many ran (each checks it is the next), how many were destroyed.
  Poster poster_;
  std::uint64_t posted_ = 0, posts_ran_ = 0, posts_gone_ = 0;
  // libev's process-wide "signal received" flags (they outlive loops).
  bool sig_flag_[NSIG] = {};
  // libev clears a pending event by pointing its queue entry at a dummy
  // watcher: pending_count() counts those until the next dispatch.
  unsigned dummies_ = 0;

  // The run being checked.
  bool in_run_ = false;
  unsigned run_iteration_ = 0;
  std::vector<Fired> log_;
  std::vector<Expect> remaining_;
  int phase_ = 0;
  bool callback_threw_ = false;

  double seconds_ = 0;
  std::uint64_t deliveries_ = 0, runs_ = 0;

 public:
  // Coverage figures, printed at the end.
  std::uint64_t by_kind_[kKinds] = {};
  std::uint64_t by_phase_[3] = {};
  std::uint64_t acts_ = 0, throws_ = 0, wake_resends_ = 0, loops_destroyed_ = 0, once_runs_ = 0, posts_total_ = 0;
  std::uint64_t poll_by_mode_[4] = {};  // Poll callbacks by Level, Edge, OneShot, Edge|OneShot
  std::uint64_t mode_conflicts_ = 0, rearms_ = 0;
};

void Model::fail(const char* fmt, ...) {
  if (failed()) return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::string out = "model disagrees at step " + std::to_string(step_) + " (EVW_SEED=" +
                    std::to_string(seed_) + " EVW_OPS=" + std::to_string(ops_) + "): " + buf +
                    "\nlast operations (step op slot a b):\n";
  for (std::size_t i = 0; i < trace_.size(); ++i) {
    const Trace& t = trace_[(trace_next_ + i) % trace_.size()];
    if (t.op == nullptr) continue;
    char line[160];
    std::snprintf(line, sizeof line, "  %8" PRIu64 " %-16s %3d %ld %ld\n", t.step, t.op, t.slot, t.a, t.b);
    out += line;
  }
  out += "slots (kind serial attached active pending priority calls):\n";
  for (int k = 0; k < kSlots; ++k) {
    const Slot& s = slots_[k];
    if (!s.used) continue;
    char line[200];
    std::snprintf(line, sizeof line, "  %2d %-8s #%-6" PRIu64 " src=%d ev=0x%x mode=%d att=%d act=%d pend=0x%x pri=%d calls=%" PRIu64
                  " real: act=%d pend=%d pri=%d calls=%" PRIu64 "\n",
                  k, kind_name(s.kind), s.serial, s.source, s.events, s.pmode, s.attached, s.active, s.pending, s.priority, s.calls,
                  s.w ? s.w->is_active() : -1, s.w ? s.w->is_pending() : -1, s.w ? s.w->priority() : 99,
                  s.real_calls);
    out += line;
  }
  out += "sources: unread";
  for (const Pair& p : pairs_) out += " " + std::to_string(p.unread);
  out += "; urgent";
  for (const Tcp& t : tcps_)
  {
    pollfd p{t.server.get(), POLLPRI, 0};
    const bool now = ::poll(&p, 1, 0) == 1 && (p.revents & POLLPRI);
    out += " " + std::to_string(t.urgent) + "(fd " + std::to_string(t.server.get()) + ", POLLPRI now " +
           std::to_string(now) + ")";
  }
  out += "; Poll fds (ready union mode armed queued):";
  for (int f = 0; f < kPollFds; ++f)
    out += " " + std::to_string(f) + ":0x" + std::to_string(fd_ready(f)) + "/0x" + std::to_string(reg_union(f)) + "/" +
           std::to_string(reg_mode(f)) + "/" + std::to_string(regs_[f].armed) + std::to_string(regs_[f].queued);
  out += "; pipe " + std::to_string(pipe_dirty_) + " sig " + std::to_string(sig_pending_) + " async " +
         std::to_string(async_pending_) + "\n";
  if (in_run_) {
    out += "this run's callbacks (slot revents priority action target):\n";
    for (const Fired& f : log_) {
      char line[160];
      std::snprintf(line, sizeof line, "  %2d 0x%x %d %s %d\n", f.slot, f.revents, f.priority, act_name(f.act), f.target);
      out += line;
    }
    out += "still expected in phase " + std::to_string(phase_) + ":";
    for (const Expect& e : remaining_) out += " " + std::to_string(e.slot) + ":0x" + std::to_string(e.revents);
    out += "\n";
  }
  error_ = out;
}

// ---------------------------------------------------------------------------
// Event sources

void Model::open_sources() {
  for (Pair& p : pairs_) {
    auto [a, b] = evw_test::socket_pair();
    p.a = std::move(a);
    p.b = std::move(b);
  }
  for (Tcp& t : tcps_) {
    auto [client, server] = evw_test::tcp_pair();
    t.client = std::move(client);
    t.server = std::move(server);
  }
  auto [a, b] = evw_test::socket_pair();
  hup_.a = std::move(a);
  hup_.b = std::move(b);
  if (::shutdown(hup_.b.get(), SHUT_WR) != 0) return fail("shutdown(SHUT_WR) of the hang-up pair: errno %d", errno);
  pollfd p{hup_.a.get(), POLLIN | POLLOUT | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) != 1 || p.revents != (POLLIN | POLLOUT | POLLRDHUP))
    fail("the hang-up pair's a end polls 0x%x, not POLLIN|POLLOUT|POLLRDHUP", p.revents);
  closed_ = std::move(evw_test::socket_pair().first);  // the b end is closed with the temporary
  pollfd q{closed_.get(), POLLIN | POLLOUT | POLLRDHUP, 0};
  if (::poll(&q, 1, 0) != 1 || q.revents != (POLLIN | POLLOUT | POLLRDHUP | POLLHUP))
    fail("the closed pair's a end polls 0x%x, not POLLIN|POLLOUT|POLLRDHUP|POLLHUP", q.revents);
}

void Model::write_pair(int i) {
  Pair& p = pairs_[i];
  if (p.unread >= kMaxUnread) return;
  const char c = 'x';
  if (::write(p.b.get(), &c, 1) != 1) return fail("write to socketpair %d failed: errno %d", i, errno);
  ++p.unread;
  // The data's wakeup (EPOLLIN|EPOLLPRI) queues the fd's registration if it
  // asks for one of them and is armed: what an edge-triggered one reports.
  Reg& r = regs_[i];
  if ((reg_union(i) & (evw::Event::Read | evw::Event::Pri)) != 0 &&
      (r.armed || (reg_mode(i) & evw::PollMode::OneShot) == 0))
    r.queued = true;
}

void Model::drain_pair(int i) {
  Pair& p = pairs_[i];
  char buf[256];
  ssize_t n;
  int total = 0;
  while ((n = ::read(p.a.get(), buf, sizeof buf)) > 0) total += static_cast<int>(n);
  if (total != p.unread) fail("socketpair %d held %d bytes, the driver wrote %d", i, total, p.unread);
  p.unread = 0;
}

void Model::send_urgent(int i) {
  Tcp& t = tcps_[i];
  // The receiver never sends data, so its ACKs are delayed; once the sender's
  // congestion window is full of unacknowledged urgent bytes, the next one
  // waits (up to ~40 ms) and would arrive in the middle of later steps. Ask
  // for an immediate ACK, and wait until the byte has left the sender.
  const int one = 1;
  ::setsockopt(t.server.get(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
  const char c = '!';
  if (::send(t.client.get(), &c, 1, MSG_OOB) != 1) return fail("send(MSG_OOB) on tcp %d: errno %d", i, errno);
  for (int tries = 0;; ++tries) {
    int unsent = 0;
    if (::ioctl(t.client.get(), SIOCOUTQNSD, &unsent) != 0 || unsent == 0) break;
    if (tries == 2000) return fail("urgent byte on tcp %d not sent after 2 s", i);
    ::usleep(1000);
  }
  pollfd p{t.server.get(), POLLPRI, 0};
  for (int tries = 0; tries < 1000; ++tries) {
    if (::poll(&p, 1, tries == 0 ? 0 : 1) == 1 && (p.revents & POLLPRI)) {
      t.urgent = true;
      Reg& r = regs_[kPollTcp + i];  // the wakeup, as in write_pair
      if ((reg_union(kPollTcp + i) & (evw::Event::Read | evw::Event::Pri)) != 0 &&
          (r.armed || (reg_mode(kPollTcp + i) & evw::PollMode::OneShot) == 0))
        r.queued = true;
      return;
    }
  }
  fail("urgent data sent on tcp %d never showed as POLLPRI", i);
}

void Model::drain_urgent(int i) {
  Tcp& t = tcps_[i];
  char c;
  (void)::recv(t.server.get(), &c, 1, MSG_OOB);
  // The urgent byte stays in the stream as a hole (and an older one may have
  // become ordinary data): read ordinary data too, so that nothing piles up.
  char buf[256];
  while (::recv(t.server.get(), buf, sizeof buf, 0) > 0) {
  }
  pollfd p{t.server.get(), POLLPRI, 0};
  if (::poll(&p, 1, 0) == 1 && (p.revents & POLLPRI)) fail("tcp %d still has POLLPRI after reading the urgent byte", i);
  t.urgent = false;
}

// ---------------------------------------------------------------------------
// Model helpers

int Model::natural(const Slot& s) const {
  switch (s.kind) {
    case Kind::Io: return evw::Event::Read;
    case Kind::Timer: return evw::Event::Timer;
    case Kind::Signal: return evw::Event::Signal;
    case Kind::Priority: return evw::Event::Pri;
    case Kind::Idle: return evw::Event::Idle;
    case Kind::Prepare: return evw::Event::Prepare;
    case Kind::Check: return evw::Event::Check;
    case Kind::Periodic: return evw::Event::Periodic;
    case Kind::Async: return evw::Event::Async;
    case Kind::Attr: return evw::Event::Pri;
    case Kind::Poll: return s.events;
  }
  return evw::Event::Custom;
}

int Model::io_ready(const Slot& s) const {
  // A socketpair end nobody writes back into is always writable.
  const int ready = (pairs_[s.source].unread > 0 ? evw::Event::Read : 0) | evw::Event::Write;
  return s.events & ready;
}

int Model::poll_fd(int f) const {
  if (f < kPollTcp) return pairs_[f].a.get();
  if (f < kPollHup) return tcps_[f - kPollTcp].server.get();
  if (f == kPollHup) return hup_.a.get();
  return closed_.get();
}

// What epoll finds on fd f, in evw bits. A TCP server side is never asked
// for Event::Read here: with urgent bytes in the stream (they stay as holes,
// an older one becomes ordinary data) its EPOLLIN is the stack's business.
int Model::fd_ready(int f) const {
  if (f < kPollTcp) return (pairs_[f].unread > 0 ? evw::Event::Read : 0) | evw::Event::Write;
  if (f < kPollHup) return (tcps_[f - kPollTcp].urgent ? evw::Event::Pri : 0) | evw::Event::Write;
  const int ready = evw::Event::Read | evw::Event::Write | evw::Event::RdHup;
  return f == kPollHup ? ready : ready | evw::Event::Hup;
}

// The events fd f is registered for: the union of its linked watchers'.
int Model::reg_union(int f) const {
  int events = 0;
  for (const Slot& s : slots_)
    if (linked(s) && table_fd(s) == f) events |= node_events(s);
  return events;
}

int Model::reg_count(int f) const {
  int n = 0;
  for (const Slot& s : slots_)
    if (linked(s) && table_fd(s) == f) ++n;
  return n;
}

// The mode of fd f's registration (all its watchers share it), -1 if none.
int Model::reg_mode(int f) const {
  for (const Slot& s : slots_)
    if (linked(s) && table_fd(s) == f) return node_mode(s);
  return -1;
}

// What the next drain of the loop's EPOLLPRI table reports for fd f (0: nothing).
int Model::reportable(int f) const {
  const int events = reg_union(f);
  if (events == 0) return 0;
  const int mode = reg_mode(f);
  const Reg& r = regs_[f];
  if ((mode & evw::PollMode::OneShot) != 0 && !r.armed) return 0;
  if ((mode & evw::PollMode::Edge) != 0 && !r.queued) return 0;
  return fd_ready(f) & (events | evw::Event::Hup | evw::Event::Error);
}

// start() of slot k on fd f in `mode` throws std::logic_error: another
// watcher of f in this loop has another mode.
bool Model::would_conflict(int k, int f, int mode) const {
  for (int o = 0; o < kSlots; ++o)
    if (o != k && linked(slots_[o]) && table_fd(slots_[o]) == f && node_mode(slots_[o]) != mode) return true;
  return false;
}

bool Model::start_conflicts(int k) const {
  const Slot& s = slots_[k];
  return s.used && s.attached && !s.active && on_table(s) && would_conflict(k, table_fd(s), node_mode(s));
}

// epoll_ctl ADD (fresh) or MOD of fd f: armed again, and queued if ready.
void Model::reg_arm(int f, bool fresh) {
  Reg& r = regs_[f];
  const bool ready = (fd_ready(f) & (reg_union(f) | evw::Event::Hup | evw::Event::Error)) != 0;
  r.armed = true;
  r.queued = fresh ? ready : (r.queued || ready);
}

// A watcher of fd f was linked: the table ADDs the fd or MODs it to the union.
void Model::reg_linked(int f) { reg_arm(f, reg_count(f) == 1); }

// A watcher of fd f was unlinked: the table DELs the fd with its last
// watcher, or MODs it if the union of events changed (then it is armed again).
void Model::reg_unlinked(int f, int old_union) {
  if (reg_count(f) == 0) regs_[f] = Reg{};
  else if (reg_union(f) != old_union) reg_arm(f, false);
}

bool Model::signal_watched(int signum) const {
  for (const Slot& s : slots_)
    if (s.used && s.attached && s.active && s.kind == Kind::Signal && s.signum == signum) return true;
  return false;
}

bool Model::any_active() const {
  for (const Slot& s : slots_)
    if (s.used && s.attached && s.active) return true;
  return false;
}

// run(Run::Once) blocks unless something is ready at the poll: keep it bounded.
bool Model::will_not_block() const {
  if (pipe_dirty_ || !any_active()) return true;
  for (const Slot& s : slots_) {
    if (!s.used || !s.attached || !s.active) continue;
    switch (s.kind) {
      case Kind::Idle: return true;
      case Kind::Io: if (io_ready(s)) return true; break;
      case Kind::Priority: case Kind::Poll: if (reportable(table_fd(s)) != 0) return true; break;
      case Kind::Timer: if (s.due) return true; break;
      case Kind::Periodic: if (s.mode == 0) return true; break;
      default: break;
    }
  }
  return false;
}

void Model::m_start(int k) {
  Slot& s = slots_[k];
  if (!s.attached || s.active) return;
  s.active = true;
  if (on_table(s)) reg_linked(table_fd(s));
  // Async::start re-sends a send() made while it was stopped (libev would drop it).
  if (s.kind == Kind::Async && s.sent) pipe_dirty_ = async_pending_ = true;
}

void Model::remove_expect(int k) {
  std::erase(before_pipe_, k);
  for (std::size_t i = 0; i < remaining_.size();)
    if (remaining_[i].slot == k) remaining_.erase(remaining_.begin() + static_cast<long>(i));
    else ++i;
}

// evw's Signal::stop() as the loop's last active watcher of a signal drops
// the loop's "received" flag of that signal.
void Model::signal_discard(const Slot& s) {
  if (!s.attached || !s.active || s.kind != Kind::Signal) return;
  for (const Slot& o : slots_)
    if (&o != &s && o.used && o.attached && o.active && o.kind == Kind::Signal && o.signum == s.signum)
      return;
  sig_flag_[s.signum] = false;
}

void Model::m_stop(int k) {
  Slot& s = slots_[k];
  if (!s.attached) return;
  signal_discard(s);
  cleared(s);
  const bool unlink = linked(s);
  const int old_union = unlink ? reg_union(table_fd(s)) : 0;
  s.active = false;
  s.pending = 0;
  if (unlink) reg_unlinked(table_fd(s), old_union);
  if (in_run_) remove_expect(k);
}

void Model::m_destroy(int k) {
  if (in_run_) remove_expect(k);
  Slot& s = slots_[k];
  signal_discard(s);
  cleared(s);
  const bool unlink = linked(s);
  const int old_union = unlink ? reg_union(table_fd(s)) : 0;
  s.used = false;
  s.act = Act::None;
  if (unlink) reg_unlinked(table_fd(s), old_union);
}

// set_priority() to another priority stops and restarts an active watcher:
// a Poll or Priority watcher is unlinked and linked again (epoll_ctl).
void Model::m_set_priority(int k, int pri) {
  Slot& s = slots_[k];
  const bool restart = pri != s.priority && linked(s);
  s.priority = pri;
  if (!restart) return;
  const int f = table_fd(s), old_union = reg_union(f);
  s.active = false;
  reg_unlinked(f, old_union);
  s.active = true;
  reg_linked(f);
}

// Poll::rearm(): an EPOLL_CTL_MOD of an active one-shot watcher's fd.
void Model::m_rearm(int k) {
  const Slot& s = slots_[k];
  if (s.kind != Kind::Poll || !linked(s) || (s.pmode & evw::PollMode::OneShot) == 0) return;
  ++rearms_;
  reg_arm(table_fd(s), false);
}

void Model::m_feed(int k, int revents) {
  Slot& s = slots_[k];
  if (!in_run_) {
    s.pending |= revents;
    return;
  }
  for (Expect& e : remaining_)
    if (e.slot == k) {
      e.revents |= revents;  // still in libev's queue: ev_feed_event merges
      return;
    }
  remaining_.push_back({k, revents});
}

void Model::m_clear(int k) {
  Slot& s = slots_[k];
  cleared(s);
  s.pending = 0;
  if (in_run_) remove_expect(k);
}

// ---------------------------------------------------------------------------
// The real side

template <class W>
auto Model::callback(int k, std::uint64_t serial) {
  return [this, k, serial](W& w, int revents) { on_event(w, k, serial, revents); };
}

template <class W, class... Args>
W& Model::construct(Slot& s, int k, bool loop_owned, Args&&... args) {
  W* w;
  if (loop_owned) {
    w = &loop_->add<W>(std::forward<Args>(args)..., callback<W>(k, s.serial));
  } else {
    auto owned = std::make_unique<W>(*loop_, std::forward<Args>(args)..., callback<W>(k, s.serial));
    w = owned.get();
    s.owner = std::move(owned);
  }
  s.w = w;
  return *w;
}

void Model::destroy_real(int k) {
  Slot& s = slots_[k];
  if (s.owner) s.owner.reset();
  else if (s.w != nullptr) loop_->remove(*s.w);
  s.w = nullptr;
}

template <class F>
bool Model::expect_throw(const char* what, F&& f) {
  try {
    f();
  } catch (const std::logic_error&) {
    return true;
  } catch (const std::exception& e) {
    fail("%s threw %s instead of std::logic_error", what, e.what());
    return true;
  }
  fail("%s on a detached watcher did not throw std::logic_error", what);
  return false;
}

void Model::on_event(WatcherBase& w, int k, std::uint64_t serial, int revents) {
  Slot& s = slots_[k];
  if (!s.used || s.serial != serial || s.w != &w) {
    fail("a callback of slot %d (#%" PRIu64 ") reached a watcher that is not it", k, serial);
    return;
  }
  if (!in_run_) {
    fail("slot %d's callback ran outside run()", k);
    return;
  }
  ++s.real_calls;
  Fired f{k, serial, revents, w.priority(), s.act, s.target, s.target_serial, s.arg};
  s.act = Act::None;  // once per run
  const bool phase2 = loop_->iteration() != run_iteration_;
  Slot* t = nullptr;
  switch (f.act) {
    case Act::StopOther: case Act::DestroyOther: case Act::StartOther: case Act::FeedOther:
    case Act::ClearOther: case Act::PriorityOther: {
      Slot& cand = slots_[f.target];
      if (cand.w == nullptr || cand.serial != f.target_serial || !cand.attached) {
        f.act = Act::Skipped;
        break;
      }
      // libev delivers Priority and Poll events through an internal max_priority watcher
      // (the EPOLLPRI drain), and Signal and Async events through another
      // (the wakeup pipe). A max_priority callback of the poll phase may run before
      // them (libev runs the last queued first within a priority), and then
      // starting, stopping, feeding, clearing or re-prioritising such a
      // watcher has effects that depend on that order, which the model cannot
      // see: e.g. re-prioritising the last Priority watcher stops and restarts
      // the drain, so its event comes one iteration later. A callback fed by
      // the same internal watcher runs after it: that case is kept.
      // For an edge-triggered or one-shot Poll every change of its fd's
      // registration (start, stop, set_priority: an epoll_ctl) arms or queues
      // it again, so whether the drain of this iteration sees that depends on
      // the order too: then all of them are skipped.
      const bool drained = cand.kind == Kind::Priority || cand.kind == Kind::Poll;
      const bool triggered = cand.kind == Kind::Poll && cand.pmode != evw::PollMode::Level;
      const bool piped = cand.kind == Kind::Signal || cand.kind == Kind::Async;
      const bool acting_drained = s.kind == Kind::Priority || s.kind == Kind::Poll;
      const bool acting_piped = s.kind == Kind::Signal || s.kind == Kind::Async;
      // (Stopping or destroying a Priority watcher then is fine: it is not
      // delivered either way. A Signal or Async one would keep libev's flag.)
      // Strict mode (EVW_MODEL_STRICT, default 1) keeps set_priority() on a Priority watcher there:
      // its event must then come in this iteration (true once the drain stays
      // started while the last Priority watcher is stopped and restarted).
      const bool removal = (f.act == Act::StopOther || f.act == Act::DestroyOther) && !triggered;
      const bool strict = strict_ && f.act == Act::PriorityOther && !triggered;
      if (phase2 && f.priority == evw::max_priority &&
          ((drained && !acting_drained && !removal && !strict) || (piped && !acting_piped))) {
        f.act = Act::Skipped;
        break;
      }
      t = &cand;
      break;
    }
    default: break;
  }
  log_.push_back(f);
  const std::size_t me = log_.size() - 1;
  try {
    switch (f.act) {
      case Act::StopSelf: w.stop(); break;
      case Act::DestroySelf: destroy_real(k); break;  // touch nothing of w after this
      case Act::StopOther: t->w->stop(); break;
      case Act::DestroyOther: destroy_real(f.target); break;
      case Act::StartOther: t->w->start(); break;
      case Act::FeedOther: t->w->feed(evw::Event::Custom); break;
      case Act::ClearOther: {
        const int got = t->w->clear_pending();
        log_.back().arg = got;  // checked against the model
        break;
      }
      case Act::PriorityOther: t->w->set_priority(f.arg); break;
      case Act::Throw: throw ModelThrow{k, serial};
      case Act::RearmSelf: static_cast<evw::Poll&>(w).rearm(); break;
      default: break;
    }
  } catch (const ModelThrow&) {
    throw;
  } catch (const std::logic_error& e) {
    // Another PollMode on the fd: checked against the model in check_run.
    if (f.act == Act::StartOther && on_table(*t)) log_[me].threw = true;
    else fail("in-callback %s on slot %d threw: %s", act_name(f.act), f.target, e.what());
  } catch (const std::exception& e) {
    fail("in-callback %s on slot %d threw: %s", act_name(f.act), f.target, e.what());
  }
}

// ---------------------------------------------------------------------------
// Operations

void Model::op_create(int k) {
  Slot& s = slots_[k];
  s = Slot{};
  s.used = true;
  do s.kind = static_cast<Kind>(below(kKinds));
  while (s.kind == Kind::Attr && !attr_files_);
  s.serial = ++next_serial_;
  s.loop_owned = chance(0.25);
  s.attached = true;
  trace("create", k, static_cast<long>(s.kind), s.loop_owned);
  const bool lo = s.loop_owned;
  switch (s.kind) {
    case Kind::Io: {
      s.source = static_cast<int>(below(kPairs));
      static const int choices[] = {evw::Event::Read, evw::Event::Read, evw::Event::Read, evw::Event::Write, evw::Event::Read | evw::Event::Write};
      s.events = choices[below(5)];
      construct<evw::Io>(s, k, lo, pairs_[s.source].a.get(), s.events);
      break;
    }
    case Kind::Timer:
      s.after = chance(0.5) ? -1.0 : kFar;
      s.repeat = chance(0.5) ? 0.0 : kFar;
      s.due = s.after < 0;
      construct<evw::Timer>(s, k, lo, s.after, s.repeat);
      break;
    case Kind::Signal:
      s.signum = kSignals[below(2)];
      construct<evw::Signal>(s, k, lo, s.signum);
      break;
    case Kind::Priority:
      s.source = static_cast<int>(below(kTcp));
      construct<evw::Priority>(s, k, lo, tcps_[s.source].server.get());
      break;
    case Kind::Idle: construct<evw::Idle>(s, k, lo); break;
    case Kind::Prepare: construct<evw::Prepare>(s, k, lo); break;
    case Kind::Check: construct<evw::Check>(s, k, lo); break;
    case Kind::Periodic: {
      s.mode = static_cast<int>(below(3));
      double offset = 0, interval = 0;
      if (s.mode == 1) offset = static_cast<double>(std::time(nullptr)) + 1e7;
      if (s.mode == 2) offset = 0.5, interval = kFarInterval;
      s.offset = offset;
      s.interval = interval;
      construct<evw::Periodic>(s, k, lo, offset, interval);
      break;
    }
    case Kind::Async: construct<evw::Async>(s, k, lo); break;
    case Kind::Attr:
      s.source = static_cast<int>(below(2));
      construct<evw::Attr>(s, k, lo, attr_paths_[s.source]);
      break;
    case Kind::Poll:
      choose_poll(s.source, s.events, s.pmode);
      construct<evw::Poll>(s, k, lo, poll_fd(s.source), s.events, s.pmode);
      break;
  }
  if (chance(0.3)) {
    s.priority = static_cast<int>(below(5)) - 2;
    s.w->set_priority(s.priority);
  }
  if (chance(0.6)) start_checked(k);
}

// A Poll's fd, events and mode. Socketpairs: any mode; the TCP server sides
// (beside Priority watchers, which are level-triggered): level or one-shot,
// no edge (an edge needs a wakeup, and what else wakes a TCP socket, like
// ACKs, retransmissions or window updates, is the stack's business); the
// hang-up and closed pairs: any mode, always ready.
void Model::choose_poll(int& source, int& events, int& pmode) {
  using evw::Event;
  using evw::PollMode;
  const auto r = below(10);
  if (r < 6) {
    static const int choices[] = {Event::Read, Event::Read, Event::Read, Event::Write, Event::Read | Event::Write,
                                 Event::Read | Event::RdHup};
    static const int modes[] = {PollMode::Level, PollMode::Level, PollMode::OneShot, PollMode::Edge,
                                PollMode::Edge | PollMode::OneShot};
    source = static_cast<int>(below(kPairs));
    events = choices[below(6)];
    pmode = modes[below(5)];
  } else if (r < 9) {
    static const int choices[] = {Event::Pri, Event::Pri, Event::Pri | Event::Write};
    source = kPollTcp + static_cast<int>(below(kTcp));
    events = choices[below(3)];
    pmode = chance(0.75) ? PollMode::Level : PollMode::OneShot;
  } else {
    static const int choices[] = {Event::RdHup, Event::Read | Event::RdHup, Event::Write | Event::RdHup};
    static const int modes[] = {PollMode::Level, PollMode::OneShot, PollMode::Edge, PollMode::Edge | PollMode::OneShot};
    source = chance(0.5) ? kPollHup : kPollClosed;
    events = choices[below(3)];
    pmode = modes[below(4)];
  }
}

// start(): throws std::logic_error for a Poll or Priority watcher whose fd
// is watched in the loop with another PollMode, and leaves it stopped.
void Model::start_checked(int k) {
  Slot& s = slots_[k];
  const bool conflict = start_conflicts(k);
  const bool threw = throws_logic_error([&] { s.w->start(); });
  if (threw != conflict)
    return fail("start() of slot %d (%s, fd %d mode %d) %s", k, kind_name(s.kind), table_fd(s), node_mode(s),
                mode_verdict(threw));
  if (threw) ++mode_conflicts_;
  else m_start(k);
}

void Model::op_destroy(int k) {
  trace("destroy", k);
  destroy_real(k);
  m_destroy(k);
}

void Model::op_start(int k) {
  Slot& s = slots_[k];
  trace("start", k);
  if (!s.attached) {
    expect_throw("start", [&] { s.w->start(); });
    return;
  }
  start_checked(k);
}

void Model::op_stop(int k) {
  trace("stop", k);
  slots_[k].w->stop();
  m_stop(k);
}

void Model::op_set(int k) {
  Slot& s = slots_[k];
  if (s.kind == Kind::Poll && chance(0.03)) {
    // Arguments check() refuses, before anything changes: no events, or
    // PollMode::Exclusive with OneShot.
    const bool no_events = chance(0.5);
    const int events = no_events ? 0 : evw::Event::Read;
    const int mode = no_events ? evw::PollMode::Level : evw::PollMode::Exclusive | evw::PollMode::OneShot;
    trace("set!", k, events, mode);
    try {
      static_cast<evw::Poll*>(s.w)->set(poll_fd(s.source), events, mode);
      fail("Poll::set(fd, %d, %d) did not throw std::invalid_argument", events, mode);
    } catch (const std::invalid_argument&) {
    }
    return;
  }
  if (s.kind != Kind::Idle && s.kind != Kind::Prepare && s.kind != Kind::Check && s.kind != Kind::Async)
    cleared(s);  // the freeze guard takes the pending event and feeds it again
  switch (s.kind) {
    case Kind::Io: {
      const int source = static_cast<int>(below(kPairs));
      const int events = chance(0.8) ? evw::Event::Read : (chance(0.5) ? evw::Event::Write : evw::Event::Read | evw::Event::Write);
      trace("set", k, source, events);
      static_cast<evw::Io*>(s.w)->set(pairs_[source].a.get(), events);
      s.source = source;
      s.events = events;
      break;
    }
    case Kind::Timer: {
      const double after = chance(0.5) ? -1.0 : kFar;
      const double repeat = chance(0.5) ? 0.0 : kFar;
      trace("set", k, static_cast<long>(after), static_cast<long>(repeat));
      static_cast<evw::Timer*>(s.w)->set(after, repeat);
      s.after = after;
      s.repeat = repeat;
      s.due = after < 0;
      break;
    }
    case Kind::Signal: {
      const int signum = kSignals[below(2)];
      trace("set", k, signum);
      // As the last active watcher of its signal, set() to another signal
      // drops the loop's "received" flag of the old one, as stop() does.
      if (signum != s.signum && s.attached && s.active) signal_discard(s);
      static_cast<evw::Signal*>(s.w)->set(signum);
      s.signum = signum;
      break;
    }
    case Kind::Priority: {
      const int source = static_cast<int>(below(kTcp));
      trace("set", k, source);
      table_set(k, source, s.events, s.pmode, [&] { static_cast<evw::Priority*>(s.w)->set(tcps_[source].server.get()); });
      break;
    }
    case Kind::Poll: {
      int source, events, pmode;
      choose_poll(source, events, pmode);
      trace("set", k, source, events * 16 + pmode);
      table_set(k, source, events, pmode,
                [&] { static_cast<evw::Poll*>(s.w)->set(poll_fd(source), events, pmode); });
      break;
    }
    case Kind::Periodic: {
      const int mode = static_cast<int>(below(3));
      double offset = 0, interval = 0;
      if (mode == 1) offset = static_cast<double>(std::time(nullptr)) + 1e7;
      if (mode == 2) offset = 0.5, interval = kFarInterval;
      trace("set", k, mode);
      static_cast<evw::Periodic*>(s.w)->set(offset, interval);
      s.mode = mode;
      s.offset = offset;
      s.interval = interval;
      break;
    }
    case Kind::Attr: {
      const int source = static_cast<int>(below(2));
      trace("set", k, source);
      static_cast<evw::Attr*>(s.w)->set(attr_paths_[source]);
      s.source = source;
      break;
    }
    default:
      op_set_priority(k);
      break;
  }
}

// set() of a Poll or Priority watcher: stopped, changed, started again if
// it was active; that start throws std::logic_error if the new fd is watched
// in the loop with another mode: the watcher stays stopped, and the event the
// set() took to keep is lost with it.
template <class F>
void Model::table_set(int k, int source, int events, int pmode, F&& apply) {
  Slot& s = slots_[k];
  const bool was = linked(s);
  if (was) {
    const int f = table_fd(s), old_union = reg_union(f);
    s.active = false;
    reg_unlinked(f, old_union);
  }
  s.source = source;
  s.events = events;
  s.pmode = pmode;
  const bool conflict = was && would_conflict(k, table_fd(s), node_mode(s));
  const bool threw = throws_logic_error(apply);
  if (threw != conflict)
    return fail("set() of slot %d (%s, to fd %d mode %d) %s", k, kind_name(s.kind), table_fd(s), node_mode(s),
                mode_verdict(threw));
  if (!was) return;
  if (threw) {
    ++mode_conflicts_;
    s.pending = 0;
  } else {
    s.active = true;
    reg_linked(table_fd(s));
  }
}

void Model::op_set_priority(int k) {
  Slot& s = slots_[k];
  if (chance(0.05)) {
    const int bad = chance(0.5) ? evw::max_priority + 1 : evw::min_priority - 1;
    trace("set_priority!", k, bad);
    try {
      s.w->set_priority(bad);
      fail("set_priority(%d) did not throw std::out_of_range", bad);
    } catch (const std::out_of_range&) {
    }
    return;
  }
  const int pri = static_cast<int>(below(5)) - 2;
  trace("set_priority", k, pri);
  if (pri != s.priority) cleared(s);
  s.w->set_priority(pri);
  m_set_priority(k, pri);
}

void Model::op_feed(int k) {
  Slot& s = slots_[k];
  const int choice = static_cast<int>(below(3));
  const int revents = choice == 0 ? evw::Event::Custom : choice == 1 ? natural(s) : natural(s) | evw::Event::Custom;
  trace("feed", k, revents);
  if (!s.attached) {
    expect_throw("feed", [&] { s.w->feed(revents); });
    return;
  }
  s.w->feed(revents);
  m_feed(k, revents);
}

void Model::op_clear_pending(int k) {
  Slot& s = slots_[k];
  trace("clear_pending", k);
  const int got = s.w->clear_pending();
  if (got != s.pending) fail("clear_pending() on slot %d returned 0x%x, the model had 0x%x", k, got, s.pending);
  m_clear(k);
}

void Model::op_again(int k) {
  Slot& s = slots_[k];
  if (s.kind == Kind::Poll && chance(0.7)) {
    // Nothing for a stopped, detached or not one-shot watcher.
    trace("rearm", k);
    static_cast<evw::Poll*>(s.w)->rearm();
    m_rearm(k);
    return;
  }
  if (s.kind != Kind::Timer && s.kind != Kind::Periodic) return op_start(k);
  trace("again", k);
  if (!s.attached) {
    expect_throw("again", [&] {
      if (s.kind == Kind::Timer) static_cast<evw::Timer*>(s.w)->again();
      else static_cast<evw::Periodic*>(s.w)->again();
    });
    return;
  }
  cleared(s);
  s.pending = 0;  // both drop a pending expiry, as libev does
  if (s.kind == Kind::Timer) {
    static_cast<evw::Timer*>(s.w)->again();
    if (s.active) {
      if (s.repeat > 0) s.due = false;  // restarted `repeat` from now
      else s.active = false;
    } else if (s.repeat > 0) {
      s.active = true;
      s.due = false;
    }
  } else {
    static_cast<evw::Periodic*>(s.w)->again();  // stop + start
    s.active = true;
  }
}

void Model::op_make_ready() {
  switch (below(4)) {
    case 0: {
      const int i = static_cast<int>(below(kPairs));
      trace("write", -1, i);
      write_pair(i);
      break;
    }
    case 1: {
      const int i = static_cast<int>(below(kTcp));
      trace("urgent", -1, i);
      send_urgent(i);
      break;
    }
    case 2: {
      const int signum = kSignals[below(2)];
      trace("raise", -1, signum);
      // Unwatched, the signal meets SIG_IGN (set for the test, and restored by
      // evw when the last watcher stopped); watched, libev's handler records it.
      if (signal_watched(signum)) {
        sig_flag_[signum] = true;
        sig_pending_ = pipe_dirty_ = true;
      }
      ::raise(signum);
      break;
    }
    default: {
      int candidates[kSlots], n = 0;
      for (int k = 0; k < kSlots; ++k)
        if (slots_[k].used && slots_[k].kind == Kind::Async) candidates[n++] = k;
      if (n == 0) return;
      const int k = candidates[below(static_cast<std::uint64_t>(n))];
      Slot& s = slots_[k];
      trace("send", k);
      auto* a = static_cast<evw::Async*>(s.w);
      if (!s.attached) {
        expect_throw("send", [&] { a->send(); });
        return;
      }
      a->send();
      s.sent = true;
      async_pending_ = pipe_dirty_ = true;
      break;
    }
  }
}

void Model::op_drain() {
  if (chance(0.5)) {
    const int i = static_cast<int>(below(kPairs));
    trace("drain", -1, i);
    drain_pair(i);
  } else {
    const int i = static_cast<int>(below(kTcp));
    trace("drain-urgent", -1, i);
    drain_urgent(i);
  }
}

// 1-8 functions posted from the poster thread. Each must run once, on this
// thread, inside run(), after the ones posted before it; the post dirties the
// wakeup pipe as an Async send does.
void Model::op_post() {
  const int n = 1 + static_cast<int>(below(8));
  trace("post", -1, n);
  const evw::LoopHandle handle = loop_->handle();
  const std::uint64_t first = posted_;
  bool refused = false;
  poster_.run([&] {
    for (int i = 0; i < n; ++i)
      if (!handle.post([this, seq = first + i, gone = Gone(&posts_gone_)] {
            if (!in_run_) fail("posted function %" PRIu64 " ran outside run()", seq);
            if (seq != posts_ran_) fail("posted function %" PRIu64 " ran as number %" PRIu64, seq, posts_ran_);
            ++posts_ran_;
          }))
        refused = true;
  });
  if (refused) return fail("a post to a live loop was refused");
  posted_ += static_cast<std::uint64_t>(n);
  posts_total_ += static_cast<std::uint64_t>(n);
  pipe_dirty_ = true;
}

// After a run(): every post ran (and was destroyed), unless a callback threw
// before the posts' turn; then the rest waits for the next run(), whose pipe
// is dirty again.
void Model::check_posts(bool threw) {
  if (posts_ran_ > posted_) return fail("%" PRIu64 " posts ran, %" PRIu64 " were posted", posts_ran_, posted_);
  if (!threw && posts_ran_ != posted_)
    return fail("run() returned with %" PRIu64 " of %" PRIu64 " posts run", posts_ran_, posted_);
  if (posts_gone_ != posts_ran_)
    return fail("%" PRIu64 " posted functions destroyed, %" PRIu64 " ran", posts_gone_, posts_ran_);
  if (posts_ran_ < posted_) pipe_dirty_ = true;
}

void Model::op_destroy_loop() {
  trace("destroy-loop", -1);
  ++loops_destroyed_;
  // Loop-owned watchers die with the loop; user-owned ones become detached.
  // Every active Signal watcher is stopped: the last of each signal clears
  // its flag.
  for (const Slot& s : slots_)
    if (s.used && s.attached && s.active && s.kind == Kind::Signal) sig_flag_[s.signum] = false;
  for (Slot& s : slots_)
    if (s.used && s.loop_owned) s.w = nullptr;
  loop_.reset();
  // Posts still queued are destroyed, not run.
  if (posts_gone_ != posted_)
    fail("the loop's destruction left %" PRIu64 " of %" PRIu64 " posted functions alive", posted_ - posts_gone_, posted_);
  posted_ = posts_ran_ = posts_gone_ = 0;
  for (int k = 0; k < kSlots; ++k) {
    Slot& s = slots_[k];
    if (!s.used) continue;
    if (s.loop_owned) {
      m_destroy(k);
      continue;
    }
    s.attached = false;
    s.active = false;
    s.pending = 0;
  }
  pipe_dirty_ = sig_pending_ = async_pending_ = false;
  dummies_ = 0;
  regs_ = {};  // the loop's EPOLLPRI table went with it
  loop_ = std::make_unique<evw::Loop>();
}

void Model::arm_actions() {
  if (!chance(0.35)) return;
  const int n = 1 + static_cast<int>(below(3));
  for (int i = 0; i < n; ++i) {
    const int k = static_cast<int>(below(kSlots));
    Slot& s = slots_[k];
    if (!s.used || !s.attached) continue;
    static const Act acts[] = {Act::StopSelf,  Act::StopSelf,     Act::DestroySelf, Act::DestroySelf,
                               Act::StopOther, Act::StopOther,    Act::DestroyOther, Act::DestroyOther,
                               Act::StartOther, Act::StartOther,  Act::FeedOther,  Act::FeedOther,
                               Act::ClearOther, Act::PriorityOther, Act::PriorityOther, Act::Throw,
                               Act::RearmSelf, Act::RearmSelf};
    Act a = acts[below(sizeof acts / sizeof acts[0])];
    if (a == Act::RearmSelf && s.kind != Kind::Poll) a = Act::None;
    s.act = a;
    s.target = -1;
    if (a != Act::None && a != Act::StopSelf && a != Act::DestroySelf && a != Act::Throw && a != Act::RearmSelf) {
      const int t = static_cast<int>(below(kSlots));
      if (t == k || !slots_[t].used || !slots_[t].attached) {
        s.act = Act::None;
        continue;
      }
      s.target = t;
      s.target_serial = slots_[t].serial;
      s.arg = static_cast<int>(below(5)) - 2;
    }
  }
}

void Model::op_run() {
  arm_actions();
  bool armed = false;
  for (const Slot& s : slots_)
    if (s.used && s.act != Act::None) armed = true;
  // Run::Once only when it cannot block (an armed action could change that).
  const int flags = !armed && will_not_block() && chance(0.5) ? evw::Run::Once : evw::Run::NoWait;
  trace(flags == evw::Run::Once ? "run(Run::Once)" : "run(Run::NoWait)", -1, armed);
  if (flags == evw::Run::Once) ++once_runs_;
  // Phase 0: what is pending now is delivered first.
  remaining_.clear();
  for (int k = 0; k < kSlots; ++k) {
    Slot& s = slots_[k];
    if (s.used && s.attached && s.pending != 0) {
      remaining_.push_back({k, s.pending});
      s.pending = 0;
    }
  }
  log_.clear();
  const unsigned iter_before = loop_->iteration();
  run_iteration_ = iter_before;
  in_run_ = true;
  bool threw = false, returned = false;
  ModelThrow thrown{-1, 0};
  try {
    returned = loop_->run(flags);
  } catch (const ModelThrow& e) {
    threw = true;
    thrown = e;
  } catch (const std::exception& e) {
    in_run_ = false;
    fail("run() threw %s", e.what());
    return;
  }
  ++runs_;
  deliveries_ += log_.size();
  for (Slot& s : slots_) s.act = Act::None;
  check_run(threw, thrown, returned, iter_before);
  check_posts(threw);
  in_run_ = false;
  dummies_ = 0;  // the dispatch consumed them
}

// ---------------------------------------------------------------------------
// Checking a run: replay the log of callbacks against the model, phase by phase.

void Model::begin_phase(int phase) {
  phase_ = phase;
  remaining_.clear();
  if (phase == 1) {
    for (int k = 0; k < kSlots; ++k) {
      const Slot& s = slots_[k];
      if (s.used && s.attached && s.active && s.kind == Kind::Prepare) remaining_.push_back({k, evw::Event::Prepare});
    }
  } else if (phase == 2) {
    compute_phase2();
  }
}

void Model::compute_phase2() {
  bool internal_maxpri = false;  // libev's wakeup pipe or the EPOLLPRI drain is pending
  // evw's handler sent the wakeup for a watched signal; a post sent it too
  // (and it was sent again for the posts a throw left queued).
  wake_due_ = pipe_dirty_ && posts_ran_ < posted_;  // a throw before it leaves posts to send for
  pipe_due_ = pipe_dirty_;
  pipe_ran_ = false;
  if (pipe_dirty_) {
    pipe_dirty_ = false;
    internal_maxpri = true;
    if (sig_pending_) {
      sig_pending_ = false;
      for (int signum : kSignals) {
        if (!sig_flag_[signum] || !signal_watched(signum)) continue;  // no watcher: the flag stays
        sig_flag_[signum] = false;
        for (int k = 0; k < kSlots; ++k) {
          const Slot& s = slots_[k];
          if (s.used && s.attached && s.active && s.kind == Kind::Signal && s.signum == signum)
            remaining_.push_back({k, evw::Event::Signal});
        }
      }
    }
    if (async_pending_) {
      async_pending_ = false;
      for (int k = 0; k < kSlots; ++k) {
        Slot& s = slots_[k];
        if (s.used && s.attached && s.active && s.kind == Kind::Async && s.sent) {
          s.sent = false;
          remaining_.push_back({k, evw::Event::Async});
        }
      }
    }
  }
  // The EPOLLPRI drain: what the kernel reports for each registered fd (a
  // one-shot registration is disarmed by it; an edge's queued wakeup is
  // consumed, reported or not: the poll drops it when nothing is ready).
  int drained[kPollFds] = {};
  for (int f = 0; f < kPollFds; ++f) {
    drained[f] = reportable(f);
    if (drained[f] != 0) {
      internal_maxpri = true;
      if ((reg_mode(f) & evw::PollMode::OneShot) != 0) regs_[f].armed = false;
    }
    regs_[f].queued = false;
  }
  int max_pending = evw::min_priority - 1;
  for (int k = 0; k < kSlots; ++k) {
    Slot& s = slots_[k];
    if (!s.used || !s.attached || !s.active) continue;
    int revents = 0;
    switch (s.kind) {
      case Kind::Io: revents = io_ready(s); break;
      case Kind::Priority: case Kind::Poll:
        // Each watcher of the fd gets its own bits (and Hup, Error: none here).
        revents = drained[table_fd(s)] & (node_events(s) | evw::Event::Hup | evw::Event::Error);
        break;
      case Kind::Timer:
        if (s.due) {
          revents = evw::Event::Timer;
          if (s.repeat > 0) s.due = false;  // rescheduled `repeat` ahead
          else s.active = false;            // libev stops a one-shot before calling it
        }
        break;
      case Kind::Periodic:
        if (s.mode == 0) {
          revents = evw::Event::Periodic;
          s.active = false;
        }
        break;
      default: break;
    }
    if (revents == 0) continue;
    remaining_.push_back({k, revents});
    if (!on_table(s) && s.priority > max_pending) max_pending = s.priority;
  }
  // Idle: only the watchers of the highest idle priority, and only if nothing
  // of that priority or higher is pending.
  int idle_pri = evw::min_priority - 1;
  for (const Slot& s : slots_)
    if (s.used && s.attached && s.active && s.kind == Kind::Idle && s.priority > idle_pri) idle_pri = s.priority;
  if (idle_pri >= evw::min_priority && !internal_maxpri && max_pending < idle_pri) {
    for (int k = 0; k < kSlots; ++k) {
      const Slot& s = slots_[k];
      if (s.used && s.attached && s.active && s.kind == Kind::Idle && s.priority == idle_pri)
        remaining_.push_back({k, evw::Event::Idle});
    }
  }
  for (int k = 0; k < kSlots; ++k) {
    const Slot& s = slots_[k];
    if (s.used && s.attached && s.active && s.kind == Kind::Check) remaining_.push_back({k, evw::Event::Check});
  }
  // Queued after libev's pipe watcher: the timers, periodics and checks.
  before_pipe_.clear();
  for (const Expect& e : remaining_) {
    const Kind kind = slots_[e.slot].kind;
    if ((kind == Kind::Timer || kind == Kind::Periodic || kind == Kind::Check) &&
        slots_[e.slot].priority == evw::max_priority)
      before_pipe_.push_back(e.slot);
  }
}

// Phase 2, a callback of slot k is about to run: true if it runs before
// libev's pipe watcher (see pipe_due_).
bool Model::runs_before_pipe(int k) {
  if (!pipe_due_ || pipe_ran_) return false;
  const auto it = std::find(before_pipe_.begin(), before_pipe_.end(), k);
  if (it == before_pipe_.end()) {
    pipe_ran_ = true;  // the stack above the pipe watcher is empty: it ran
    return false;
  }
  before_pipe_.erase(it);
  return true;
}

void Model::check_run(bool threw, const ModelThrow& thrown, bool returned, unsigned iter_before) {
  phase_ = 0;  // remaining_ holds phase 0
  callback_threw_ = false;
  const auto advance = [&] {
    while (remaining_.empty() && phase_ < 2) begin_phase(phase_ + 1);
  };
  for (const Fired& f : log_) {
    if (failed()) return;
    if (callback_threw_) return fail("slot %d was called after a callback threw in the same run", f.slot);
    advance();
    std::size_t i = 0;
    while (i < remaining_.size() && remaining_[i].slot != f.slot) ++i;
    if (i == remaining_.size())
      return fail("unexpected delivery in phase %d: slot %d (%s) revents 0x%x", phase_, f.slot,
                  kind_name(slots_[f.slot].kind), f.revents);
    Slot& s = slots_[f.slot];
    if (f.revents != remaining_[i].revents)
      return fail("slot %d (%s) got revents 0x%x, expected 0x%x", f.slot, kind_name(s.kind), f.revents,
                  remaining_[i].revents);
    if (f.priority != s.priority)
      return fail("slot %d ran at priority %d, the model has %d", f.slot, f.priority, s.priority);
    for (const Expect& e : remaining_)
      if (slots_[e.slot].priority > f.priority)
        return fail("slot %d (priority %d) ran before slot %d (%s, priority %d) of the same phase %d",
                    f.slot, f.priority, e.slot, kind_name(slots_[e.slot].kind), slots_[e.slot].priority, phase_);
    remaining_.erase(remaining_.begin() + static_cast<long>(i));
    const bool before_pipe = phase_ == 2 && runs_before_pipe(f.slot);
    const auto queued = [&](int k) {
      return std::any_of(remaining_.begin(), remaining_.end(), [k](const Expect& e) { return e.slot == k; });
    };
    ++s.calls;
    ++by_kind_[static_cast<int>(s.kind)];
    if (s.kind == Kind::Poll) ++poll_by_mode_[s.pmode & 3];
    ++by_phase_[phase_];
    if (f.act != Act::None && f.act != Act::Skipped) ++acts_;
    if (f.act == Act::Throw) ++throws_;
    switch (f.act) {
      case Act::StopSelf: m_stop(f.slot); break;
      case Act::DestroySelf: m_destroy(f.slot); break;
      case Act::StopOther: m_stop(f.target); break;
      case Act::DestroyOther: m_destroy(f.target); break;
      case Act::StartOther:
        if (f.threw != start_conflicts(f.target))
          return fail("start() of slot %d in a callback %s", f.target,
                      f.threw ? "threw std::logic_error, the model sees no other mode on the fd"
                              : "did not throw, though the fd is watched with another mode");
        if (f.threw) ++mode_conflicts_;
        else if (Slot& t = slots_[f.target];
                 before_pipe && t.kind == Kind::Async && t.attached && !t.active && t.sent) {
          // Async::start sends again a send() made while it was stopped: the
          // pipe watcher, still to run in this iteration, takes it now.
          t.sent = false;
          m_start(f.target);
          m_feed(f.target, evw::Event::Async);
        } else {
          m_start(f.target);
        }
        break;
      case Act::FeedOther:
        // Not queued yet: ev_feed_event puts it on top of libev's stack.
        if (before_pipe && !queued(f.target) && slots_[f.target].priority == evw::max_priority)
          before_pipe_.push_back(f.target);
        m_feed(f.target, evw::Event::Custom);
        break;
      case Act::ClearOther: {
        int expected = 0;
        for (const Expect& e : remaining_)
          if (e.slot == f.target) expected = e.revents;
        if (f.arg != expected)
          return fail("clear_pending() of slot %d in a callback returned 0x%x, the model had 0x%x", f.target,
                      f.arg, expected);
        m_clear(f.target);
        break;
      }
      case Act::PriorityOther:
        // A pending event is taken and fed again at the new priority.
        if (before_pipe && queued(f.target) && f.arg != slots_[f.target].priority) {
          std::erase(before_pipe_, f.target);
          if (f.arg == evw::max_priority) before_pipe_.push_back(f.target);
        }
        m_set_priority(f.target, f.arg);
        break;
      case Act::Throw:
        callback_threw_ = true;
        if (before_pipe && wake_due_) {
          pipe_dirty_ = true;  // the wakeup callback sends itself again
          ++wake_resends_;
        }
        break;
      case Act::RearmSelf: m_rearm(f.slot); break;
      default: break;
    }
  }
  if (failed()) return;
  if (callback_threw_) {
    // The rest of the phase is deferred and fed back: pending now. A failure
    // before the poll still lets libev run (and evw defer) the Prepare watchers.
    std::vector<Expect> deferred = remaining_;
    if (phase_ == 0) {
      begin_phase(1);
      deferred.insert(deferred.end(), remaining_.begin(), remaining_.end());
    }
    for (const Expect& e : deferred) slots_[e.slot].pending |= e.revents;
    remaining_.clear();
    if (!threw) return fail("a callback threw but run() returned");
    const Fired* thrower = nullptr;
    for (const Fired& f : log_)
      if (f.act == Act::Throw) thrower = &f;
    if (thrower == nullptr || thrown.slot != thrower->slot || thrown.serial != thrower->serial)
      return fail("run() threw the exception of slot %d, not the one thrown", thrown.slot);
    const unsigned want = iter_before + (phase_ == 2 ? 1 : 0);
    if (loop_->iteration() != want)
      return fail("iteration() is %u after a failed run, expected %u", loop_->iteration(), want);
  } else {
    if (threw) return fail("run() threw, but no callback did");
    advance();
    if (!remaining_.empty())
      return fail("slot %d (%s) expected revents 0x%x in phase %d but was not called", remaining_[0].slot,
                  kind_name(slots_[remaining_[0].slot].kind), remaining_[0].revents, phase_);
    if (loop_->iteration() != iter_before + 1)
      return fail("iteration() went from %u to %u in one run", iter_before, loop_->iteration());
    if (returned != any_active())
      return fail("run() returned %d, the model has %s active watchers", returned, any_active() ? "some" : "no");
  }
  if (loop_->depth() != 0) fail("depth() is %u after run()", loop_->depth());
}

void Model::check_all() {
  if (failed()) return;
  std::size_t attached = 0;
  unsigned pending = 0;
  for (int k = 0; k < kSlots; ++k) {
    const Slot& s = slots_[k];
    if (!s.used) continue;
    const WatcherBase& w = *s.w;
    if (s.attached) ++attached;
    if (s.attached && s.pending) ++pending;
    if (w.is_attached() != s.attached) return fail("slot %d is_attached() %d", k, w.is_attached());
    if (w.is_active() != s.active)
      return fail("slot %d (%s) is_active() is %d, the model says %d", k, kind_name(s.kind), w.is_active(), s.active);
    if (w.is_pending() != (s.pending != 0))
      return fail("slot %d (%s) is_pending() is %d, the model has revents 0x%x", k, kind_name(s.kind),
                  w.is_pending(), s.pending);
    if (w.priority() != s.priority) return fail("slot %d priority() %d, model %d", k, w.priority(), s.priority);
    if (s.real_calls != s.calls)
      return fail("slot %d (%s) was called %" PRIu64 " times, the model says %" PRIu64, k, kind_name(s.kind),
                  s.real_calls, s.calls);
    switch (s.kind) {
      case Kind::Io: {
        const auto& io = static_cast<const evw::Io&>(w);
        if (io.fd() != pairs_[s.source].a.get() || io.events() != s.events)
          return fail("slot %d Io fd %d events %d", k, io.fd(), io.events());
        break;
      }
      case Kind::Priority:
        if (static_cast<const evw::Priority&>(w).fd() != tcps_[s.source].server.get())
          return fail("slot %d Priority fd", k);
        break;
      case Kind::Poll: {
        const auto& p = static_cast<const evw::Poll&>(w);
        if (p.fd() != poll_fd(s.source) || p.events() != s.events || p.mode() != s.pmode)
          return fail("slot %d Poll fd %d events 0x%x mode %d", k, p.fd(), p.events(), p.mode());
        break;
      }
      case Kind::Signal:
        if (static_cast<const evw::Signal&>(w).signum() != s.signum) return fail("slot %d signum", k);
        break;
      case Kind::Timer:
        if (static_cast<const evw::Timer&>(w).repeat() != s.repeat) return fail("slot %d repeat", k);
        break;
      case Kind::Periodic: {
        const auto& p = static_cast<const evw::Periodic&>(w);
        if (p.offset() != s.offset || p.interval() != s.interval)
          return fail("slot %d Periodic offset %f interval %f", k, p.offset(), p.interval());
        break;
      }
      case Kind::Attr: {
        const auto& a = static_cast<const evw::Attr&>(w);
        if (a.path() != attr_paths_[s.source] || a.value().rfind("populated 0", 0) != 0 ||
            a.error())
          return fail("slot %d Attr path %s value \"%s\" error %d", k, a.path().c_str(), a.value().c_str(),
                      a.error().value());
        break;
      }
      default: break;
    }
  }
  if (loop_->watcher_count() != attached)
    return fail("watcher_count() is %zu, the model has %zu attached watchers", loop_->watcher_count(), attached);
  if (loop_->pending_count() != pending + dummies_)
    return fail("pending_count() is %u, the model has %u pending watchers (+%u cleared queue entries)",
                loop_->pending_count(), pending, dummies_);
}

void Model::step() {
  const int k = static_cast<int>(below(kSlots));
  Slot& s = slots_[k];
  const auto r = below(1000);
  if (r < 3) return op_destroy_loop();
  if (r < 250) return op_run();
  if (r < 370) return op_make_ready();
  if (r < 373) return op_post();  // rare: each is a round trip to another thread
  if (r < 430) return op_drain();
  if (!s.used) return op_create(k);
  if (r < 480) return op_destroy(k);
  if (r < 590) return op_start(k);
  if (r < 660) return op_stop(k);
  if (r < 740) return op_set(k);
  if (r < 810) return op_set_priority(k);
  if (r < 920) return op_feed(k);
  if (r < 950) return op_clear_pending(k);
  return op_again(k);
}

// libev keeps a process-wide "signal received" flag, which outlives the
// watchers and loops: a signal received by a watcher stopped before dispatch
// is delivered later to the next watcher of that signal, in any loop, once
// another signal wakes it. Deliver whatever is left, to a throw-away loop.
void flush_signal_flags() {
  evw::Loop flush;
  evw::Signal a(flush, SIGUSR1, [](evw::Signal&, int) {});
  evw::Signal b(flush, SIGUSR2, [](evw::Signal&, int) {});
  a.start();
  b.start();
  ::raise(SIGUSR1);
  ::raise(SIGUSR2);
  flush.run(evw::Run::NoWait);
}

std::string Model::run() {
  flush_signal_flags();  // start clean, whatever earlier tests left
  struct sigaction ignore {}, saved1{}, saved2{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGUSR1, &ignore, &saved1);
  ::sigaction(SIGUSR2, &ignore, &saved2);
  const int fds_before = evw_test::open_fd_count();
  const auto t0 = std::chrono::steady_clock::now();
  open_sources();
  for (std::size_t i = 0; i < groups_.size(); ++i) {
    groups_[i] = std::make_unique<evw_test::TempCgroup>("evw-model");
    attr_paths_[i] = groups_[i]->file("cgroup.events");
  }
  attr_files_ = groups_[0]->ok() && groups_[1]->ok();
  loop_ = std::make_unique<evw::Loop>();
  for (step_ = 0; step_ < ops_ && !failed(); ++step_) {
    try {
      step();
    } catch (const std::exception& e) {
      fail("operation threw %s", e.what());
    }
    check_all();
  }
  // Tear down: every watcher, the loop, the sources; nothing may be left open.
  for (int k = 0; k < kSlots; ++k)
    if (slots_[k].used) {
      destroy_real(k);
      slots_[k].used = false;
    }
  if (!failed() && loop_->watcher_count() != 0) fail("watchers left after destroying all: %zu", loop_->watcher_count());
  loop_.reset();
  if (!failed() && posts_gone_ != posted_) fail("posted functions left alive with the loop: %" PRIu64, posted_ - posts_gone_);
  for (Pair& p : pairs_) p = Pair{};
  for (Tcp& t : tcps_) t = Tcp{};
  hup_ = Pair{};
  closed_ = evw_test::Fd();
  for (auto& g : groups_) g.reset();
  seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!failed() && evw_test::open_fd_count() != fds_before)
    fail("%d descriptors open before, %d after", fds_before, evw_test::open_fd_count());
  flush_signal_flags();  // and leave nothing for later tests
  struct sigaction now1 {}, now2{};
  ::sigaction(SIGUSR1, &saved1, &now1);
  ::sigaction(SIGUSR2, &saved2, &now2);
  if (!failed() && (now1.sa_handler != SIG_IGN || now2.sa_handler != SIG_IGN))
    fail("SIGUSR1/SIGUSR2 dispositions were not restored to SIG_IGN after the last watcher stopped");
  return error_;
}

std::uint64_t seed_from_env() {
  if (const char* v = std::getenv("EVW_SEED"); v != nullptr && *v != '\0') return std::strtoull(v, nullptr, 0);
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

// The model's Attr watchers need cgroup v2; without it they are left out of
// the model run, and this case says so (counted as a skip).
TEST_CASE("model: Attr has quiet cgroup.events files to watch") {
  evw_test::TempCgroup group("evw-model");
  if (!group.ok()) EVW_SKIP("the model runs without Attr: " + group.why());
  CHECK(evw_test::read_file(group.file("cgroup.events")).rfind("populated 0", 0) == 0);
}

TEST_CASE("model: random operations on eleven watcher types agree with a reference model") {
  const std::uint64_t seed = seed_from_env();
  const std::uint64_t ops = env_number("EVW_OPS", 200000);
  MESSAGE("model: seed " << seed << ", " << ops << " operations (replay: EVW_SEED=" << seed
                         << " EVW_OPS=" << ops << ")");
  Model model(seed, ops);
  const std::string error = model.run();
  if (!error.empty()) FAIL_CHECK(error);
  const std::uint64_t done = model.steps();
  char line[200];
  std::snprintf(line, sizeof line,
                "model: %" PRIu64 " operations in %.2f s (%.0f ops/s), %" PRIu64 " runs, %" PRIu64
                " callbacks checked",
                done, model.seconds(), static_cast<double>(done) / model.seconds(), model.runs(), model.deliveries());
  MESSAGE(line);
  std::string coverage = "model: callbacks by type:";
  for (int k = 0; k < kKinds; ++k)
    coverage += std::string(" ") + kind_name(static_cast<Kind>(k)) + "=" + std::to_string(model.by_kind_[k]);
  coverage += "; by phase (pending/prepare/poll): " + std::to_string(model.by_phase_[0]) + "/" +
              std::to_string(model.by_phase_[1]) + "/" + std::to_string(model.by_phase_[2]) +
              "; in-callback actions " + std::to_string(model.acts_) + " (throws " +
              std::to_string(model.throws_) + ", before the wakeup callback " + std::to_string(model.wake_resends_) +
              "); run(Run::Once) " + std::to_string(model.once_runs_) +
              "; loops destroyed " + std::to_string(model.loops_destroyed_) + "; posted from a thread " +
              std::to_string(model.posts_total_);
  coverage += "; Poll callbacks level/edge/one-shot/edge+one-shot " + std::to_string(model.poll_by_mode_[0]) + "/" +
              std::to_string(model.poll_by_mode_[1]) + "/" + std::to_string(model.poll_by_mode_[2]) + "/" +
              std::to_string(model.poll_by_mode_[3]) + ", rearms " + std::to_string(model.rearms_) +
              ", starts refused for another PollMode " + std::to_string(model.mode_conflicts_);
  MESSAGE(coverage);
}
