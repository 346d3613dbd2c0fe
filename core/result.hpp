// evw::Result<T> — a value or the exception that prevented it; what
// WorkPool::submit hands to `done` (C++20 has no std::expected).
//
//   pool.submit(loop, [] { return parse(file); }, [](evw::Result<Config> r) {
//     if (r) use(*r);                                         // or r.value(): rethrows
//     else log(r.error());                                    // std::exception_ptr
//   });
//
// Caveats: value() on a failed Result rethrows its exception; operator* and
// operator-> on a failed Result are undefined, as for std::optional.
#pragma once

#include <exception>
#include <functional>
#include <type_traits>
#include <utility>
#include <variant>

namespace evw {

/// A T, or the exception that was thrown instead of producing it.
template <class T>
class Result {
  static_assert(!std::is_reference_v<T> && !std::is_same_v<std::remove_cv_t<T>, std::exception_ptr>,
                "evw::Result<T>: T must be an object type other than std::exception_ptr");

 public:
  using value_type = T;

  /// @brief A result holding value.
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit, as std::expected
  /// @brief A failed result holding error (not null).
  static Result failure(std::exception_ptr error) { return Result(std::move(error)); }
  /// @brief The result of f(), or the exception it threw.
  template <class F>
  static Result capture(F&& f) {
    try {
      return Result(std::invoke(std::forward<F>(f)));
    } catch (...) {
      return failure(std::current_exception());
    }
  }

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  /// @brief The value. @throws the stored exception if there is none.
  T& value() & { return check(), std::get<0>(v_); }
  const T& value() const& { return check(), std::get<0>(v_); }
  T&& value() && { return check(), std::move(std::get<0>(v_)); }
  T& operator*() & noexcept { return *std::get_if<0>(&v_); }
  const T& operator*() const& noexcept { return *std::get_if<0>(&v_); }
  T&& operator*() && noexcept { return std::move(*std::get_if<0>(&v_)); }
  T* operator->() noexcept { return std::get_if<0>(&v_); }
  const T* operator->() const noexcept { return std::get_if<0>(&v_); }
  /// @brief The exception, or null if there is a value.
  std::exception_ptr error() const noexcept { return has_value() ? nullptr : std::get<1>(v_); }

 private:
  explicit Result(std::exception_ptr error) : v_(std::in_place_index<1>, std::move(error)) {}
  void check() const {
    if (!has_value()) std::rethrow_exception(std::get<1>(v_));
  }
  std::variant<T, std::exception_ptr> v_;
};

/// The result of work that returns nothing: success, or an exception.
template <>
class Result<void> {
 public:
  using value_type = void;

  /// @brief A successful result.
  Result() noexcept = default;
  static Result failure(std::exception_ptr error) noexcept {
    Result r;
    r.error_ = std::move(error);
    return r;
  }
  template <class F>
  static Result capture(F&& f) noexcept {
    try {
      std::invoke(std::forward<F>(f));
      return Result();
    } catch (...) {
      return failure(std::current_exception());
    }
  }

  bool has_value() const noexcept { return error_ == nullptr; }
  explicit operator bool() const noexcept { return has_value(); }
  /// @brief Nothing. @throws the stored exception if the work failed.
  void value() const {
    if (error_) std::rethrow_exception(error_);
  }
  std::exception_ptr error() const noexcept { return error_; }

 private:
  std::exception_ptr error_;
};

}  // namespace evw
