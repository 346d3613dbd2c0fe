// evw — the callback holder: any callable `void(W&, int)`, stored in place
// when small (a capture of up to three pointers), on the heap otherwise;
// 32 bytes.
//
// Not std::function: this is on every event's path, and one indirect call
// with no empty-check is what it costs. Move-only, so move-only captures work.
#pragma once

#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace evw::detail {

template <class Signature>
class Function;

template <class>
inline constexpr bool always_false = false;

/// Instantiated only for a callable that does not fit Signature: its
/// static_assert is the whole diagnostic, instead of a page of overload
/// candidates. Specialised with a message per watcher type in callbacks.hpp.
template <class Signature, class F>
struct BadCallable {
  static_assert(always_false<F>, "evw: the callable does not have the signature this evw call needs");
};

/// A move-only callable `R(Args...)`.
template <class R, class... Args>
class Function<R(Args...)> {
 public:
  Function() noexcept = default;
  Function(std::nullptr_t) noexcept {}  // NOLINT: implicit, as std::function
  template <class F, class D = std::decay_t<F>,
            class = std::enable_if_t<!std::is_same_v<D, Function> &&
                                     std::is_invocable_r_v<R, D&, Args...>>>
  Function(F&& f) {  // NOLINT: implicit, so lambdas convert
    // A function (passed by reference) is never null; a pointer, a member
    // pointer or a std::function may be, and makes an empty Function.
    if constexpr (std::is_function_v<std::remove_reference_t<F>>) {
    } else if constexpr (std::is_pointer_v<D> || std::is_member_pointer_v<D> ||
                         requires { static_cast<bool>(f == nullptr); }) {
      if (f == nullptr) return;
    }
    if constexpr (fits<D>) {
      // Moved as bytes when trivially copyable: all of them, so all initialised.
      if constexpr (std::is_trivially_copyable_v<D> && sizeof(D) < sizeof buf_) std::memset(&buf_, 0, sizeof buf_);
      ::new (static_cast<void*>(&buf_)) D(std::forward<F>(f));
    } else {
      ::new (static_cast<void*>(&buf_)) D*(new D(std::forward<F>(f)));
    }
    ops_ = &ops_for<D>;
  }
  /// A callable of the wrong signature: a static_assert says which one is needed.
  template <class F, class D = std::decay_t<F>>
    requires(!std::is_same_v<D, Function> && !std::is_same_v<D, std::nullptr_t> &&
             !std::is_invocable_r_v<R, D&, Args...>)
  Function(F&&) {  // NOLINT: implicit, so the conversion is tried and reports
    static_cast<void>(sizeof(BadCallable<R(Args...), D>));
  }
  Function(Function&& o) noexcept { take(o); }
  Function& operator=(Function&& o) noexcept {
    if (this != &o) {
      reset();
      take(o);
    }
    return *this;
  }
  Function(const Function&) = delete;
  Function& operator=(const Function&) = delete;
  ~Function() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }
  R operator()(Args... args) { return ops_->call(&buf_, std::forward<Args>(args)...); }

 private:
  // What a Function does with its callable, one constant table per type D:
  // call it, and move (to != nullptr) or destroy (to == nullptr) it. A
  // trivially copyable callable stored in place (a lambda capturing pointers
  // or ints) has no manager: it moves as bytes and needs no destruction
  // (Loop::post moves every posted callable twice). One pointer per Function
  // instead of two keeps watchers small; a call costs one more load.
  struct Ops {
    R (*call)(void*, Args...);
    void (*manage)(void* to, void* from) noexcept;
  };
  template <class D>
  static constexpr bool fits = sizeof(D) <= 3 * sizeof(void*) && alignof(D) <= alignof(void*) &&
                               std::is_nothrow_move_constructible_v<D>;
  template <class D>
  static R call_in_place(void* p, Args... args) {
    return std::invoke(*static_cast<D*>(p), std::forward<Args>(args)...);
  }
  template <class D>
  static R call_on_heap(void* p, Args... args) {
    return std::invoke(**static_cast<D**>(p), std::forward<Args>(args)...);
  }
  template <class D>
  static void manage_in_place(void* to, void* from) noexcept {
    if (to != nullptr) ::new (to) D(std::move(*static_cast<D*>(from)));
    static_cast<D*>(from)->~D();
  }
  template <class D>
  static void manage_on_heap(void* to, void* from) noexcept {
    D*& src = *static_cast<D**>(from);
    if (to != nullptr) ::new (to) D*(src);
    else delete src;
  }
  template <class D>
  static constexpr Ops ops_for = fits<D> ? Ops{&call_in_place<D>, std::is_trivially_copyable_v<D> ? nullptr : &manage_in_place<D>}
                                         : Ops{&call_on_heap<D>, &manage_on_heap<D>};

  void reset() noexcept {
    if (ops_ != nullptr && ops_->manage != nullptr) ops_->manage(nullptr, &buf_);
    ops_ = nullptr;
  }
  void take(Function& o) noexcept {
    if (o.ops_ == nullptr) return;
    if (o.ops_->manage != nullptr) o.ops_->manage(&buf_, &o.buf_);
    else std::memcpy(&buf_, &o.buf_, sizeof buf_);  // trivially copyable, in place
    ops_ = std::exchange(o.ops_, nullptr);
  }

  alignas(void*) unsigned char buf_[3 * sizeof(void*)];
  const Ops* ops_ = nullptr;
};

}  // namespace evw::detail
