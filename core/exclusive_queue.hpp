// Internal (not installed): the kernel queue of a loop's PollMode::Exclusive
// registrations, and the thread that sleeps on it.
//
// Why a thread: EPOLLEXCLUSIVE thins the herd only for a thread asleep in
// epoll_wait on the very epoll that holds the exclusive registration. The
// kernel's wakeup walks the watched file's waiters and stops at the first
// exclusive one whose epoll has a sleeper; an epoll that is itself polled
// (nested, as the side-queue is in libev's epoll) has none, so the walk goes
// on and every loop wakes. So a loop's exclusive fds live in an epoll of
// their own, not nested anywhere, and one small thread per loop sleeps on it:
//
//   waiter: epoll_wait(queue, -1) -> publish the records -> ev_async_send
//           -> wait until the loop has dispatched them (resume) -> again
//   loop:   async callback -> take() -> deliver like the side-queue's
//           records -> in the next prepare (every callback has run) resume()
//
// While the loop is busy its waiter is not in epoll_wait, so the kernel
// passes the next connection on to another loop's sleeping waiter: one loop
// wakes per connection. The waiter never calls user code and takes no lock;
// the handshake is one atomic flag and two eventfds, so a fork() at any
// moment leaves the child nothing locked (abandon()).
#pragma once

#include <ev.h>
#include <pthread.h>

#include <atomic>

#include "backend.hpp"

namespace evw::detail {

class ExclusiveQueue {
 public:
  static constexpr int kBatch = 64;
  using Ready = ExceptBackend::Ready;

  /// A new queue and its waiter, which wakes the loop through async
  /// (started, of the same loop). @throws std::system_error (no descriptor,
  /// no thread).
  ExclusiveQueue(struct ev_loop* loop, ev_async* async);
  /// Stops and joins the waiter; closes the queue.
  ~ExclusiveQueue();
  ExclusiveQueue(const ExclusiveQueue&) = delete;
  ExclusiveQueue& operator=(const ExclusiveQueue&) = delete;

  /// The kernel queue, for add/modify/remove. Every change must be
  /// followed by changed(), before the loop looks at records again.
  ExceptBackend& backend() noexcept { return backend_; }
  /// A registration was added, changed or removed: records the waiter
  /// captured before can no longer be told from stale ones (see take()).
  void changed() noexcept { epoch_.fetch_add(1, std::memory_order_acq_rel); }

  /// The records the waiter published, copied to out (at most kBatch);
  /// 0 if none (a spurious async), -errno if its epoll_wait failed.
  /// *exact is false if a registration changed since the waiter started
  /// that epoll_wait: then a record nobody owns may be an old one, not a
  /// stale registration.
  int take(Ready* out, bool* exact) noexcept;
  /// After take(): the waiter may poll again. Does nothing otherwise.
  void resume() noexcept;
  /// In a forked child, where the waiter does not exist: forget the thread
  /// (its stack, kStack bytes, stays mapped), so that the destructor only
  /// closes the descriptors. Nothing here is locked: a fork at any moment
  /// leaves the object destroyable.
  void abandon() noexcept;

 private:
  static void* main(void* self) noexcept;
  void wait_loop() noexcept;
  void stop() noexcept;

  static constexpr std::size_t kStack = 64 * 1024;
  // The stop eventfd's record: no fd has this number, and no tag is 0 (kNoTag).
  static constexpr std::uint64_t kStopData = ~std::uint64_t{0} >> 32;

  ExceptBackend backend_;
  struct ev_loop* loop_;
  ev_async* async_;
  int stop_fd_ = -1;    // in the queue: wakes the waiter to exit
  int resume_fd_ = -1;  // the waiter blocks reading it until resume()
  pthread_t thread_{};
  bool running_ = false;
  bool taken_ = false;  // loop side: a batch was taken and not yet resumed
  std::atomic<bool> published_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<unsigned> epoch_{0};
  // Written by the waiter before published_ (release), read by the loop after (acquire).
  int count_ = 0;
  unsigned captured_epoch_ = 0;
  Ready ready_[kBatch];
};

}  // namespace evw::detail
