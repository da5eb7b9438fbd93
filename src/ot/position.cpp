#include <algorithm>

#include "otsync/ot/text_unicode.hpp"

namespace otsync::ot {

std::uint64_t transform_position(std::uint64_t cursor, const op& operation) noexcept {
  // The walk stops once it reaches the cursor, so an insert exactly at the cursor leaves it where it is.
  return transform_caret(cursor, operation, false);
}

std::uint64_t transform_caret(std::uint64_t cursor, const op& operation, bool is_own_op) noexcept {
  std::uint64_t position = 0;
  for (std::size_t i = 0; i < operation.size() && (cursor > position || (is_own_op && cursor == position)); ++i) {
    const component& c = operation[i];
    switch (c.kind()) {
      case component_kind::skip:
        position += c.length();
        break;
      case component_kind::insert:
        position += c.length();
        cursor += c.length();
        break;
      case component_kind::erase:
        cursor -= std::min(c.length(), cursor - position);
        break;
    }
  }
  return cursor;
}

selection transform_selection(selection range, const op& operation) noexcept {
  return {transform_position(range.anchor, operation), transform_position(range.focus, operation)};
}

selection transform_selection(selection range, const op& operation, bool is_own_op) noexcept {
  return {transform_caret(range.anchor, operation, is_own_op), transform_caret(range.focus, operation, is_own_op)};
}

}  // namespace otsync::ot
