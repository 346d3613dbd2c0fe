// evw::offload — run blocking work on a WorkPool from a coroutine:
//
//   std::string text = co_await evw::offload(pool, loop, [path] { return read_all(path); });
//
// The coroutine suspends, a pool thread runs the work, and the coroutine
// resumes on the loop's thread with the work's value — or the work's
// exception is thrown at the co_await. While it waits, the loop's run() keeps
// going (as for an active watcher), so sync_wait and spawned tasks wait for it.
//
//   co_await evw::offload(pool, loop, read_all, path);   // the same: work(args...), args copied
//
// g++ 12 (Debian 12's compiler) miscompiles a lambda with captures written
// inside a co_await expression: a capture is copied from the wrong place and
// destroyed twice (clang is right; see README, Coroutines). With g++ 12 pass
// the arguments instead (the form above), or name the lambda first:
//   auto work = [path] { return read_all(path); };
//   co_await evw::offload(pool, loop, std::move(work));
//
// Caveats: the work must not touch the loop, its watchers or the coroutine's
// locals by reference unless they outlive it (it runs on another thread).
// Cancelling the waiting coroutine (destroying its Task, when_any, or
// destroying the Loop that runs a spawned task) does not stop the work: its
// result is dropped when it ends (destroyed on the loop's thread, or on the
// pool thread if the loop is gone). An awaitable may be moved until it is
// awaited, not while awaited.
#pragma once

#include <coroutine>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "../core/loop.hpp"
#include "../core/loop_handle.hpp"
#include "../core/result.hpp"
#include "../core/work_pool.hpp"

namespace evw {

namespace detail {

template <class Work>
class OffloadAwaitable {
 public:
  using R = std::invoke_result_t<Work&>;

  OffloadAwaitable(WorkPool& pool, Loop& loop, Work work)
      : pool_(&pool), loop_(&loop), work_(std::move(work)) {}
  OffloadAwaitable(OffloadAwaitable&& other) noexcept(std::is_nothrow_move_constructible_v<Work>)
      : pool_(other.pool_), loop_(other.loop_), work_(std::move(other.work_)) {}
  OffloadAwaitable& operator=(OffloadAwaitable&&) = delete;
  ~OffloadAwaitable() {
    // Destroyed while waiting: the coroutine is cancelled. The result, when it
    // comes, is dropped, and run() no longer waits for it.
    if (state_ && state_->awaiting) {
      state_->awaiting = nullptr;
      state_->hold.reset();
    }
  }

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> awaiting) {
    auto state = std::make_shared<State>();
    LoopHandle handle = loop_->handle();
    state->hold = LoopHold(handle);
    pool_->submit(handle, std::move(work_), [state](Result<R> result) {
      if (!state->awaiting) return;  // cancelled
      state->hold.reset();
      state->result.emplace(std::move(result));
      std::exchange(state->awaiting, nullptr).resume();  // may destroy this awaitable
    });  // if this throws, the exception comes out of co_await (state_ is not set)
    state->awaiting = awaiting;
    state_ = std::move(state);
  }
  R await_resume() { return std::move(*state_->result).value(); }

 private:
  // Shared with the pool's done callback, which may outlive the coroutine.
  // Touched on the loop's thread only; the pool thread only drops its reference.
  struct State {
    std::coroutine_handle<> awaiting;  // null once resumed or cancelled
    LoopHold hold;
    std::optional<Result<R>> result;
  };

  WorkPool* pool_;
  Loop* loop_;
  Work work_;
  std::shared_ptr<State> state_;
};

}  // namespace detail

/// @brief Await work() run on a thread of pool; resumes on loop's thread with
/// its value (or throws its exception). Await it on loop's thread.
/// @throws (at co_await) what work throws; std::logic_error if the pool is
///         being destroyed; std::bad_alloc.
template <class Work>
[[nodiscard]] auto offload(WorkPool& pool, Loop& loop, Work&& work) {
  return detail::OffloadAwaitable<std::decay_t<Work>>(pool, loop, std::forward<Work>(work));
}

/// @brief Await work(args...) run on a thread of pool: args are copied (or
/// moved) into the awaitable and passed to work as lvalues.
template <class Work, class Arg, class... Args>
[[nodiscard]] auto offload(WorkPool& pool, Loop& loop, Work&& work, Arg&& arg, Args&&... args) {
  // Built here, outside the caller's coroutine (see the g++ 12 note above).
  auto bound = [work = std::decay_t<Work>(std::forward<Work>(work)), arg = std::decay_t<Arg>(std::forward<Arg>(arg)),
                ... args = std::decay_t<Args>(std::forward<Args>(args))]() mutable {
    return std::invoke(work, arg, args...);
  };
  return detail::OffloadAwaitable<decltype(bound)>(pool, loop, std::move(bound));
}

}  // namespace evw
