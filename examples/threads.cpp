// Minimal example of evw::WorkPool: blocking work on pool threads, each result
// posted back to the loop's thread, where the program keeps its state.
#include <evw/evw.hpp>

#include <cstdio>
#include <map>
#include <stdexcept>
#include <thread>

constexpr int kJobs = 8;
constexpr unsigned kThreads = 3;
constexpr long kLimit = 200000;  // each job counts the primes below kLimit * (job + 1)

// "Work": CPU-heavy and blocking, so not for the loop's thread.
long count_primes(long below) {
  if (below > 1500000) throw std::range_error("too big for this demo");
  long count = 0;
  for (long n = 2; n < below; ++n) {
    bool prime = true;
    for (long d = 2; d * d <= n && prime; ++d) prime = n % d != 0;
    count += prime;
  }
  return count;
}

int main() {
  evw::Loop loop;
  evw::WorkPool pool(kThreads);
  std::map<long, long> primes;  // touched only on the loop's thread: no lock
  int failed = 0;

  for (int job = 0; job < kJobs; ++job) {
    const long below = kLimit * (job + 1);
    pool.submit(
        loop, [below] { return count_primes(below); },  // on a pool thread
        [&, below](evw::Result<long> r) {              // back on the loop's thread
          if (r) {
            primes[below] = *r;
            std::printf("loop thread: %ld primes below %ld\n", *r, below);
          } else {
            ++failed;
            try {
              r.value();
            } catch (const std::exception& e) {
              std::printf("loop thread: job for %ld failed: %s\n", below, e.what());
            }
          }
        });
  }
  // Nothing but the work in flight is active: run() returns when every
  // result has come back.
  loop.run();
  std::printf("%zu results, %d failed, on %u pool threads\n", primes.size(), failed, pool.size());
  return primes.size() + failed == kJobs ? 0 : 1;
}
