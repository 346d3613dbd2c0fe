// evw — the callback holder: any callable `void(W&, int)`, stored in place
// when small (a capture of up to three pointers), on the heap otherwise.
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
      call_ = [](void* p, Args... args) -> R {
        return std::invoke(*static_cast<D*>(p), std::forward<Args>(args)...);
      };
      // A trivially copyable callable (a lambda capturing pointers, ints) has
      // no manager: it moves as bytes and needs no destruction. (Loop::post
      // moves every posted callable twice.)
      if constexpr (!std::is_trivially_copyable_v<D>)
        manage_ = [](void* to, void* from) noexcept {
          if (to != nullptr) ::new (to) D(std::move(*static_cast<D*>(from)));
          static_cast<D*>(from)->~D();
        };
    } else {
      ::new (static_cast<void*>(&buf_)) D*(new D(std::forward<F>(f)));
      call_ = [](void* p, Args... args) -> R {
        return std::invoke(**static_cast<D**>(p), std::forward<Args>(args)...);
      };
      manage_ = [](void* to, void* from) noexcept {
        D*& src = *static_cast<D**>(from);
        if (to != nullptr) ::new (to) D*(src);
        else delete src;
      };
    }
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

  explicit operator bool() const noexcept { return call_ != nullptr; }
  R operator()(Args... args) { return call_(&buf_, std::forward<Args>(args)...); }

 private:
  template <class D>
  static constexpr bool fits = sizeof(D) <= 3 * sizeof(void*) && alignof(D) <= alignof(std::max_align_t) &&
                               std::is_nothrow_move_constructible_v<D>;
  void reset() noexcept {
    if (manage_ != nullptr) manage_(nullptr, &buf_);
    call_ = nullptr;
    manage_ = nullptr;
  }
  void take(Function& o) noexcept {
    if (o.manage_ != nullptr) o.manage_(&buf_, &o.buf_);
    else if (o.call_ != nullptr) std::memcpy(&buf_, &o.buf_, sizeof buf_);  // trivially copyable, in place
    call_ = std::exchange(o.call_, nullptr);
    manage_ = std::exchange(o.manage_, nullptr);
  }

  alignas(std::max_align_t) unsigned char buf_[3 * sizeof(void*)];
  R (*call_)(void*, Args...) = nullptr;
  void (*manage_)(void* to, void* from) noexcept = nullptr;
};

}  // namespace evw::detail
