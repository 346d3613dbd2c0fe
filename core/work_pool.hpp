// evw::WorkPool — threads for blocking or CPU-heavy work whose result goes
// back to a loop.
//
//   evw::WorkPool pool(4);
//   pool.submit(loop,
//               [path] { return checksum(path); },                  // on a pool thread
//               [](evw::Result<std::uint32_t> r) { show(r.value()); });  // on the loop's thread
//
// submit() queues the work; a free pool thread runs it (in submission order)
// and posts done(result) to the loop (Loop::post), with the value or the
// exception the work threw (evw::Result). An exception from done comes out of
// the loop's run(). From coroutines: co_await evw::offload(pool, loop, work)
// (<evw/coro/offload.hpp>).
//
// submit(loop, ...) is called on the loop's thread, and until done has run the
// submission keeps the loop's run() going, as an active watcher does.
// submit(handle, ...) may be called from any thread and does not.
//
// Caveats: if the loop is gone when the work ends, done is destroyed without
// being called, on the pool thread (with the result). Work runs on another
// thread: it must not touch the loop or its watchers; done may. ~WorkPool
// runs the work already submitted, then joins: work must end by itself.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "function.hpp"
#include "loop.hpp"
#include "loop_handle.hpp"
#include "result.hpp"

namespace evw {

/// A fixed set of threads running submitted work.
class WorkPool {
 public:
  /// @brief Start `threads` threads (0: one per CPU, at least one).
  /// @throws std::system_error if a thread cannot be started.
  explicit WorkPool(unsigned threads = 0);
  /// @brief Run what was submitted, then join the threads.
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  /// @brief Run work() on a pool thread, then done(evw::Result<R>) on the
  /// loop's thread, R being what work returns (void too). Call on the loop's
  /// thread; until done runs, run() keeps going.
  /// @throws std::logic_error once the pool is being destroyed; std::bad_alloc.
  template <class Work, class Done>
  void submit(Loop& loop, Work&& work, Done&& done) {
    using R = std::invoke_result_t<std::decay_t<Work>&>;
    submit(loop.handle(), std::forward<Work>(work),
           [hold = detail::LoopHold(loop.handle()), done = std::decay_t<Done>(std::forward<Done>(done))](
               Result<R> result) mutable {
             hold.reset();
             done(std::move(result));
           });
  }
  /// @brief The same from any thread, through a handle; does not keep the
  /// loop's run() going. If the loop is gone when the work ends, done is
  /// destroyed unrun.
  template <class Work, class Done>
  void submit(const LoopHandle& loop, Work&& work, Done&& done) {
    using W = std::decay_t<Work>;
    using D = std::decay_t<Done>;
    using R = std::invoke_result_t<W&>;
    static_assert(std::is_invocable_v<D&, Result<R>>,
                  "evw::WorkPool::submit: done must be callable as done(evw::Result<R>), R being what work returns");
    enqueue([loop, work = W(std::forward<Work>(work)), done = D(std::forward<Done>(done))]() mutable {
      Result<R> result = Result<R>::capture(work);
      loop.post([done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
    });
  }
  /// @brief The number of threads.
  unsigned size() const noexcept { return static_cast<unsigned>(threads_.size()); }

 private:
  void enqueue(detail::Function<void()> job);
  void worker();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<detail::Function<void()>> jobs_;  // guarded by mutex_
  bool stopping_ = false;                      // guarded
  std::vector<std::jthread> threads_;
};

}  // namespace evw
