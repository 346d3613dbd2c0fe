// evw::Task<T> — a lazy C++20 coroutine whose result (or exception) is
// delivered to whoever awaits it.
//
// A Task does nothing until it is awaited (`co_await std::move(task)`), passed
// to evw::spawn, or run by evw::sync_wait. It owns its coroutine frame:
// destroying a Task that is suspended cancels it — its locals are destroyed,
// so every watcher it (or a task it awaits) was waiting on is stopped, and it
// is never resumed. A task that ends hands control straight back to the
// coroutine awaiting it (symmetric transfer); one that ends without ever
// suspending returns to it without a resume, so loops of such awaits do not
// grow the stack, also in -O0 and sanitizer builds.
//
// Every evw coroutine frame knows the root of its task: the outermost evw
// frame (the spawned frame, or the Task that sync_wait runs). The root keeps
// what must live exactly as long as the task, e.g. evw::signal()'s catch of
// the signal between two awaits.
//
// Caveats: a Task is move-only and can be awaited once (a second await throws
// std::logic_error). Tasks are resumed from the loop's callbacks, so they run
// on the loop's thread. Reference results (Task<T&>) are not supported: return
// a pointer or std::reference_wrapper. Never destroy a Task from inside its own
// body (or a task it awaits): that frees the running frame.
#pragma once

#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace evw {

template <class T = void>
class Task;

namespace detail {

template <class T>
class TaskPromise;

struct TaskAccess;

// Something kept for as long as a whole task lives, by its root frame.
class FrameResource {
 public:
  // kind: the address of a static of the derived type, to find it again.
  explicit FrameResource(const void* kind) noexcept : kind_(kind) {}
  virtual ~FrameResource() = default;
  FrameResource(const FrameResource&) = delete;
  FrameResource& operator=(const FrameResource&) = delete;
  const void* kind() const noexcept { return kind_; }
  FrameResource* next() const noexcept { return next_; }

 private:
  friend class FrameScope;
  const void* kind_;
  FrameResource* next_ = nullptr;  // owned by the scope's list
};

// The part every evw coroutine promise shares (Task, spawn's and when_*'s own
// frames): the root of its task, and at the root the resources of the task.
// Kept to two pointers with an out-of-line release: it is in every frame, and
// anything more in the promise's destructor costs registers in every resume.
class FrameScope {
 public:
  FrameScope() noexcept = default;
  FrameScope(const FrameScope&) = delete;
  FrameScope& operator=(const FrameScope&) = delete;
  ~FrameScope() {
    if (resources_ != nullptr) [[unlikely]] release_resources();
  }

  FrameScope& root() const noexcept { return *root_; }
  // This frame runs on behalf of parent (awaited by it): it joins parent's task.
  void join(FrameScope& parent) noexcept { root_ = parent.root_; }

  // At the root: the resources, destroyed when the task ends (newest first).
  FrameResource* first_resource() const noexcept { return resources_; }
  FrameResource& add_resource(std::unique_ptr<FrameResource> r) noexcept {
    r->next_ = resources_;
    resources_ = r.release();
    return *resources_;
  }
  [[gnu::noinline]] void remove_resource(FrameResource& r) noexcept {
    for (FrameResource** slot = &resources_; *slot != nullptr; slot = &(*slot)->next_) {
      if (*slot == &r) {
        *slot = r.next_;
        std::unique_ptr<FrameResource>(&r).reset();
        return;
      }
    }
  }
  [[gnu::noinline, gnu::cold]] void release_resources() noexcept {
    while (FrameResource* r = resources_) {
      resources_ = r->next_;
      std::unique_ptr<FrameResource>(r).reset();
    }
  }

 private:
  FrameScope* root_ = this;
  FrameResource* resources_ = nullptr;
};

class TaskPromiseBase : public FrameScope {
 public:
  std::suspend_always initial_suspend() const noexcept { return {}; }

  // Hand control to the awaiting coroutine (symmetric transfer), or back to
  // whoever resumed this one: the awaiter's await_suspend if the task ended
  // without suspending (it then goes on without suspending the awaiting
  // coroutine), else sync_wait or the loop callback.
  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) const noexcept {
      TaskPromiseBase& p = h.promise();
      if (p.first_resource() != nullptr) [[unlikely]] p.release_resources();  // a root's: its task ended
      if (p.starting_ || !p.continuation_) return std::noop_coroutine();
      return p.continuation_;
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { error_ = std::current_exception(); }

  // Run the task on behalf of `awaiting`, until it suspends or ends.
  // @return false if it ended: the awaiting coroutine goes on at once.
  // A resume and not a symmetric transfer: with GCC, symmetric transfer is a
  // tail call only when optimizing without sanitizers, and a loop of awaits of
  // tasks that end at once would grow the stack at -O0 or under ASan.
  template <class P>
  bool start(std::coroutine_handle<P> self, std::coroutine_handle<> awaiting) {
    continuation_ = awaiting;
    starting_ = true;
    self.resume();
    starting_ = false;
    return !self.done();
  }

 protected:
  void check_result() {
    if (taken_)
      throw std::logic_error("evw::Task: awaited twice (its result was already taken)");
    taken_ = true;
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  std::coroutine_handle<> continuation_;
  std::exception_ptr error_;
  bool starting_ = false;  // inside start(): an end returns there
  bool taken_ = false;
};

template <class T>
class TaskPromise final : public TaskPromiseBase {
 public:
  Task<T> get_return_object() noexcept;
  template <class U = T>
    requires std::is_constructible_v<T, U&&>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value_.emplace(std::forward<U>(value));
  }
  T take() {
    check_result();
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <>
class TaskPromise<void> final : public TaskPromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void return_void() const noexcept {}
  void take() { check_result(); }
};

}  // namespace detail

/// @brief A lazy coroutine producing a T (or void). Write a coroutine that
/// returns `evw::Task<T>` and `co_return` a T; `co_await` it from another task
/// to get the T or the exception it ended with.
template <class T>
class [[nodiscard]] Task {
  static_assert(!std::is_reference_v<T>,
                "evw::Task<T&> is not supported: return a pointer or std::reference_wrapper");

 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;

  /// @brief An empty task (awaiting it throws std::logic_error).
  Task() noexcept = default;
  Task(Task&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      h_ = std::exchange(other.h_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  /// @brief Frees the frame; a suspended task is cancelled (never resumed).
  ~Task() { reset(); }

  /// @brief True unless empty (default-constructed or moved from).
  explicit operator bool() const noexcept { return static_cast<bool>(h_); }
  /// @brief True once the task has run to its end (returned or thrown).
  bool done() const noexcept { return h_ && h_.done(); }

  class Awaiter {
   public:
    explicit Awaiter(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
    bool await_ready() const {
      if (!h_) throw std::logic_error("evw::Task: awaiting an empty task");
      return h_.done();
    }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> awaiting) const noexcept {
      if constexpr (std::is_base_of_v<detail::FrameScope, P>) h_.promise().join(awaiting.promise());
      return h_.promise().start(h_, awaiting);
    }
    T await_resume() const { return h_.promise().take(); }

   private:
    std::coroutine_handle<promise_type> h_;
  };

  /// @brief Run the task and get its result; its exception is rethrown.
  /// @throws std::logic_error if the task is empty or was awaited before.
  Awaiter operator co_await() & noexcept { return Awaiter(h_); }
  Awaiter operator co_await() && noexcept { return Awaiter(h_); }

 private:
  friend class detail::TaskPromise<T>;
  friend struct detail::TaskAccess;
  explicit Task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  void reset() noexcept {
    if (h_) std::exchange(h_, nullptr).destroy();
  }

  std::coroutine_handle<promise_type> h_;
};

namespace detail {

template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}

inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}

// For evw's own coroutine machinery (spawn, sync_wait): reach the frame.
struct TaskAccess {
  template <class T>
  static std::coroutine_handle<TaskPromise<T>> handle(const Task<T>& task) noexcept {
    return task.h_;
  }
};

template <class T>
struct IsTask : std::false_type {};
template <class T>
struct IsTask<Task<T>> : std::true_type {};

}  // namespace detail

/// True for evw::Task<T> types.
template <class T>
inline constexpr bool is_task_v = detail::IsTask<std::remove_cvref_t<T>>::value;

}  // namespace evw
