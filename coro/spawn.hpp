// evw::spawn and evw::sync_wait — where coroutines meet the loop.
//
//   evw::spawn(loop, serve(client));        // detached: the loop owns it
//   evw::SpawnHandle job = evw::spawn(loop, poll(sensor));
//   job.cancel();                           // that one task, now (or see below)
//   co_await job.join();                    // from another task: wait for its end
//   int n = evw::sync_wait(loop, count());  // run the loop until the task is done
//
// spawn() hands a task to the loop: it starts in the loop's next dispatch (not
// inside spawn), spawned tasks start in spawn order, each runs whenever its
// watchers fire, and its frame is freed when it ends. An exception that ends a
// spawned task comes out of Loop::run() like a callback's: it propagates out
// of the resume() of the loop callback that resumed the task, so the loop
// captures it there (and nothing is checked after every resume). Destroying
// the Loop destroys every spawned task that has not ended: its locals are
// destroyed, its watchers stopped, and it never runs again.
//
// spawn() returns a SpawnHandle; dropping it leaves the task running
// (detached), and it may be kept and copied. cancel() cancels the task the way
// destroying the Loop does: its frame, and every task it awaits, is destroyed
// with its locals, which stops the watchers it waits on; it is never resumed.
// - Called while the loop is not running (outside Loop::run()), it does so
//   before it returns.
// - Called from a callback of the loop, or from a task running on it (the
//   task itself included), it cannot tell whether the task is running right
//   then (below the caller on the stack), so the task is destroyed right after
//   that callback returns: the loop's reaper, an internal watcher at
//   max_priority fed by cancel(), is the next callback libev runs. A task that
//   cancels itself goes on until it next suspends.
// - After the task ended, or once the Loop is gone, it does nothing.
// join() is an awaitable for another task: it resumes once the task has ended
// and rethrows how it ended: nothing if it returned, its exception if it threw
// (which Loop::run() reports as well), evw::Cancelled if it was cancelled (by
// cancel() or by the Loop's destruction). That is what when_all / when_any see
// of a joined task: when_all(job.join(), ...) throws Cancelled and cancels the
// rest; a cancelled job wins a when_any with that exception.
//
// Caveats: evw resumes coroutines only from loop callbacks; code that resumes
// one by hand (an awaitable of your own) must expect a spawned task's
// exception to come out of that resume(), and a task spawned on a loop must
// wait on that loop's events only: cancel() relies on the loop's depth to know
// whether the task might be running. Within one callback, an event libev
// orders before the reaper may still resume a task cancelled from a callback:
// only one of its watchers at max_priority that the same callback feeds (or
// re-arms with set()) after cancel(). The first spawn on a loop adds one
// loop-owned watcher (the starter, never active; it counts in
// Loop::watcher_count()) that stays until the Loop is destroyed, and the first
// cancel() from a callback a second one (the reaper). sync_wait() runs the
// loop: called from a callback or a task of the same loop it throws
// std::logic_error instead of nesting Loop::run().
#pragma once

#include <coroutine>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "../core/events.hpp"
#include "../core/loop.hpp"
#include "../core/time.hpp"
#include "../watchers/timer.hpp"
#include "task.hpp"

namespace evw {

/// @brief What SpawnHandle::join() throws when the task was cancelled (by
/// SpawnHandle::cancel() or by the destruction of its Loop).
class Cancelled : public std::runtime_error {
 public:
  Cancelled() : std::runtime_error("evw: the spawned task was cancelled") {}
};

class SpawnHandle;

namespace detail {

class SpawnRegistry;
struct SpawnState;
class JoinAwaitable;

// The outermost coroutine of a spawned task: awaits the task, and hands an
// exception it ends with to the loop by letting it out of resume(). Its frame
// belongs to the loop's SpawnRegistry, and it frees itself at its end (after
// an exception, the registry frees it at its next start or destruction).
class DetachedTask {
 public:
  class promise_type : public FrameScope {
   public:
    ~promise_type();
    DetachedTask get_return_object() noexcept {
      return DetachedTask(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    struct FinalAwaiter {
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<promise_type> h) const noexcept;
      void await_resume() const noexcept {}
    };
    FinalAwaiter final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    // Out of resume(), to whoever resumed the task: a loop callback (the loop
    // captures it, Loop::run() rethrows it), the registry's starter, or the
    // final step of a task it awaited (symmetric transfer passes it on). The
    // frame is then suspended at its final point ([dcl.fct.def.coroutine]:
    // an exception out of unhandled_exception() goes to the resumer); the
    // registry frees it later. Checked with g++ 12 and clang 14, at -O0, -O2
    // and under ASan.
    void unhandled_exception();

   private:
    friend class DetachedTask;
    friend class SpawnRegistry;
    friend class evw::SpawnHandle;
    SpawnRegistry* registry_ = nullptr;
    promise_type* prev_ = nullptr;  // the registry's list of the frames it owns
    promise_type* next_ = nullptr;
    std::shared_ptr<SpawnState> state_;  // shared with the SpawnHandles
    bool started_ = false;               // out of the registry's queue
    bool reap_ = false;                  // cancelled from a callback: the reaper destroys it
  };
  using Handle = std::coroutine_handle<promise_type>;

  DetachedTask(DetachedTask&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
  DetachedTask& operator=(DetachedTask&&) = delete;
  ~DetachedTask() {
    if (h_) h_.destroy();
  }
  Handle get() const noexcept { return h_; }
  Handle release() noexcept { return std::exchange(h_, nullptr); }

 private:
  explicit DetachedTask(Handle h) noexcept : h_(h) {}
  Handle h_;
};

// What a spawned task's frame and its SpawnHandles share.
struct SpawnState {
  enum class End : unsigned char { None, Returned, Failed, Cancelled };
  explicit SpawnState(Loop& l) noexcept : loop(&l) {}
  SpawnState(const SpawnState&) = delete;
  SpawnState& operator=(const SpawnState&) = delete;

  // The first end counts (a task cancelled from inside may still return or
  // throw before it is reaped). Wakes the joiners: in the loop's next dispatch.
  void finish(End how, std::exception_ptr e = nullptr) noexcept;

  Loop* loop;
  DetachedTask::promise_type* frame = nullptr;  // while the frame exists
  End end = End::None;
  std::exception_ptr error;           // End::Failed
  JoinAwaitable* joiners = nullptr;   // waiting in join()
};

// One per Loop that has spawned tasks. It owns their frames, and starts them
// in spawn order from a loop callback: a loop-owned Timer, never started but
// fed when there is something to start, whose user data owns the registry.
// So the Loop's destruction destroys the registry, which destroys every
// spawned frame that has not ended (and with them their watchers).
class SpawnRegistry {
  using promise_type = DetachedTask::promise_type;

 public:
  // The registry of loop, created on first use.
  static SpawnRegistry& of(Loop& loop) {
    {
      std::lock_guard lock(table_mutex());
      if (auto it = table().find(&loop); it != table().end()) return *it->second;
    }
    std::shared_ptr<SpawnRegistry> registry(new SpawnRegistry(loop));
    Timer& starter = loop.add<Timer>(Seconds(0.0), Seconds(0.0),
                                     [r = registry.get()](Timer&, int) { r->start_queued(); });
    starter.data() = registry;  // std::any wants a copyable value: the loop owns it from here
    registry->starter_ = &starter;
    std::lock_guard lock(table_mutex());
    table()[&loop] = registry.get();
    return *registry;
  }

  SpawnRegistry(const SpawnRegistry&) = delete;
  SpawnRegistry& operator=(const SpawnRegistry&) = delete;
  ~SpawnRegistry() {
    {
      std::lock_guard lock(table_mutex());
      if (auto it = table().find(loop_); it != table().end() && it->second == this) table().erase(it);
    }
    // Cancel what is left: started or not, each frame is destroyed, never resumed.
    closing_ = true;
    queue_.clear();
    free_failed();
    while (head_ != nullptr) {
      promise_type* p = head_;
      unlink(*p);
      DetachedTask::Handle::from_promise(*p).destroy();
    }
  }

  // Take a frame and queue its start.
  void add(DetachedTask task, std::shared_ptr<SpawnState> state) {
    queue_.push_back(task.get());  // may throw: then `task` still owns the frame
    DetachedTask::Handle h = task.release();
    promise_type& p = h.promise();
    p.registry_ = this;
    state->frame = &p;
    p.state_ = std::move(state);
    p.next_ = head_;
    if (head_ != nullptr) head_->prev_ = &p;
    head_ = &p;
    // Feeding works on a stopped watcher and makes run() do an iteration
    // even when nothing else is active.
    if (queue_.size() == 1) starter_->feed(Event::Timer);
  }

  // A spawned task ended: free its frame (it is suspended at its final point).
  void finished(promise_type& p) noexcept {
    p.state_->finish(SpawnState::End::Returned);
    unlink(p);
    DetachedTask::Handle::from_promise(p).destroy();
  }

  // A spawned task is ending with an exception, which is on its way out of the
  // frame: free the frame later, once nothing runs in it.
  void failed(promise_type& p) noexcept {
    p.state_->finish(SpawnState::End::Failed, std::current_exception());
    unlink(p);
    p.next_ = failed_;
    failed_ = &p;
  }

  // SpawnHandle::cancel() of a task that has not ended.
  void cancel(promise_type& p) noexcept {
    p.state_->finish(SpawnState::End::Cancelled);
    // Outside the loop's run(), nothing of the task is on the stack: a task
    // runs only in callbacks of its loop. Not started yet, it never ran.
    if (!p.started_ || closing_ || loop_->depth() == 0) {
      destroy(p);
      return;
    }
    // In a callback: the caller may be the task itself, or something it
    // called. The reaper destroys it once that callback has returned: fed at
    // max_priority, it is the newest event of the highest priority, which
    // libev runs first (feed() hands the EPOLLPRI drain's remaining events to
    // libev before feeding, so they come before it in the queue).
    p.reap_ = true;
    if (!reaper_) {
      reaper_.emplace(*loop_, Seconds(0.0), Seconds(0.0), [this](Timer&, int) { reap(); });
      reaper_->set_priority(max_priority);
    }
    reaper_->feed(Event::Timer);
  }

 private:
  explicit SpawnRegistry(Loop& loop) noexcept : loop_(&loop) {}

  // Destroy a frame that is not running, whatever its state.
  void destroy(promise_type& p) noexcept {
    if (!p.started_) std::erase(queue_, DetachedTask::Handle::from_promise(p));
    unlink(p);
    DetachedTask::Handle::from_promise(p).destroy();
  }

  // The tasks cancelled from callbacks. A destroyed frame may destroy others
  // (its locals may cancel tasks): look again from the head each time.
  void reap() noexcept {
    for (;;) {
      promise_type* p = head_;
      while (p != nullptr && !p->reap_) p = p->next_;
      if (p == nullptr) return;
      destroy(*p);
    }
  }

  // Start the queued tasks, oldest first (tasks spawned meanwhile too).
  void start_queued() {
    free_failed();
    try {
      while (!queue_.empty()) {
        DetachedTask::Handle next = queue_.front();
        queue_.pop_front();
        next.promise().started_ = true;
        next.resume();  // a spawned task's exception comes out here
      }
    } catch (...) {
      // A task ended with an exception: the loop reports it; start the rest
      // in the next run().
      if (!queue_.empty()) starter_->feed(Event::Timer);
      throw;
    }
  }

  // The frames of tasks that ended with an exception (suspended at their final point).
  void free_failed() noexcept {
    while (failed_ != nullptr) {
      promise_type* p = std::exchange(failed_, failed_->next_);
      DetachedTask::Handle::from_promise(*p).destroy();
    }
  }

  void unlink(promise_type& p) noexcept {
    if (p.prev_ != nullptr) p.prev_->next_ = p.next_;
    else head_ = p.next_;
    if (p.next_ != nullptr) p.next_->prev_ = p.prev_;
    p.prev_ = p.next_ = nullptr;
  }

  // Loop -> its registry; an entry lives exactly as long as its loop's starter.
  // Never destroyed: the default loop (a function-local static created before
  // them) is destroyed at exit after them, and its registry still needs them.
  static std::mutex& table_mutex() {
    static auto* mutex = new std::mutex;
    return *mutex;
  }
  static std::unordered_map<const Loop*, SpawnRegistry*>& table() {
    static auto* registries = new std::unordered_map<const Loop*, SpawnRegistry*>;
    return *registries;
  }

  Loop* loop_;
  Timer* starter_ = nullptr;
  std::optional<Timer> reaper_;                // created by the first cancel() from a callback
  std::deque<DetachedTask::Handle> queue_;     // not started yet, in spawn order
  promise_type* head_ = nullptr;               // every frame owned, but
  promise_type* failed_ = nullptr;             // those that ended with an exception
  bool closing_ = false;                       // in the destructor
};

// Waits in SpawnHandle::join() for a spawned task to end, then rethrows how
// it ended. Resumed from the loop: its own timer, never started, which the
// end of the task feeds.
class [[nodiscard]] JoinAwaitable {
 public:
  explicit JoinAwaitable(std::shared_ptr<SpawnState> state) noexcept : state_(std::move(state)) {}
  // Before it is awaited only (when_any and with_timeout move it into a task).
  JoinAwaitable(JoinAwaitable&& other) noexcept : state_(std::move(other.state_)) {}
  JoinAwaitable& operator=(JoinAwaitable&&) = delete;
  ~JoinAwaitable() { unlink(); }

  bool await_ready() const {
    if (!state_) throw std::logic_error("evw::SpawnHandle::join: the handle is empty");
    return state_->end != SpawnState::End::None;
  }
  void await_suspend(std::coroutine_handle<> awaiting) {
    wake_.emplace(*state_->loop, Seconds(0.0), Seconds(0.0),
                  [awaiting](Timer&, int) { awaiting.resume(); });
    next_ = state_->joiners;
    if (next_ != nullptr) next_->prev_ = this;
    state_->joiners = this;
    linked_ = true;
  }
  void await_resume() const {
    switch (state_->end) {
      case SpawnState::End::Returned:
        return;
      case SpawnState::End::Failed:
        std::rethrow_exception(state_->error);
      default:
        throw Cancelled();
    }
  }

 private:
  friend struct SpawnState;
  // The task ended: resume in the loop's next dispatch (not from inside the
  // task's end, where an exception of the joiner could not go anywhere).
  void wake() noexcept {
    unlink();
    if (wake_ && wake_->is_attached()) wake_->feed(Event::Timer);
  }
  void unlink() noexcept {
    if (!linked_) return;
    if (prev_ != nullptr) prev_->next_ = next_;
    else state_->joiners = next_;
    if (next_ != nullptr) next_->prev_ = prev_;
    prev_ = next_ = nullptr;
    linked_ = false;
  }

  std::shared_ptr<SpawnState> state_;
  std::optional<Timer> wake_;
  JoinAwaitable* prev_ = nullptr;  // in state_->joiners while linked_
  JoinAwaitable* next_ = nullptr;
  bool linked_ = false;
};

inline void SpawnState::finish(End how, std::exception_ptr e) noexcept {
  if (end != End::None) return;
  end = how;
  error = std::move(e);
  while (joiners != nullptr) joiners->wake();
}

inline DetachedTask::promise_type::~promise_type() {
  if (state_) {
    state_->frame = nullptr;
    state_->finish(SpawnState::End::Cancelled);  // destroyed before its end: by the Loop's destruction
  }
}

inline void DetachedTask::promise_type::unhandled_exception() {
  registry_->failed(*this);
  throw;
}

inline void DetachedTask::promise_type::FinalAwaiter::await_suspend(
    std::coroutine_handle<promise_type> h) const noexcept {
  promise_type& promise = h.promise();
  promise.registry_->finished(promise);  // destroys this frame: touch nothing after
}

template <class T>
DetachedTask detach(Task<T> task) {
  co_await std::move(task);  // a result is dropped; an exception goes to the loop
}

}  // namespace detail

/// @brief A spawned task, as spawn() returns it: cancel it, ask whether it
/// ended, or join() it from another task. Copyable; dropping every copy leaves
/// the task running. Safe to use after the task ended and after its Loop was
/// destroyed (cancel() does nothing then).
class SpawnHandle {
 public:
  /// @brief An empty handle (cancel() does nothing, join() throws).
  SpawnHandle() noexcept = default;

  /// @brief True unless empty.
  explicit operator bool() const noexcept { return state_ != nullptr; }
  /// @brief True once the task returned, threw, or was cancelled (by cancel(),
  /// also while its destruction waits for the current callback to return, or
  /// by the Loop's destruction). False for an empty handle.
  bool done() const noexcept { return state_ && state_->end != detail::SpawnState::End::None; }
  /// @brief True if the task was cancelled (by cancel() or by the Loop's destruction).
  bool cancelled() const noexcept {
    return state_ && state_->end == detail::SpawnState::End::Cancelled;
  }

  /// @brief Cancel the task: its frame and every task it awaits are destroyed,
  /// which stops the watchers they wait on, and it is never resumed. Outside
  /// Loop::run() this happens before cancel() returns; from a callback or a
  /// task of the loop (the task itself included), right after that callback
  /// returns (a task that cancels itself goes on until it next suspends).
  /// Does nothing if the task ended, or if its Loop was destroyed.
  void cancel() noexcept {
    // Ended (a frame that threw waits in the registry to be freed; one
    // cancelled from a callback waits for the reaper), or its loop is gone.
    if (!state_ || done() || state_->frame == nullptr) return;
    detail::DetachedTask::promise_type& frame = *state_->frame;
    frame.registry_->cancel(frame);
  }

  /// @brief Await the end of the task (from a task on the same loop).
  /// @throws (at co_await) std::logic_error if the handle is empty;
  ///         evw::Cancelled if the task was cancelled; the task's exception if
  ///         it threw (which Loop::run() reports too).
  [[nodiscard]] detail::JoinAwaitable join() const noexcept { return detail::JoinAwaitable(state_); }

 private:
  template <class T>
  friend SpawnHandle spawn(Loop& loop, Task<T> task);
  explicit SpawnHandle(std::shared_ptr<detail::SpawnState> state) noexcept : state_(std::move(state)) {}
  std::shared_ptr<detail::SpawnState> state_;
};

/// @brief Run a task detached: it starts in the loop's next dispatch and the
/// loop owns it until it ends (or until it is cancelled, or the Loop is
/// destroyed, which cancels it).
/// @param task the task to run; its result, if any, is dropped.
/// @return a handle to cancel or join the task; it may be ignored.
/// @throws std::invalid_argument if task is empty. An exception thrown by the
///         task later comes out of Loop::run().
template <class T>
SpawnHandle spawn(Loop& loop, Task<T> task) {
  if (!task) throw std::invalid_argument("evw::spawn: the task is empty");
  detail::SpawnRegistry& registry = detail::SpawnRegistry::of(loop);
  auto state = std::make_shared<detail::SpawnState>(loop);
  registry.add(detail::detach(std::move(task)), state);
  return SpawnHandle(std::move(state));
}

namespace detail {

// The loops this thread runs sync_wait on, innermost first: a nested
// sync_wait on one of them is refused (its task runs before the loop does).
class SyncWaitGuard {
 public:
  explicit SyncWaitGuard(const Loop& loop) : loop_(&loop), outer_(top()) {
    bool nested = loop.depth() > 0;
    for (const SyncWaitGuard* g = outer_; g != nullptr && !nested; g = g->outer_)
      nested = g->loop_ == &loop;
    if (nested)
      throw std::logic_error(
          "evw::sync_wait: called from a callback or a coroutine running on the same loop, whose "
          "Loop::run() it would nest; co_await the task there, or evw::spawn it");
    top() = this;
  }
  ~SyncWaitGuard() { top() = outer_; }
  SyncWaitGuard(const SyncWaitGuard&) = delete;
  SyncWaitGuard& operator=(const SyncWaitGuard&) = delete;

 private:
  static SyncWaitGuard*& top() noexcept {
    static constinit thread_local SyncWaitGuard* innermost = nullptr;
    return innermost;
  }
  const Loop* loop_;
  SyncWaitGuard* outer_;
};

}  // namespace detail

/// @brief Run the loop (Run::Once at a time) until task is done, and return its
/// result. The task starts here, inside sync_wait; other watchers and spawned
/// tasks run meanwhile.
/// @throws the task's exception; the exception of any callback or spawned task
///         that Loop::run() throws (the task is then cancelled);
///         std::invalid_argument if task is empty; std::logic_error if the loop
///         has nothing left that could resume the task, or if called from a
///         callback of the loop or a coroutine running on it (it would nest
///         Loop::run()).
template <class T>
T sync_wait(Loop& loop, Task<T> task) {
  if (!task) throw std::invalid_argument("evw::sync_wait: the task is empty");
  detail::SyncWaitGuard guard(loop);
  auto h = detail::TaskAccess::handle(task);
  h.resume();
  while (!h.done()) {
    if (!loop.run(Run::Once) && !h.done() && loop.pending_count() == 0)
      throw std::logic_error(
          "evw::sync_wait: the task waits, but the loop has no active watcher left to resume it");
  }
  return h.promise().take();
}

}  // namespace evw
