// Async: send() from the loop thread and from 8 threads x 100,000 sends with
// every burst acknowledged (no lost wakeup; TSan-clean), sends while stopped,
// set_priority on pending/sent watchers, priorities, destruction in
// callbacks, detaching.
#include <evw/watchers/async.hpp>
#include <evw/core/loop.hpp>
#include <evw/watchers/timer.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "support.hpp"

TEST_CASE("Async send() from the loop's own thread calls back once") {
  evw::Loop loop;
  int calls = 0, last = 0;
  evw::Async async(loop, [&](evw::Async& w, int revents) {
    ++calls;
    last = revents;
    CHECK_FALSE(w.async_pending());
  });
  async.start();
  CHECK_FALSE(async.async_pending());
  async.send();
  async.send();  // coalesced with the first
  CHECK(async.async_pending());
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  CHECK(last == evw::Event::Async);
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  async.stop();
}

TEST_CASE("Async: 8 threads x 100,000 sends, every burst observed, nothing lost") {
  constexpr int kThreads = 8;
  constexpr int kSends = 100000;
  constexpr int kBurst = 1000;  // sends before a thread waits for the loop's acknowledgement
  constexpr std::uint64_t kTotal = std::uint64_t{kThreads} * kSends;

  evw::Loop loop;
  std::atomic<std::uint64_t> produced{0};
  std::mutex mutex;
  std::condition_variable acked;
  std::uint64_t consumed = 0;  // guarded by mutex
  std::uint64_t callbacks = 0;
  std::atomic<int> stuck{0};

  evw::Async async(loop, [&](evw::Async&, int) {
    ++callbacks;
    // Everything produced before the send that woke us is visible here.
    std::uint64_t seen = produced.load(std::memory_order_acquire);
    {
      std::lock_guard lock(mutex);
      CHECK(seen >= consumed);
      consumed = seen;
    }
    acked.notify_all();
    if (seen == kTotal) loop.stop();
  });
  evw::Timer watchdog(loop, 120.0, 0.0, [&](evw::Timer&, int) { loop.stop(); });
  async.start();
  watchdog.start();

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int burst = 0; burst < kSends / kBurst; ++burst) {
        std::uint64_t mine = 0;
        for (int i = 0; i < kBurst; ++i) {
          mine = produced.fetch_add(1, std::memory_order_release) + 1;
          async.send();
        }
        // The loop must acknowledge this burst: a lost wakeup would hang here.
        std::unique_lock lock(mutex);
        if (!acked.wait_for(lock, std::chrono::seconds(60), [&] { return consumed >= mine; })) {
          ++stuck;
          return;
        }
      }
    });
  }
  loop.run();
  for (auto& t : threads) t.join();

  CHECK(stuck == 0);
  CHECK(produced == kTotal);
  CHECK(consumed == kTotal);
  CHECK(callbacks >= 1);
  CHECK(callbacks <= kTotal);
  MESSAGE("Async: " << kTotal << " sends woke the loop " << callbacks << " times");
  async.stop();
  watchdog.stop();
}

TEST_CASE("Async send() to a stopped watcher is delivered by its next start()") {
  evw::Loop loop;
  int calls = 0;
  evw::Async async(loop, [&](evw::Async&, int) { ++calls; });
  async.send();
  loop.run(evw::Run::NoWait);
  CHECK(calls == 0);
  async.start();
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  async.stop();
}

TEST_CASE("Async set_priority keeps a pending event and a send not yet seen") {
  evw::Loop loop;
  int calls = 0;
  evw::Async async(loop, [&](evw::Async&, int) { ++calls; });
  async.start();
  async.feed(evw::Event::Async);
  async.set_priority(1);
  CHECK(async.is_pending());
  CHECK(async.is_active());
  loop.run(evw::Run::NoWait);
  CHECK(calls == 1);
  async.send();
  async.set_priority(-1);  // stops and restarts the libev watcher
  loop.run(evw::Run::NoWait);
  CHECK(calls == 2);
  loop.run(evw::Run::NoWait);
  CHECK(calls == 2);
  async.stop();
}

TEST_CASE("Async priorities order its events among other watcher types") {
  for (int pri : {1, -1}) {
    evw::Loop loop;
    std::vector<int> order;
    evw::Async a(loop, [&](evw::Async&, int) { order.push_back(0); });
    evw::Timer t(loop, 0.0, 0.0, [&](evw::Timer&, int) { order.push_back(1); });
    a.set_priority(pri);
    a.start();
    t.start();
    a.send();
    loop.run(evw::Run::Once);
    // libev turns the send into an event while dispatching the iteration's
    // expired timer (by feeding it): priorities still decide the order.
    CHECK(order == (pri > 0 ? std::vector<int>{0, 1} : std::vector<int>{1, 0}));
    a.stop();
  }
}

TEST_CASE("Async user data and destruction inside its own callback") {
  evw::Loop loop;
  int seen = 0;
  std::unique_ptr<evw::Async> self;
  self = std::make_unique<evw::Async>(loop, [&](evw::Async& w, int) {
    seen = std::any_cast<int>(w.data());
    self.reset();
  });
  self->data() = 6;
  self->start();
  std::thread([&] { self->send(); }).join();
  CHECK_FALSE(loop.run());
  CHECK(seen == 6);
  CHECK(loop.watcher_count() == 0);
}

TEST_CASE("an Async whose loop is destroyed while active becomes detached") {
  auto loop = std::make_unique<evw::Loop>();
  evw::Async async(*loop, [](evw::Async&, int) {});
  async.start();
  async.send();
  loop.reset();
  CHECK_FALSE(async.is_attached());
  CHECK_FALSE(async.is_active());
  CHECK_THROWS_AS(async.start(), std::logic_error);
  CHECK_THROWS_AS(async.send(), std::logic_error);
}

TEST_CASE("a loop-owned Async active when its loop is destroyed is destroyed with it") {
  auto loop = std::make_unique<evw::Loop>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> alive = token;
  auto& owned = loop->add<evw::Async>([token](evw::Async&, int) {});
  owned.start();
  owned.feed(evw::Event::Async);  // active and pending
  token.reset();
  REQUIRE_FALSE(alive.expired());  // held by the watcher's callback
  loop.reset();
  CHECK(alive.expired());
}
