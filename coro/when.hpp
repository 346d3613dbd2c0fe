// evw::when_all, evw::when_any, evw::with_timeout — run awaitables together.
//
//   auto [a, b] = co_await evw::when_all(fetch(x), fetch(y));        // both results
//   auto first = co_await evw::when_any(readable(loop, fd), sleep(loop, 1s));
//   first.index();                                                   // 0: readable won
//   std::optional<int> r = co_await evw::with_timeout(loop, 1s, readable(loop, fd));
//
// The arguments are tasks (evw::Task<T>) or any other awaitable (readable(),
// sleep(), ...), which is wrapped in a task. They start in argument order when
// the result is awaited, and run concurrently on the loop.
// - when_all: a std::tuple of the results (std::monostate for void). The first
//   exception cancels the others and is rethrown.
// - when_any: a std::variant of the results whose index() says which finished
//   first; if that one threw, its exception is rethrown. The others are
//   cancelled: destroyed, with their watchers, never resumed.
// - with_timeout: std::optional<R> (bool for void results), empty (false) when
//   the timeout expired first, in which case the work was cancelled.
// - when_all / when_any also take a std::vector<Task<T>>.
//
// Caveats: "first" is the first to finish in the loop's dispatch order: if two
// are ready in one iteration, the higher watcher priority (then libev's order)
// wins, and the other is cancelled although its event had come; that event is
// dropped (data stays unread in the socket; a signal the loop caught is lost).
// Arguments must be rvalues (std::move a named task). Each combinator and each
// argument that is not a Task costs one small coroutine frame (heap).
#pragma once

#include <array>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <span>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "../core/loop.hpp"
#include "../core/time.hpp"
#include "awaitables.hpp"
#include "task.hpp"

namespace evw {

namespace detail {

// ---- what an awaitable produces ---------------------------------------------

template <class A>
decltype(auto) get_awaiter(A&& a) {
  if constexpr (requires { std::forward<A>(a).operator co_await(); })
    return std::forward<A>(a).operator co_await();
  else
    return std::forward<A>(a);
}

}  // namespace detail

/// Something `co_await` accepts (with a member operator co_await or the
/// await_ready/await_suspend/await_resume trio).
template <class A>
concept Awaitable = requires(A&& a) {
  { detail::get_awaiter(std::forward<A>(a)).await_ready() } -> std::convertible_to<bool>;
  detail::get_awaiter(std::forward<A>(a)).await_resume();
};

/// The type `co_await a` gives for an rvalue A.
template <Awaitable A>
using await_result_t = decltype(detail::get_awaiter(std::declval<A>()).await_resume());

namespace detail {

template <class T>
using ResultOf = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class A>
using TaskFor = std::conditional_t<is_task_v<A>, std::remove_cvref_t<A>,
                                   Task<std::remove_cvref_t<await_result_t<std::remove_cvref_t<A>>>>>;

// The awaitable is moved into the frame: it lives as long as the task.
template <class A>
Task<std::remove_cvref_t<await_result_t<A>>> await_in_task(A awaitable) {
  co_return co_await std::move(awaitable);
}

// A Task as it is, any other awaitable inside a task that awaits it. Taken by
// value (moved): an lvalue task or awaitable does not compile (std::move it).
template <class A>
TaskFor<A> to_task(A&& awaitable) {
  using Value = std::remove_cvref_t<A>;
  if constexpr (is_task_v<A>) {
    Value task(std::forward<A>(awaitable));
    if (!task) throw std::invalid_argument("evw::when_all/when_any/with_timeout: a task is empty");
    return task;
  } else {
    return await_in_task<Value>(Value(std::forward<A>(awaitable)));
  }
}

// ---- running children together ----------------------------------------------

// The state shared by the children of one when_all / when_any and the
// coroutine awaiting them. All on one thread: no atomics.
class Group {
 public:
  enum class Mode { All, Any };
  static constexpr std::size_t none = static_cast<std::size_t>(-1);

  Group(Mode mode, std::size_t count) noexcept : mode_(mode), count_(count) {}
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  // A child ended. Returns what to run next: the awaiting coroutine once the
  // group is decided (unless its children are still being started, in which
  // case the starter carries on without suspending), else nothing.
  std::coroutine_handle<> child_done(std::size_t index, std::exception_ptr error) noexcept {
    if (decided_) return std::noop_coroutine();  // cannot happen: the rest are cancelled first
    ++finished_;
    if (error && !error_) error_ = std::move(error);
    if (mode_ == Mode::All && !error_ && finished_ < count_) return std::noop_coroutine();
    decided_ = true;
    winner_ = index;
    return starting_ ? std::noop_coroutine() : awaiting_;
  }

  std::size_t winner() const noexcept { return winner_; }

 private:
  friend class GroupAwaiter;
  Mode mode_;
  std::size_t count_;
  std::size_t finished_ = 0;
  std::size_t winner_ = none;
  bool starting_ = true;
  bool decided_ = false;
  std::coroutine_handle<> awaiting_;
  std::exception_ptr error_;
};

// The coroutine that runs one child task and reports to the group.
class Child {
 public:
  class promise_type : public FrameScope {
   public:
    Child get_return_object() noexcept {
      return Child(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    struct FinalAwaiter {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) const noexcept {
        promise_type& p = h.promise();
        return p.group_->child_done(p.index_, std::move(p.error_));
      }
      void await_resume() const noexcept {}
    };
    FinalAwaiter final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() noexcept { error_ = std::current_exception(); }

   private:
    friend class Child;
    Group* group_ = nullptr;
    std::size_t index_ = 0;
    std::exception_ptr error_;
  };

  Child() noexcept = default;
  Child(Child&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
  Child& operator=(Child&& other) noexcept {
    if (this != &other) {
      reset();
      h_ = std::exchange(other.h_, nullptr);
    }
    return *this;
  }
  ~Child() { reset(); }

  void join(Group& group, std::size_t index) noexcept {
    h_.promise().group_ = &group;
    h_.promise().index_ = index;
  }
  // The child runs on behalf of the frame awaiting the group: part of its task.
  void join_task(FrameScope& parent) noexcept { h_.promise().join(parent); }
  void start() const { h_.resume(); }
  // Destroying a suspended child destroys its task: it is cancelled.
  void reset() noexcept {
    if (h_) std::exchange(h_, nullptr).destroy();
  }

 private:
  explicit Child(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

template <class T>
Child run_child(Task<T> task, std::optional<ResultOf<T>>& slot) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
    slot.emplace();
  } else {
    slot.emplace(co_await std::move(task));
  }
}

// Starts the children in order and suspends until the group is decided; then
// cancels whatever still runs and rethrows the deciding exception.
class GroupAwaiter {
 public:
  GroupAwaiter(Group& group, std::span<Child> children) noexcept
      : group_(group), children_(children) {
    for (std::size_t i = 0; i < children_.size(); ++i) children_[i].join(group_, i);
  }
  bool await_ready() const noexcept { return children_.empty(); }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> awaiting) noexcept {
    if constexpr (std::is_base_of_v<FrameScope, P>)
      for (Child& child : children_) child.join_task(awaiting.promise());
    group_.awaiting_ = awaiting;
    for (Child& child : children_) {
      child.start();  // a task's exception stays in its promise: this does not throw
      if (group_.decided_) break;
    }
    group_.starting_ = false;
    return !group_.decided_;  // decided while starting: go on without suspending
  }
  void await_resume() {
    for (Child& child : children_) child.reset();
    if (group_.error_) std::rethrow_exception(std::exchange(group_.error_, nullptr));
  }

 private:
  Group& group_;
  std::span<Child> children_;
};

template <class... Ts, std::size_t... I>
Task<std::tuple<ResultOf<Ts>...>> when_all_of(std::index_sequence<I...>, Task<Ts>... tasks) {
  std::tuple<std::optional<ResultOf<Ts>>...> slots;
  Group group(Group::Mode::All, sizeof...(Ts));
  std::array<Child, sizeof...(Ts)> children{run_child(std::move(tasks), std::get<I>(slots))...};
  co_await GroupAwaiter(group, children);
  co_return std::tuple<ResultOf<Ts>...>(std::move(*std::get<I>(slots))...);
}

template <class... Ts, std::size_t... I>
Task<std::variant<ResultOf<Ts>...>> when_any_of(std::index_sequence<I...>, Task<Ts>... tasks) {
  std::tuple<std::optional<ResultOf<Ts>>...> slots;
  Group group(Group::Mode::Any, sizeof...(Ts));
  std::array<Child, sizeof...(Ts)> children{run_child(std::move(tasks), std::get<I>(slots))...};
  co_await GroupAwaiter(group, children);
  std::optional<std::variant<ResultOf<Ts>...>> result;
  ((group.winner() == I ? (void)result.emplace(std::in_place_index<I>, std::move(*std::get<I>(slots)))
                        : void()),
   ...);
  co_return std::move(*result);
}

template <class T>
std::vector<Child> children_of(std::vector<Task<T>>& tasks,
                               std::vector<std::optional<ResultOf<T>>>& slots) {
  for (const Task<T>& task : tasks)
    if (!task) throw std::invalid_argument("evw::when_all/when_any: a task is empty");
  slots.resize(tasks.size());
  std::vector<Child> children;
  children.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i)
    children.push_back(run_child(std::move(tasks[i]), slots[i]));
  return children;
}

template <class T>
using AllResult = std::conditional_t<std::is_void_v<T>, void, std::vector<ResultOf<T>>>;

template <class T>
Task<AllResult<T>> when_all_vector(std::vector<Task<T>> tasks) {
  std::vector<std::optional<ResultOf<T>>> slots;
  std::vector<Child> children = children_of(tasks, slots);
  Group group(Group::Mode::All, children.size());
  co_await GroupAwaiter(group, children);
  if constexpr (!std::is_void_v<T>) {
    std::vector<T> results;
    results.reserve(slots.size());
    for (auto& slot : slots) results.push_back(std::move(*slot));
    co_return results;
  }
}

template <class R>
using TimeoutResult = std::conditional_t<std::is_void_v<R>, bool, std::optional<R>>;

template <class R>
Task<TimeoutResult<R>> race_timeout(Task<R> work, Task<int> timer) {
  auto first = co_await when_any_of(std::index_sequence<0, 1>{}, std::move(work), std::move(timer));
  if constexpr (std::is_void_v<R>) {
    co_return first.index() == 0;
  } else {
    if (first.index() == 0) co_return TimeoutResult<R>(std::in_place, std::get<0>(std::move(first)));
    co_return TimeoutResult<R>();
  }
}

}  // namespace detail

/// Which task of a `when_any(std::vector<Task<T>>)` finished first, and its result.
template <class T>
struct Winner {
  std::size_t index;  ///< position in the vector
  T value;
};
template <>
struct Winner<void> {
  std::size_t index;  ///< position in the vector
};

/// @brief Run awaitables (tasks, readable(), sleep(), ...) concurrently and
/// wait for all of them.
/// @return a task of std::tuple of their results (std::monostate for void).
/// @throws (at co_await) the first exception one of them throws, after
///         cancelling the others; std::invalid_argument (here) for an empty task.
template <Awaitable... As>
[[nodiscard]] auto when_all(As&&... awaitables) {
  return detail::when_all_of(std::index_sequence_for<As...>{},
                             detail::to_task(std::forward<As>(awaitables))...);
}

/// @brief Run tasks concurrently and wait for all of them.
/// @return a task of the results in order (Task<void> for void tasks).
/// @throws (at co_await) the first exception, after cancelling the others;
///         std::invalid_argument for an empty task.
template <class T>
[[nodiscard]] Task<detail::AllResult<T>> when_all(std::vector<Task<T>> tasks) {
  return detail::when_all_vector(std::move(tasks));
}

/// @brief Run awaitables concurrently until the first of them finishes; the
/// others are cancelled (destroyed with their watchers, never resumed).
/// @return a task of std::variant of the results; index() is the winner's position.
/// @throws (at co_await) the winner's exception; std::invalid_argument (here)
///         for an empty task.
template <Awaitable... As>
  requires(sizeof...(As) > 0)
[[nodiscard]] auto when_any(As&&... awaitables) {
  return detail::when_any_of(std::index_sequence_for<As...>{},
                             detail::to_task(std::forward<As>(awaitables))...);
}

namespace detail {
template <class T>
Task<Winner<T>> when_any_vector(std::vector<Task<T>> tasks) {
  std::vector<std::optional<ResultOf<T>>> slots;
  std::vector<Child> children = children_of(tasks, slots);
  Group group(Group::Mode::Any, children.size());
  co_await GroupAwaiter(group, children);
  if constexpr (std::is_void_v<T>)
    co_return Winner<void>{group.winner()};
  else
    co_return Winner<T>{group.winner(), std::move(*slots[group.winner()])};
}
}  // namespace detail

/// @brief Run tasks concurrently until the first finishes; cancel the others.
/// @return a task of Winner<T>: the winner's index (and value).
/// @throws (at co_await) the winner's exception; std::invalid_argument if
///         tasks is empty or holds an empty task.
template <class T>
[[nodiscard]] Task<Winner<T>> when_any(std::vector<Task<T>> tasks) {
  if (tasks.empty()) throw std::invalid_argument("evw::when_any: no tasks");
  return detail::when_any_vector(std::move(tasks));
}

/// @brief Await `awaitable` for at most `timeout` of loop time; if the time
/// runs out first, the awaitable is cancelled.
/// @return a task of std::optional<R> (R: what awaiting gives), empty on
///         timeout; for void awaitables a task of bool, false on timeout.
/// @throws (at co_await) the awaitable's exception; std::invalid_argument if
///         timeout is not finite.
template <Awaitable A>
[[nodiscard]] auto with_timeout(Loop& loop, Seconds timeout, A&& awaitable) {
  using R = typename detail::TaskFor<A>::value_type;
  return detail::race_timeout<R>(detail::to_task(std::forward<A>(awaitable)),
                                 detail::await_in_task(evw::sleep(loop, timeout)));
}

}  // namespace evw
