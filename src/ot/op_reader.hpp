// The take/peek walk over one op, ported from ot-text-unicode's makeTake.
#pragma once

#include <cstdint>
#include <optional>

#include "otsync/ot/op.hpp"
#include "otsync/ot/unicode.hpp"

namespace otsync::ot::detail {

/// Which kind of component `take` must not split.
enum class indivisible : std::uint8_t { none, insert, erase };

/// Hands out an op's components front to back in pieces of at most a given
/// length. Past the end the op behaves as an endless skip.
class op_reader {
 public:
  explicit op_reader(const op& operation) noexcept : op_(operation) {}

  /// Up to `limit` code points from the front; a component of kind `whole` is
  /// taken entirely whatever its length.
  component_view take(std::uint64_t limit, indivisible whole) noexcept {
    if (index_ == op_.size()) return {component_kind::skip, limit, {}, false};
    const component& c = op_[index_];
    const std::uint64_t remaining = c.length() - offset_;
    const bool all = remaining <= limit || (whole == indivisible::insert && c.is_insert()) ||
                     (whole == indivisible::erase && c.is_erase());
    return all ? take_rest(c, remaining) : take_part(c, limit);
  }

  /// The rest of the next component, or nothing at the end of the op.
  std::optional<component_view> take_all() noexcept {
    if (index_ == op_.size()) return std::nullopt;
    const component& c = op_[index_];
    return take_rest(c, c.length() - offset_);
  }

  /// True when the next component is an insert.
  [[nodiscard]] bool peek_is_insert() const noexcept { return index_ < op_.size() && op_[index_].is_insert(); }

 private:
  component_view take_rest(const component& c, std::uint64_t remaining) noexcept {
    component_view part{c.kind(), remaining, {}, c.has_text()};
    if (c.has_text()) part.text = std::string_view(c.text()).substr(byte_offset_);
    ++index_;
    offset_ = 0;
    byte_offset_ = 0;
    return part;
  }

  component_view take_part(const component& c, std::uint64_t limit) noexcept {
    component_view part{c.kind(), limit, {}, c.has_text()};
    if (c.has_text()) {
      const std::string_view rest = std::string_view(c.text()).substr(byte_offset_);
      const std::size_t bytes = unicode::byte_offset(rest, limit);
      part.text = rest.substr(0, bytes);
      byte_offset_ += bytes;
    }
    offset_ += limit;
    return part;
  }

  const op& op_;
  std::size_t index_ = 0;
  std::uint64_t offset_ = 0;     // code points into op_[index_]
  std::size_t byte_offset_ = 0;  // the same offset in bytes, for text components
};

}  // namespace otsync::ot::detail
