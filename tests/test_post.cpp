// post: Loop::post and LoopHandle::post — the loop's thread runs posted
// functions in its next iteration, in each thread's order, exactly once;
// 8 threads x 100,000 posts (TSan-clean); no allocation per post in the
// steady state; exceptions come out of run() and lose nothing; posts queued
// without a run(); a blocked loop is woken; the internal wakeup keeps nothing
// alive; destruction with posts queued and racing with posters.
#include <evw/core/loop.hpp>
#include <evw/core/loop_handle.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support.hpp"

// ---- counting allocations (not under sanitizers, which own operator new) ----

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define EVW_TEST_COUNT_ALLOCS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define EVW_TEST_COUNT_ALLOCS 0
#endif
#endif
#ifndef EVW_TEST_COUNT_ALLOCS
#define EVW_TEST_COUNT_ALLOCS 1
#endif

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

#if EVW_TEST_COUNT_ALLOCS
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // these new and delete are malloc and free
#endif
// The whole test binary allocates through these while this file is linked in;
// they count only while g_counting is set.
void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return ::operator new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return ::operator new(n, std::nothrow); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
#endif

namespace {

using evw_test::run_until;

// Counts its constructions (also by move) and destructions, and its runs.
struct Probe {
  static std::atomic<long> made, gone, runs;
  Probe() { ++made; }
  Probe(Probe&&) noexcept { ++made; }
  Probe(const Probe&) { ++made; }
  Probe& operator=(const Probe&) = delete;
  ~Probe() { ++gone; }
  static void reset() { made = gone = runs = 0; }
};
std::atomic<long> Probe::made{0}, Probe::gone{0}, Probe::runs{0};

}  // namespace

TEST_CASE("post: fn runs on the loop's thread in its next iteration, also when posted from that thread") {
  evw::Loop loop;
  std::vector<int> order;
  std::thread::id ran_on;
  CHECK(loop.post([&] { order.push_back(1); }));
  CHECK(loop.post([&] {
    order.push_back(2);
    ran_on = std::this_thread::get_id();
    loop.post([&] { order.push_back(4); });  // from inside: the next iteration
  }));
  CHECK(loop.handle().post([&] { order.push_back(3); }));
  CHECK(order.empty());  // nothing runs inside post()
  const unsigned before = loop.iteration();
  loop.run(evw::Run::NoWait);
  CHECK(order == std::vector<int>{1, 2, 3});
  CHECK(ran_on == std::this_thread::get_id());
  CHECK(loop.iteration() == before + 1);
  loop.run(evw::Run::NoWait);
  CHECK(order == std::vector<int>{1, 2, 3, 4});
  CHECK_THROWS_AS(loop.post(static_cast<void (*)()>(nullptr)), std::invalid_argument);
  CHECK(loop.watcher_count() == 0);  // the wakeup is not a watcher
}

// (At max_priority itself, libev's order decides: within a priority it runs
// the last event queued first.)
TEST_CASE("post: posted functions run before the iteration's user callbacks below max_priority") {
  evw::Loop loop;
  std::vector<int> order;
  evw::Timer t(loop, 0.0, 0.0, [&](evw::Timer&, int) { order.push_back(2); });
  t.set_priority(evw::max_priority - 1);
  t.start();
  loop.post([&] { order.push_back(1); });
  loop.run(evw::Run::Once);
  CHECK(order == std::vector<int>{1, 2});
}

TEST_CASE("post: the wakeup keeps nothing alive; run() with only posts runs them, also what they post") {
  evw::Loop loop;
  CHECK_FALSE(loop.run());  // nothing active, nothing posted: returns at once
  int ran = 0;
  // Posted while no run() is in progress: the next run() runs it.
  std::thread([&] { loop.handle().post([&] { ++ran; }); }).join();
  CHECK(ran == 0);
  CHECK_FALSE(loop.run());
  CHECK(ran == 1);
  // A chain of posts, each posting the next: run() goes on until the queue is empty.
  std::function<void()> next = [&] {
    if (++ran < 10) loop.post(next);
  };
  loop.post(next);
  CHECK_FALSE(loop.run());
  CHECK(ran == 10);
  // A stop() from a post ends run() although more is queued; the next run() runs it.
  loop.post([&] {
    loop.stop();
    loop.post([&] { ++ran; });
  });
  CHECK_FALSE(loop.run());
  CHECK(ran == 10);
  loop.run();
  CHECK(ran == 11);
}

TEST_CASE("post: wakes a loop blocked in run()") {
  evw::Loop loop;
  bool timed_out = false;
  evw::Timer far(loop, 30.0, 0.0, [&](evw::Timer&, int) { timed_out = true; });
  far.start();
  std::thread::id ran_on;
  const auto t0 = std::chrono::steady_clock::now();
  std::thread poster([h = loop.handle(), &ran_on, &far] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the loop is blocked by then
    h.post([&] {
      ran_on = std::this_thread::get_id();
      far.stop();  // nothing left: run() returns
    });
  });
  loop.run();
  poster.join();
  CHECK_FALSE(timed_out);
  CHECK(ran_on == std::this_thread::get_id());
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
}

TEST_CASE("post: 8 threads x 100,000 posts, each runs exactly once, each thread's order kept") {
  constexpr int kThreads = 8;
  constexpr int kPosts = 100000;
  constexpr std::int64_t kTotal = std::int64_t{kThreads} * kPosts;
  evw::Loop loop;
  std::vector<int> next(kThreads, 0);  // loop thread only: the next index expected per thread
  std::int64_t ran = 0, out_of_order = 0;
  // Something active keeps run() going until the last post stops it.
  evw::Timer watchdog(loop, 120.0, 0.0, [&](evw::Timer&, int) { loop.stop(); });
  watchdog.start();
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t, h = loop.handle()] {
      while (!go) std::this_thread::yield();
      for (int i = 0; i < kPosts; ++i)
        h.post([&, t, i] {  // three words: stored in place
          if (next[t] != i) ++out_of_order;
          next[t] = i + 1;
          if (++ran == kTotal) watchdog.stop();
        });
    });
  go = true;
  loop.run();
  for (auto& t : threads) t.join();
  loop.run(evw::Run::NoWait);  // nothing may be left
  CHECK(ran == kTotal);
  CHECK(out_of_order == 0);
  for (int t = 0; t < kThreads; ++t) CHECK(next[t] == kPosts);
}

#if EVW_TEST_COUNT_ALLOCS
TEST_CASE("post: no allocation per post once the queue has grown (a capture of up to three pointers)") {
  evw::Loop loop;
  evw::LoopHandle h = loop.handle();
  long sum = 0;
  auto round = [&](int n) {
    std::thread producer([&] {
      for (int i = 0; i < n; ++i) h.post([&sum, i] { sum += i; });
    });
    producer.join();
    loop.run();
  };
  round(4096);  // the queue's two buffers (swapped at each batch) grow to a burst of 4096
  round(4096);
  g_allocations = 0;
  g_counting = true;
  round(4096);
  round(1000);
  for (int i = 0; i < 1000; ++i) loop.post([&sum] { ++sum; });  // from the loop's thread
  loop.run();
  g_counting = false;
  CHECK(g_allocations == 2);  // the two std::thread starts, nothing per post
  CHECK(sum == 3 * (4095L * 4096 / 2) + 999L * 1000 / 2 + 1000);
}
#endif

TEST_CASE("post: an exception from fn comes out of run(); the posts after it run in the next run()") {
  evw::Loop loop;
  std::vector<int> order;
  int io_calls = 0;
  auto [a, b] = evw_test::socket_pair();
  evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    ++io_calls;
    w.stop();
  });
  io.start();
  REQUIRE(::write(b.get(), "x", 1) == 1);
  loop.post([&] { order.push_back(1); });
  loop.post([&] { throw std::runtime_error("posted"); });
  loop.post([&] { order.push_back(3); });
  try {
    loop.run();
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "posted");
  }
  CHECK(order == std::vector<int>{1});
  CHECK(io_calls == 0);  // nothing else runs in that iteration
  loop.post([&] { order.push_back(4); });  // after the rest of the interrupted batch
  loop.run();
  CHECK(order == std::vector<int>{1, 3, 4});
  CHECK(io_calls == 1);
}

TEST_CASE("post: a throwing callback keeps the iteration's posts for the next run()") {
  evw::Loop loop;
  int ran = 0;
  evw::Timer t(loop, 0.0, 0.0, [&](evw::Timer&, int) { throw 7; });
  t.set_priority(evw::max_priority);
  evw::Prepare p(loop, [&](evw::Prepare& w, int) {
    loop.post([&] { ++ran; });  // before the poll: due in this iteration, with the timer
    w.stop();
  });
  p.start();
  t.start();
  CHECK_THROWS_AS(loop.run(evw::Run::Once), int);
  // Run before the timer threw, or kept for the next run(): exactly once either way.
  loop.run(evw::Run::NoWait);
  CHECK(ran == 1);
  loop.run(evw::Run::NoWait);
  CHECK(ran == 1);
}

TEST_CASE("post: a loop destroyed with posts queued destroys them unrun; handle.post returns false after") {
  Probe::reset();
  auto loop = std::make_unique<evw::Loop>();
  evw::LoopHandle h = loop->handle();
  CHECK(static_cast<bool>(h));
  for (int i = 0; i < 100; ++i) CHECK(h.post([p = Probe()] { ++Probe::runs; }));
  CHECK(loop->post([p = Probe()] { ++Probe::runs; }));
  loop.reset();
  CHECK(Probe::runs == 0);
  CHECK(Probe::made == Probe::gone);  // every one destroyed
  CHECK_FALSE(h.post([p = Probe()] { ++Probe::runs; }));
  CHECK(Probe::made == Probe::gone);  // the refused one too, before post() returned
  CHECK_FALSE(evw::LoopHandle().post([] {}));
}

TEST_CASE("post: a posted function may destroy its loop; the posts after it are destroyed unrun") {
  Probe::reset();
  auto loop = std::make_unique<evw::Loop>();
  int ran = 0;
  loop->post([&] { ++ran; });
  loop->post([&] { loop.reset(); });
  loop->post([p = Probe()] { ++Probe::runs; });
  loop->post([p = Probe()] { ++Probe::runs; });
  CHECK_FALSE(loop->run());
  CHECK(ran == 1);
  CHECK_FALSE(loop);
  CHECK(Probe::runs == 0);
  CHECK(Probe::made == Probe::gone);
}

TEST_CASE("post: a nested run() inside a posted function runs the posts that follow") {
  evw::Loop loop;
  std::vector<int> order;
  loop.post([&] {
    order.push_back(1);
    std::thread([h = loop.handle(), &order] { h.post([&order] { order.push_back(3); }); }).join();
    // A nested run runs the rest of this batch (2), then the new post (3).
    loop.run(evw::Run::NoWait);
    loop.run(evw::Run::NoWait);
    order.push_back(4);
  });
  loop.post([&] { order.push_back(2); });
  loop.run();
  CHECK(order == std::vector<int>{1, 2, 3, 4});
}

TEST_CASE("post: posters racing the loop's destruction: refused after, every accepted post run or destroyed") {
  constexpr int kRounds = 20;
  constexpr int kThreads = 4;
  long accepted_total = 0, refused_total = 0, ran_total = 0;
  for (int round = 0; round < kRounds; ++round) {
    Probe::reset();
    auto loop = std::make_unique<evw::Loop>();
    evw::LoopHandle h = loop->handle();
    std::atomic<long> accepted{0}, refused{0};
    std::atomic<bool> go{false};
    std::vector<long> last(kThreads, -1);  // loop thread: the last index run per poster
    long twice_or_reordered = 0;
    std::vector<std::thread> posters;
    for (int t = 0; t < kThreads; ++t)
      posters.emplace_back([&, t] {
        while (!go) std::this_thread::yield();
        for (long i = 0;; ++i) {
          if (h.post([p = Probe(), t, i, &last, &twice_or_reordered] {
                ++Probe::runs;
                if (i <= last[t]) ++twice_or_reordered;
                last[t] = i;
              })) {
            if (++accepted % 64 == 0) std::this_thread::yield();  // let the loop drain
          } else {
            ++refused;
            // Refused once means refused for good.
            CHECK_FALSE(h.post([p = Probe()] { ++Probe::runs; }));
            ++refused;
            return;
          }
        }
      });
    go = true;
    // Run iterations while they post, then destroy the loop under them.
    const long enough = 200 + 100 * round;
    for (int i = 0; accepted < enough && i < 100000; ++i) loop->run(evw::Run::NoWait);
    for (int i = 0; i < round % 3; ++i) loop->run(evw::Run::NoWait);
    loop.reset();
    for (auto& t : posters) t.join();
    CHECK(Probe::runs <= accepted);
    CHECK(twice_or_reordered == 0);
    CHECK(Probe::made == Probe::gone);  // nothing leaked: run or destroyed, refused ones too
    accepted_total += accepted;
    refused_total += refused;
    ran_total += Probe::runs;
  }
  MESSAGE("posts racing destruction: " << accepted_total << " accepted (" << ran_total << " run, the rest destroyed), "
                                       << refused_total << " refused");
  CHECK(refused_total == 2 * kRounds * kThreads);
}
