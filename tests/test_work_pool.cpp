// WorkPool and offload: work on pool threads, done(Result) on the loop's
// thread, throwing work, run() kept going while work is in flight, a loop
// destroyed under work, and coroutines awaiting offload — resumed with the
// value or the exception, or cancelled with their result dropped safely.
#include <evw/core/work_pool.hpp>
#include <evw/coro/coro.hpp>
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

namespace {

struct Counted {
  static std::atomic<long> alive, made;  // alive now; made by the Counted(int) constructor so far
  int value;
  explicit Counted(int v) : value(v) {
    ++alive;
    ++made;
  }
  Counted(Counted&& o) noexcept : value(o.value) { ++alive; }
  Counted(const Counted& o) : value(o.value) { ++alive; }
  ~Counted() { --alive; }
};
std::atomic<long> Counted::alive{0}, Counted::made{0};

// Waits until the work has made `n` results (and so has posted, or tried to
// post, what it made), running the loop meanwhile if there is one; then until
// every one is destroyed.
bool all_made_and_gone(long n, evw::Loop* loop = nullptr) {
  for (int i = 0; i < 5000 && (Counted::made < n || Counted::alive != 0); ++i) {
    if (loop != nullptr) loop->run(evw::Run::NoWait);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Counted::made >= n && Counted::alive == 0;
}

}  // namespace

TEST_CASE("Result: a value or an exception") {
  evw::Result<int> ok(42);
  CHECK(ok.has_value());
  CHECK(static_cast<bool>(ok));
  CHECK(ok.value() == 42);
  CHECK(*ok == 42);
  CHECK(ok.error() == nullptr);
  auto bad = evw::Result<int>::capture([]() -> int { throw std::runtime_error("no"); });
  CHECK_FALSE(bad.has_value());
  CHECK(bad.error() != nullptr);
  CHECK_THROWS_AS(bad.value(), std::runtime_error);
  evw::Result<std::string> s = evw::Result<std::string>::capture([] { return std::string("text"); });
  CHECK(s->size() == 4);
  CHECK(std::move(s).value() == "text");
  evw::Result<void> v;
  CHECK(v.has_value());
  CHECK_NOTHROW(v.value());
  auto vbad = evw::Result<void>::capture([] { throw 3; });
  CHECK_FALSE(vbad);
  CHECK_THROWS_AS(vbad.value(), int);
}

TEST_CASE("WorkPool: work runs on a pool thread, done(result) on the loop's thread; run() waits for it") {
  evw::Loop loop;
  evw::WorkPool pool(2);
  CHECK(pool.size() == 2);
  std::vector<int> results;
  std::atomic<int> on_loop_thread{0}, work_on_loop_thread{0};
  const auto loop_thread = std::this_thread::get_id();
  for (int i = 0; i < 20; ++i)
    pool.submit(
        loop,
        [i, loop_thread, &work_on_loop_thread] {
          if (std::this_thread::get_id() == loop_thread) ++work_on_loop_thread;
          std::this_thread::sleep_for(std::chrono::milliseconds(i % 3));
          return i * i;
        },
        [&](evw::Result<int> r) {
          if (std::this_thread::get_id() == loop_thread) ++on_loop_thread;
          results.push_back(r.value());
        });
  // No watcher is active: what keeps run() going is the work in flight.
  CHECK_FALSE(loop.run());
  CHECK(results.size() == 20);
  CHECK(on_loop_thread == 20);
  CHECK(work_on_loop_thread == 0);
  long sum = 0;
  for (int r : results) sum += r;
  CHECK(sum == 2470);  // 0² + … + 19²
}

TEST_CASE("WorkPool: throwing work hands its exception to done; done's own exception comes out of run()") {
  evw::Loop loop;
  evw::WorkPool pool(3);
  int failures = 0, successes = 0;
  for (int i = 0; i < 300; ++i)
    pool.submit(
        loop,
        [i] {
          if (i % 3 == 0) throw std::runtime_error("work " + std::to_string(i));
          return i;
        },
        [&](evw::Result<int> r) {
          if (r) ++successes;
          else {
            CHECK_THROWS_AS(r.value(), std::runtime_error);
            ++failures;
          }
        });
  loop.run();
  CHECK(failures == 100);
  CHECK(successes == 200);
  bool later = false;
  pool.submit(loop, [] {}, [](evw::Result<void>) { throw std::logic_error("from done"); });
  pool.submit(loop, [] {}, [&](evw::Result<void> r) { later = r.has_value(); });
  CHECK_THROWS_AS(loop.run(), std::logic_error);
  loop.run();  // the posts after it are not lost
  CHECK(later);
}

TEST_CASE("WorkPool: a loop destroyed while work runs: done is destroyed, never called") {
  evw::WorkPool pool(2);
  std::promise<void> started;
  std::promise<void> release;
  auto release_future = release.get_future().share();
  std::atomic<int> called{0};
  {
    evw::Loop loop;
    pool.submit(
        loop,
        [&, release_future] {
          started.set_value();
          release_future.wait();
          return Counted(1);
        },
        [&, keep = Counted(2)](evw::Result<Counted>) { ++called; });
    started.get_future().wait();
  }  // the loop goes while the work runs
  const long made = Counted::made;  // Counted(2) so far: the work waits
  release.set_value();
  // Submitted through a handle from any thread, to a loop that is gone: refused the same way.
  evw::LoopHandle gone;
  {
    evw::Loop loop;
    gone = loop.handle();
  }
  std::thread([&] { pool.submit(gone, [] { return Counted(3); }, [&](evw::Result<Counted>) { ++called; }); }).join();
  CHECK(all_made_and_gone(made + 2));  // Counted(1) and (3), done and results destroyed on the pool thread
  CHECK(called == 0);
}

TEST_CASE("WorkPool: the destructor runs what was submitted") {
  std::atomic<int> done{0};
  {
    evw::WorkPool pool(1);
    for (int i = 0; i < 50; ++i)
      pool.submit(evw::LoopHandle(), [&] { ++done; }, [](evw::Result<void>) {});
  }
  CHECK(done == 50);
}

TEST_CASE("offload: co_await resumes on the loop's thread with the work's value or its exception") {
  evw::Loop loop;
  evw::WorkPool pool(2);
  const auto loop_thread = std::this_thread::get_id();
  std::atomic<std::thread::id> work_thread;
  auto task = [&]() -> evw::Task<int> {
    int a = co_await evw::offload(pool, loop, [] { return 20; });
    CHECK(std::this_thread::get_id() == loop_thread);
    int b = co_await evw::offload(pool, loop, [&] {
      work_thread = std::this_thread::get_id();
      return 22;
    });
    CHECK(work_thread.load() != loop_thread);
    co_await evw::offload(pool, loop, [] {});  // void work
    try {
      co_await evw::offload(pool, loop, []() -> int { throw std::runtime_error("in work"); });
      FAIL("no exception");
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()) == "in work");
    }
    // work(args...): the arguments are moved into the awaitable, built outside this coroutine.
    const std::string joined = co_await evw::offload(
        pool, loop, [](const std::string& x, const std::string& y) { return x + y; }, std::string("of"), std::string("fload"));
    CHECK(joined == "offload");
    co_return a + b;
  };
  CHECK(evw::sync_wait(loop, task()) == 42);  // sync_wait: the work in flight keeps run() going
}

TEST_CASE("offload: many spawned tasks awaiting throwing and returning work") {
  evw::Loop loop;
  evw::WorkPool pool(4);
  int values = 0, errors = 0;
  auto checked = [](int i) {
    if (i % 4 == 0) throw std::runtime_error("bad");
    return i;
  };
  auto one = [&](int i) -> evw::Task<> {
    try {
      const int v = co_await evw::offload(pool, loop, checked, i);
      values += v;
    } catch (const std::runtime_error&) {
      ++errors;
    }
  };
  for (int i = 0; i < 200; ++i) evw::spawn(loop, one(i));
  loop.run();
  CHECK(errors == 50);
  CHECK(values == 200 * 199 / 2 - 4 * (49 * 50 / 2));
}

TEST_CASE("offload: a cancelled awaiter drops the result safely") {
  evw::WorkPool pool(2);
  SUBCASE("its task destroyed while the work runs; run() stops waiting") {
    evw::Loop loop;
    std::promise<void> release;
    auto released = release.get_future().share();
    bool resumed = false;
    auto task = [&]() -> evw::Task<> {
      auto work = [released] {  // named: g++ 12 miscompiles captures inside co_await (offload.hpp)
        released.wait();
        return Counted(5);
      };
      auto value = co_await evw::offload(pool, loop, std::move(work));
      resumed = true;
    };
    {
      evw::Task<> t = task();
      evw::detail::TaskAccess::handle(t).resume();  // up to its first suspension, as sync_wait does
      CHECK_FALSE(t.done());
    }  // destroyed while suspended in offload: cancelled
    CHECK_FALSE(loop.run());  // the cancelled wait no longer keeps run() going
    const long made = Counted::made;
    release.set_value();
    // The result comes and is dropped (on the loop's thread, by a post).
    CHECK(all_made_and_gone(made + 1, &loop));
    CHECK_FALSE(resumed);
  }
  SUBCASE("the loop destroyed with spawned tasks awaiting, work still running") {
    std::promise<void> release;
    auto released = release.get_future().share();
    std::atomic<int> resumed{0};
    {
      evw::Loop loop;
      auto task = [&]() -> evw::Task<> {
        auto wait_then = [](const std::shared_future<void>& f, int v) {
          f.wait();
          return Counted(v);
        };
        auto value = co_await evw::offload(pool, loop, wait_then, released, 6);
        ++resumed;
      };
      for (int i = 0; i < 8; ++i) evw::spawn(loop, task());
      loop.run(evw::Run::NoWait);  // the tasks start and suspend
    }  // ~Loop destroys their frames
    const long made = Counted::made;
    release.set_value();
    CHECK(all_made_and_gone(made + 8));  // the results were destroyed on the pool threads
    CHECK(resumed == 0);
  }
  SUBCASE("when_any with a timeout cancels the offload that loses") {
    evw::Loop loop;
    std::promise<void> release;
    auto released = release.get_future().share();
    auto slow = [&]() -> evw::Task<int> {
      auto work = [released] {
        released.wait();
        return Counted(7);
      };
      co_return (co_await evw::offload(pool, loop, std::move(work))).value;
    };
    auto r = evw::sync_wait(loop, evw::with_timeout(loop, std::chrono::milliseconds(10), slow()));
    CHECK_FALSE(r.has_value());
    const long made = Counted::made;
    release.set_value();
    CHECK_FALSE(loop.run());
    CHECK(all_made_and_gone(made + 1, &loop));
  }
}
