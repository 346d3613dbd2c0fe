#include "work_pool.hpp"

#include <algorithm>
#include <stdexcept>

namespace evw {

WorkPool::WorkPool(unsigned threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads_.reserve(threads);
  try {
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { worker(); });
  } catch (...) {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    threads_.clear();  // joins the ones started
    throw;
  }
}

WorkPool::~WorkPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  threads_.clear();  // each thread ends once the queue is empty
}

void WorkPool::enqueue(detail::Function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw std::logic_error("evw::WorkPool::submit: the pool is being destroyed");
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void WorkPool::worker() {
  for (;;) {
    detail::Function<void()> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    // The work's own exceptions are in its Result; what is left (bad_alloc
    // while posting done) has nowhere to go on a pool thread.
    try {
      job();
    } catch (...) {
    }
  }
}

}  // namespace evw
