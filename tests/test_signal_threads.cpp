// Signal threads: one signal watched by loops on several threads at once,
// while they start and stop watchers of it (TSan-clean); the disposition
// comes back when the last watcher anywhere stops.
#include <evw/watchers/signal.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace {

void on_usr2(int) {}

// A loop on its own thread with one steady watcher of signum, which counts
// and acknowledges each delivery, and a second watcher a timer keeps
// starting, stopping, re-prioritising and moving between signals.
struct SignalLoop {
  evw::Loop loop;
  std::atomic<int> steady{0};  // calls of the steady watcher
  std::atomic<long> toggles{0};
  std::atomic<bool> ready{false};
  std::thread thread;

  SignalLoop(int signum, int other, std::mutex& mutex, std::condition_variable& acked)
      : thread([this, signum, other, &mutex, &acked] {
          evw::Signal s(loop, signum, [&](evw::Signal&, int revents) {
            CHECK(revents == evw::Event::Signal);
            {
              std::lock_guard lock(mutex);
              steady.fetch_add(1);
            }
            acked.notify_all();
          });
          evw::Signal churn(loop, signum, [](evw::Signal&, int) {});
          evw::Timer timer(loop, 0.0001, 0.0001, [&](evw::Timer&, int) {
            switch (toggles.fetch_add(1) % 4) {
              case 0: churn.start(); break;
              case 1: churn.set_priority(churn.priority() == 0 ? 1 : 0); break;
              case 2: churn.set(churn.signum() == signum ? other : signum); break;
              default: churn.stop(); break;
            }
          });
          s.start();
          timer.start();
          ready = true;
          loop.run();  // until the test posts loop.stop()
        }) {}
};

}  // namespace

TEST_CASE("Signal threads: a signal watched by 4 loops on 4 threads while they start and stop watchers") {
  constexpr int kLoops = 4;
  constexpr int kRounds = 200;
  struct sigaction mine {}, old {}, now {};
  mine.sa_handler = on_usr2;
  ::sigaction(SIGUSR2, &mine, &old);
  std::mutex mutex;
  std::condition_variable acked;
  {
    std::vector<std::unique_ptr<SignalLoop>> loops;
    for (int i = 0; i < kLoops; ++i) loops.push_back(std::make_unique<SignalLoop>(SIGUSR2, SIGUSR1, mutex, acked));
    for (auto& l : loops)
      while (!l->ready) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    int lost = 0;
    for (int round = 1; round <= kRounds && lost == 0; ++round) {
      REQUIRE(::kill(::getpid(), SIGUSR2) == 0);  // to the process: any thread may run the handler
      // Each steady watcher is called exactly once for this delivery before the next one.
      std::unique_lock lock(mutex);
      if (!acked.wait_for(lock, std::chrono::seconds(10), [&] {
            for (auto& l : loops)
              if (l->steady < round) return false;
            return true;
          }))
        ++lost;
      for (auto& l : loops) CHECK(l->steady == round);
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // the watchers churn meanwhile
    }
    CHECK(lost == 0);
    for (auto& l : loops) {
      CHECK(l->loop.handle().post([&loop = l->loop] { loop.stop(evw::Break::All); }));
      l->thread.join();
      CHECK(l->steady == kRounds);
      MESSAGE("a loop toggled its second watcher " << l->toggles.load() << " times");
    }
  }
  // Every watcher stopped: the disposition from before the test is back.
  ::sigaction(SIGUSR2, nullptr, &now);
  CHECK((now.sa_handler == on_usr2));
  ::sigaction(SIGUSR2, &old, nullptr);
}

TEST_CASE("Signal threads: watchers started and stopped on many threads leave the disposition as it was") {
  struct sigaction mine {}, old {}, now {};
  mine.sa_handler = on_usr2;
  ::sigaction(SIGUSR1, &mine, &old);
  std::vector<std::thread> threads;
  std::atomic<int> calls{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        evw::Loop loop;
        evw::Signal s(loop, SIGUSR1, [&](evw::Signal&, int) { ++calls; });
        s.start();
        if (i % 10 == 0) {
          ::raise(SIGUSR1);  // this thread runs the handler: its own loop is woken
          loop.run(evw::Run::NoWait);
        }
      }
    });
  for (auto& t : threads) t.join();
  CHECK(calls >= 80);  // each thread's own raise reaches its own loop (others' may add)
  ::sigaction(SIGUSR1, nullptr, &now);
  CHECK((now.sa_handler == on_usr2));
  ::sigaction(SIGUSR1, &old, nullptr);
}
