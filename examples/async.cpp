// Minimal example of evw::Async: a worker thread hands results to the loop
// through a queue, waking it with send().
#include <evw/core/loop.hpp>
#include <evw/watchers/async.hpp>

#include <chrono>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

constexpr int kJobs = 5;
constexpr auto kWorkTime = std::chrono::milliseconds(50);

int main() {
  evw::Loop loop;
  std::mutex mutex;
  std::deque<long> results;  // guarded by mutex
  int received = 0;

  // send() coalesces: drain everything that is queued on each call.
  evw::Async inbox(loop, [&](evw::Async& w, int) {
    std::deque<long> batch;
    {
      std::lock_guard lock(mutex);
      batch.swap(results);
    }
    for (long r : batch) std::printf("loop thread got %ld (result %d of %d)\n", r, ++received, kJobs);
    if (received == kJobs) w.stop();  // nothing left active: run() returns
  });
  inbox.start();  // before the worker may send

  std::thread worker([&] {
    for (long n = 1; n <= kJobs; ++n) {
      std::this_thread::sleep_for(kWorkTime);  // "work"
      {
        std::lock_guard lock(mutex);
        results.push_back(n * n);
      }
      inbox.send();  // the one thread-safe call
    }
  });

  loop.run();
  worker.join();
  std::printf("worker done, %d results\n", received);
}
