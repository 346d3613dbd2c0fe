// evw::LoopThread — a Loop running on its own std::jthread: one loop per
// thread is how a program uses several cores.
//
//   evw::LoopThread worker;                       // the thread runs worker's loop
//   worker.post([&] { worker.loop().add<evw::Timer>(1s, 1s, cb).start(); });
//   worker.stop();                                // or let the destructor do it
//   worker.join();                                // rethrows what escaped run()
//
// The thread runs loop().run() until stop() (or a callback's loop().stop(),
// or an exception); it keeps running with no active watcher, waiting for
// posts. Then the thread destroys the loop, on itself: loop-owned watchers go
// with it, user-owned ones become detached, posts still queued are destroyed
// without running, and post() returns false from then on.
//
// Caveats: create watchers and touch loop() only on the loop's thread — in a
// posted function or a callback; other threads post(). An exception that
// escapes run() ends the thread and is rethrown by join(); the destructor
// stops and joins, and drops such an exception if join() did not take it.
#pragma once

#include <exception>
#include <memory>
#include <thread>
#include <utility>

#include "events.hpp"
#include "loop.hpp"
#include "loop_handle.hpp"

namespace evw {

/// A Loop with its own thread.
class LoopThread {
 public:
  /// @brief Create the loop and start the thread that runs it.
  /// @param flags as for Loop (LoopFlag::Auto, Backend bits, ...).
  /// @throws std::system_error if the loop or the thread cannot be created.
  explicit LoopThread(unsigned flags = LoopFlag::Auto);
  /// @brief stop() and join(); an exception join() would rethrow is dropped.
  ~LoopThread();
  LoopThread(const LoopThread&) = delete;
  LoopThread& operator=(const LoopThread&) = delete;

  /// @brief Have fn() called on the loop's thread (Loop::post). Thread-safe.
  /// @return false once the thread has ended (fn is then destroyed).
  /// @throws std::invalid_argument if fn is empty; std::bad_alloc.
  template <class F>
  bool post(F&& fn) const {
    return handle_.post(std::forward<F>(fn));
  }
  /// @brief A handle to the loop, valid (post() returns false) after it ended.
  LoopHandle handle() const { return handle_; }
  /// @brief The loop, for code on its thread (posted functions, callbacks).
  /// @throws std::logic_error once the thread has ended and destroyed it.
  Loop& loop() const;
  /// @brief Ask the thread to end: run() returns once what was posted before
  /// has run. Thread-safe, idempotent, also from the loop's own thread.
  void stop() noexcept;
  /// @brief Wait for the thread to end (at once if it has), then rethrow an
  /// exception that escaped run(), once. Not from the loop's own thread.
  /// @throws what escaped run(); std::system_error (resource_deadlock_would_occur)
  ///         from the loop's own thread.
  void join();
  /// @brief The thread's id (std::thread::id{} once joined).
  std::thread::id id() const noexcept { return thread_.get_id(); }

 private:
  void body(std::stop_token token);

  std::unique_ptr<Loop> loop_;  // destroyed by the thread as it ends
  LoopHandle handle_;
  std::exception_ptr error_;  // what escaped run(); written by the thread before it ends
  std::jthread thread_;       // last: starts once the rest exists
};

}  // namespace evw
