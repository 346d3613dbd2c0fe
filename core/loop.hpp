// evw — the event loop: owns watchers, runs them, reports their exceptions.
//
// Caveats: a Loop is used from one thread; post(), handle().post() and
// Async::send() are the thread-safe calls. It is neither copyable nor movable: watchers keep its
// address. Destroying a Loop stops every watcher it still has; loop-owned
// watchers (Loop::add) are destroyed, user-owned ones become detached.
// A callback may destroy its own Loop (e.g. an application object that holds
// it): run() then returns false at once and the libev loop is freed as it
// unwinds. Not from a coroutine spawned on that loop (destroying the loop
// destroys the running task's own frame).
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <utility>
#include <vector>

#include "events.hpp"
#include "function.hpp"
#include "loop_handle.hpp"
#include "watcher.hpp"

struct ev_loop;

namespace evw {

namespace detail {
class PriorityTable;
struct FdCheck;
struct RunFrame;
class Wakeup;
}

/// An event loop: a libev loop plus the watchers that belong to it.
class Loop {
 public:
  /// @brief A new loop (ev_loop_new).
  /// @param flags LoopFlag::Auto, or BACKEND_* / FLAG_* bits as for ev_loop_new.
  /// @throws std::system_error if libev cannot create a backend (e.g. EMFILE).
  explicit Loop(unsigned flags = LoopFlag::Auto);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  /// @brief The process-wide default loop, created on first use. Child
  /// watchers live only here (libev reaps children through its own SIGCHLD
  /// watcher, which evw's signal handler keeps informed).
  static Loop& default_loop();

  /// @brief Run the loop: until no active watcher remains (and no posted
  /// function waits) or stop() is called; with Run::Once, one blocking
  /// iteration; with Run::NoWait, one iteration without blocking.
  /// @return true while active watchers remain (false if a callback
  /// destroyed the loop; `this` is gone then).
  /// @throws the first exception a callback threw during this run, unchanged,
  /// or std::system_error if the kernel queue of Priority/Gpio watchers could
  /// not be read (epoll_wait); events that were ready but not yet delivered
  /// are delivered first by the next run().
  bool run(int flags = 0);
  /// @brief Make run() return: Break::One (innermost) or Break::All.
  void stop(int how = Break::One) noexcept;

  double now() const noexcept;        ///< the loop's cached time (ev_now)
  void update_now() noexcept;         ///< refresh now() (ev_now_update)
  unsigned iteration() const noexcept;///< iterations so far (ev_iteration)
  unsigned depth() const noexcept;    ///< nesting of run() calls (ev_depth)
  unsigned backend() const noexcept;  ///< BACKEND_* in use
  unsigned pending_count() const noexcept;  ///< events waiting for dispatch
  bool is_default() const noexcept { return is_default_; }
  /// @brief Call in the child after fork() before using the loop there:
  /// rebuilds kernel state that must not be shared with the parent.
  void fork();
  void suspend() noexcept;  ///< stop the clock (ev_suspend), e.g. before a system sleep
  void resume() noexcept;   ///< pair of suspend() (ev_resume)
  /// @brief The libev loop, for code that talks to libev directly.
  struct ::ev_loop* raw() const noexcept { return raw_; }

  /// @brief Create a loop-owned watcher: `loop.add<evw::Timer>(0.5, 0.0, cb)`.
  /// It is constructed stopped, like every watcher, and lives until
  /// remove() or the loop's destruction.
  template <class W, class... Args>
  W& add(Args&&... args) {
    auto owned = std::make_unique<W>(*this, std::forward<Args>(args)...);
    adopt(*owned);
    return *owned.release();  // the loop's watcher list owns it from here
  }
  /// @brief Destroy a loop-owned watcher (also from inside its own callback).
  /// @throws std::logic_error if w is not owned by this loop.
  void remove(detail::WatcherBase& w);
  /// @brief How many watchers (user- and loop-owned) belong to this loop.
  std::size_t watcher_count() const noexcept { return count_; }

  /// @brief Have fn() called on the loop's thread in its next iteration.
  /// Thread-safe (also from the loop's own thread); the functions one thread
  /// posts run in the order it posted them. Wakes a blocked run(). No
  /// allocation per post while fn fits in three pointers. Posts do not keep
  /// run() going by themselves: posted while no run() is in progress, fn runs
  /// in the next run() (even one with no active watcher, which runs what is
  /// queued and then returns). An exception from fn comes out of run() like a
  /// callback's; the functions posted after it run in the next run(). Queued
  /// when the loop is destroyed, fn is destroyed without being called.
  /// @return true if queued; false only while the loop is being destroyed
  ///         (fn is then destroyed). Another thread calling this must know
  ///         the Loop outlives the call; handle().post() can tell instead.
  /// @throws std::invalid_argument if fn is empty; std::bad_alloc.
  template <class F>
  bool post(F&& fn) {
    return post_function(detail::Function<void()>(std::forward<F>(fn)));
  }
  /// @brief A handle other threads post through; its post() returns false
  /// once this loop is destroyed.
  LoopHandle handle() const;

 private:
  friend class detail::WatcherBase;
  friend struct detail::Access;
  struct DefaultTag {};
  explicit Loop(DefaultTag);

  void adopt(detail::WatcherBase& w) noexcept;
  void link(detail::WatcherBase& w) noexcept;
  void unlink(detail::WatcherBase& w) noexcept;
  // A move: `to` takes from's place in the list and in deferred_.
  void replace(detail::WatcherBase& from, detail::WatcherBase& to) noexcept;
  // Whether w's callback runs, innermost or below a nested run().
  bool is_running(const detail::WatcherBase& w) const noexcept;
  void forget_running(const detail::WatcherBase& w) noexcept;
  void capture(std::exception_ptr error) noexcept;
  void defer(detail::WatcherBase& w, int revents);
  void forget(detail::WatcherBase& w) noexcept;
  [[noreturn]] void rethrow();
  bool post_function(detail::Function<void()>&& fn);

  struct ::ev_loop* raw_;
  bool is_default_ = false;
  bool failed_ = false;  // a callback threw: deliver nothing more this run
  int break_ = 0;        // the last stop() request, kept across nested runs
  std::size_t count_ = 0;
  detail::WatcherBase* head_ = nullptr;
  std::exception_ptr error_;
  std::vector<std::pair<detail::WatcherBase*, int>> deferred_;
  std::unique_ptr<detail::PriorityTable> priority_;  // created on first Priority watcher
  std::unique_ptr<detail::FdCheck> fd_check_;  // created on the first Io start()
  detail::RunFrame* frame_ = nullptr;  // the innermost run() in progress
  detail::WatcherBase* running_ = nullptr;  // whose callback runs (the last one called)
  std::vector<void (*)(const Loop&)> on_destroy_;  // library code to tell at ~Loop
  std::shared_ptr<detail::Wakeup> wakeup_;  // posts and signals wake the loop through it
};

}  // namespace evw
