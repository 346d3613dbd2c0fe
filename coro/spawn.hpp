// evw::spawn and evw::sync_wait — where coroutines meet the loop.
//
//   evw::spawn(loop, serve(client));        // detached: the loop owns it
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
// Caveats: a spawned task cannot be cancelled on its own (end it from inside,
// or race it with when_any in a parent task). evw resumes coroutines only from
// loop callbacks; code that resumes one by hand (an awaitable of your own)
// must expect a spawned task's exception to come out of that resume(). The
// first spawn on a loop adds one loop-owned watcher (the starter, never
// active; it counts in Loop::watcher_count()) that stays until the Loop is
// destroyed. sync_wait() runs the loop: do not call it from a callback or a
// task of the same loop.
#pragma once

#include <coroutine>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "../core/events.hpp"
#include "../core/loop.hpp"
#include "../watchers/timer.hpp"
#include "task.hpp"

namespace evw {

namespace detail {

class SpawnRegistry;

// The outermost coroutine of a spawned task: awaits the task, and hands an
// exception it ends with to the loop by letting it out of resume(). Its frame
// belongs to the loop's SpawnRegistry, and it frees itself at its end (after
// an exception, the registry frees it at its next start or destruction).
class DetachedTask {
 public:
  class promise_type {
   public:
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
    SpawnRegistry* registry_ = nullptr;
    promise_type* prev_ = nullptr;  // the registry's list of the frames it owns
    promise_type* next_ = nullptr;
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
    queue_.clear();
    free_failed();
    while (head_ != nullptr) {
      promise_type* p = head_;
      unlink(*p);
      DetachedTask::Handle::from_promise(*p).destroy();
    }
  }

  // Take a frame and queue its start.
  void add(DetachedTask task) {
    queue_.push_back(task.get());  // may throw: then `task` still owns the frame
    DetachedTask::Handle h = task.release();
    promise_type& p = h.promise();
    p.registry_ = this;
    p.next_ = head_;
    if (head_ != nullptr) head_->prev_ = &p;
    head_ = &p;
    // Feeding works on a stopped watcher and makes run() do an iteration
    // even when nothing else is active.
    if (queue_.size() == 1) starter_->feed(Event::Timer);
  }

  // A spawned task ended: free its frame (it is suspended at its final point).
  void finished(promise_type& p) noexcept {
    unlink(p);
    DetachedTask::Handle::from_promise(p).destroy();
  }

  // A spawned task is ending with an exception, which is on its way out of the
  // frame: free the frame later, once nothing runs in it.
  void failed(promise_type& p) noexcept {
    unlink(p);
    p.next_ = failed_;
    failed_ = &p;
  }

 private:
  explicit SpawnRegistry(Loop& loop) noexcept : loop_(&loop) {}

  // Start the queued tasks, oldest first (tasks spawned meanwhile too).
  void start_queued() {
    free_failed();
    try {
      while (!queue_.empty()) {
        std::coroutine_handle<> next = queue_.front();
        queue_.pop_front();
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
  std::deque<std::coroutine_handle<>> queue_;  // not started yet, in spawn order
  promise_type* head_ = nullptr;               // every frame owned, but
  promise_type* failed_ = nullptr;             // those that ended with an exception
};

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

/// @brief Run a task detached: it starts in the loop's next dispatch and the
/// loop owns it until it ends (or until the Loop is destroyed, which cancels it).
/// @param task the task to run; its result, if any, is dropped.
/// @throws std::invalid_argument if task is empty. An exception thrown by the
///         task later comes out of Loop::run().
template <class T>
void spawn(Loop& loop, Task<T> task) {
  if (!task) throw std::invalid_argument("evw::spawn: the task is empty");
  detail::SpawnRegistry& registry = detail::SpawnRegistry::of(loop);
  registry.add(detail::detach(std::move(task)));
}

/// @brief Run the loop (Run::Once at a time) until task is done, and return its
/// result. The task starts here, inside sync_wait; other watchers and spawned
/// tasks run meanwhile.
/// @throws the task's exception; the exception of any callback or spawned task
///         that Loop::run() throws (the task is then cancelled);
///         std::invalid_argument if task is empty; std::logic_error if the loop
///         has nothing left that could resume the task.
template <class T>
T sync_wait(Loop& loop, Task<T> task) {
  if (!task) throw std::invalid_argument("evw::sync_wait: the task is empty");
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
