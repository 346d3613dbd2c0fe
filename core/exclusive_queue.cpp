// The waiter of a loop's exclusive registrations (see exclusive_queue.hpp).
#include "exclusive_queue.hpp"

#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "access.hpp"
#include "sys.hpp"

namespace evw::detail {

ExclusiveQueue::ExclusiveQueue(struct ev_loop* loop, ev_async* async) : loop_(loop), async_(async) {
  try {
    stop_fd_ = sys::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0) throw_system(errno, "evw::Poll: eventfd for the loop's exclusive queue");
    resume_fd_ = sys::eventfd(0, EFD_CLOEXEC);  // blocking: the waiter sleeps in read()
    if (resume_fd_ < 0) throw_system(errno, "evw::Poll: eventfd for the loop's exclusive queue");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kStopData;
    if (sys::retry_eintr([&] { return sys::epoll_ctl(backend_.pollable_fd(), EPOLL_CTL_ADD, stop_fd_, &ev); }) != 0)
      throw_system(errno, "evw::Poll: EPOLL_CTL_ADD of the exclusive queue's eventfd");
    // A small stack (the waiter only polls), and every signal blocked: a
    // process-directed signal must go to a thread that handles it.
    pthread_attr_t attr;
    if (int err = pthread_attr_init(&attr); err != 0) throw_system(err, "evw::Poll: pthread_attr_init");
    pthread_attr_setstacksize(&attr, kStack);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    const int err = pthread_create(&thread_, &attr, &ExclusiveQueue::main, this);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    pthread_attr_destroy(&attr);
    if (err != 0) throw_system(err, "evw::Poll: cannot start the thread of the loop's exclusive queue");
    running_ = true;
  } catch (...) {
    if (stop_fd_ >= 0) sys::close(stop_fd_);
    if (resume_fd_ >= 0) sys::close(resume_fd_);
    throw;
  }
}

ExclusiveQueue::~ExclusiveQueue() {
  stop();
  sys::close(stop_fd_);
  sys::close(resume_fd_);
}

void ExclusiveQueue::stop() noexcept {
  if (!running_) return;
  stopping_.store(true, std::memory_order_release);
  const std::uint64_t one = 1;
  // The waiter is in epoll_wait (the stop eventfd wakes it) or in read()
  // (resume_fd_ does). libc, not the fault seam: these must not fail.
  while (::write(stop_fd_, &one, sizeof one) < 0 && errno == EINTR) {}
  while (::write(resume_fd_, &one, sizeof one) < 0 && errno == EINTR) {}
  pthread_join(thread_, nullptr);
  running_ = false;
}

void ExclusiveQueue::abandon() noexcept {
  running_ = false;  // no thread in this process: nothing to stop or join
}

void* ExclusiveQueue::main(void* self) noexcept {
  static_cast<ExclusiveQueue*>(self)->wait_loop();
  return nullptr;
}

// The waiter. It calls libc directly: the fault seam is for the loop's thread.
void ExclusiveQueue::wait_loop() noexcept {
  for (;;) {
    // Read before sleeping: a change after this may make a record old (take()).
    const unsigned epoch = epoch_.load(std::memory_order_acquire);
    int n = ::epoll_wait(backend_.pollable_fd(), ready_, kBatch, -1);
    if (stopping_.load(std::memory_order_acquire)) return;
    if (n < 0) {
      if (errno == EINTR) continue;
      n = -errno;  // reported by run(); the waiter polls again after resume()
    } else {
      int kept = 0;
      for (int i = 0; i < n; ++i)
        if (ready_[i].data.u64 != kStopData) ready_[kept++] = ready_[i];
      if (kept == 0) continue;
      n = kept;
    }
    count_ = n;
    captured_epoch_ = epoch;
    published_.store(true, std::memory_order_release);
    ev_async_send(loop_, async_);
    std::uint64_t value;
    while (::read(resume_fd_, &value, sizeof value) < 0 && errno == EINTR) {}
    if (stopping_.load(std::memory_order_acquire)) return;
  }
}

int ExclusiveQueue::take(Ready* out, bool* exact) noexcept {
  if (!published_.load(std::memory_order_acquire)) return 0;
  published_.store(false, std::memory_order_relaxed);  // the waiter writes nothing until resume()
  taken_ = true;
  *exact = captured_epoch_ == epoch_.load(std::memory_order_relaxed);
  if (count_ > 0) std::memcpy(out, ready_, sizeof(Ready) * static_cast<std::size_t>(count_));
  return count_;
}

void ExclusiveQueue::resume() noexcept {
  if (!taken_) return;
  taken_ = false;
  const std::uint64_t one = 1;
  while (::write(resume_fd_, &one, sizeof one) < 0 && errno == EINTR) {}
}

}  // namespace evw::detail
