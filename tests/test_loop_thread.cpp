// LoopThread: a Loop on its own std::jthread — posts run there, it waits for
// posts with nothing active, stop/join end it, an exception that escapes
// run() comes out of join(), and start/stop/join cycles are TSan-clean.
#include <evw/core/loop_thread.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

TEST_CASE("LoopThread: posts run on its own thread, which waits for them with nothing active") {
  evw::LoopThread worker;
  std::promise<std::thread::id> ran_on;
  CHECK(worker.post([&] { ran_on.set_value(std::this_thread::get_id()); }));
  const std::thread::id id = ran_on.get_future().get();
  CHECK(id == worker.id());
  CHECK(id != std::this_thread::get_id());
  // No watcher is active, yet the thread still runs posts a while later.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::promise<std::size_t> count;
  CHECK(worker.post([&] { count.set_value(worker.loop().watcher_count()); }));
  CHECK(count.get_future().get() == 0);
  worker.stop();
  worker.join();
  CHECK_FALSE(worker.post([] {}));  // the thread ended and destroyed its loop
  CHECK_THROWS_AS(worker.loop(), std::logic_error);
  worker.join();  // again: nothing to wait for, nothing to rethrow
}

TEST_CASE("LoopThread: watchers on its loop run there; stop() lets queued posts run first") {
  evw::LoopThread worker;
  std::atomic<int> ticks{0};
  std::atomic<int> after_stop{0};
  std::promise<void> three;
  worker.post([&] {
    auto& t = worker.loop().add<evw::Timer>(0.001, 0.001, [&](evw::Timer& w, int) {
      if (++ticks == 3) {
        w.stop();
        three.set_value();
      }
    });
    t.start();
  });
  three.get_future().wait();
  worker.post([&] { ++after_stop; });
  worker.stop();  // posted after the one above: that one runs first
  worker.join();
  CHECK(ticks == 3);
  CHECK(after_stop == 1);
}

TEST_CASE("LoopThread: an exception that escapes run() ends the thread and is rethrown by join()") {
  evw::LoopThread worker;
  evw::LoopHandle h = worker.handle();
  worker.post([] { throw std::runtime_error("from the loop thread"); });
  try {
    worker.join();
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "from the loop thread");
  }
  CHECK_FALSE(h.post([] {}));
  CHECK_NOTHROW(worker.join());  // rethrown once
}

TEST_CASE("LoopThread: a callback's loop().stop() ends the thread too; the destructor stops and joins") {
  {
    evw::LoopThread worker;
    worker.post([&] { worker.loop().stop(); });
    worker.join();
    CHECK_FALSE(worker.post([] {}));
  }
  {
    evw::LoopThread worker;  // destroyed running: stop + join
    worker.post([] {});
  }
  {
    evw::LoopThread worker;  // an exception nobody joined for is dropped by the destructor
    worker.post([] { throw 1; });
  }
}

TEST_CASE("LoopThread: 100 start/stop/join cycles with posters on two threads") {
  constexpr int kCycles = 100;
  long ran_total = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    std::atomic<long> ran{0}, accepted{0};
    {
      evw::LoopThread worker;
      std::atomic<bool> go{false};
      std::vector<std::thread> posters;
      for (int t = 0; t < 2; ++t)
        posters.emplace_back([&, h = worker.handle()] {
          while (!go) std::this_thread::yield();
          for (int i = 0; i < 200; ++i)
            if (h.post([&ran] { ++ran; })) ++accepted;
        });
      go = true;
      if (cycle % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
      worker.stop();
      worker.join();
      for (auto& t : posters) t.join();
    }
    CHECK(ran <= accepted);
    ran_total += ran;
  }
  MESSAGE("LoopThread cycles: " << ran_total << " posts ran before their thread stopped");
}
