// A value or the error that prevented it; the OT core's way of failing
// without exceptions across its API.
//
// Thread safety: a plain value type.
#pragma once

#include <cassert>
#include <system_error>
#include <utility>
#include <variant>

namespace otsync::ot {

/// Holds either a `T` or a non-zero `std::error_code`.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : state_(std::move(value)) {}                     // NOLINT(google-explicit-constructor)
  result(std::error_code error) : state_(error) { assert(error); }  // NOLINT(google-explicit-constructor)
  template <class E, class = std::enable_if_t<std::is_error_code_enum_v<E>>>
  result(E error) : result(std::error_code(make_error_code(error))) {}  // NOLINT

  [[nodiscard]] bool has_value() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  [[nodiscard]] T& value() & { return std::get<0>(state_); }
  [[nodiscard]] const T& value() const& { return std::get<0>(state_); }
  [[nodiscard]] T&& value() && { return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error; a default (success) code when a value is held.
  [[nodiscard]] std::error_code error() const noexcept { return has_value() ? std::error_code{} : std::get<1>(state_); }

 private:
  std::variant<T, std::error_code> state_;
};

}  // namespace otsync::ot
