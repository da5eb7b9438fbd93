#include "otsync/ot/text_unicode.hpp"
#include "otsync/ot/unicode.hpp"

namespace otsync::ot {
namespace {

std::error_code check_text(const component& c) noexcept {
  std::size_t code_points = 0;
  switch (unicode::validate_utf8(c.text(), code_points)) {
    case unicode::utf8_status::valid:
      break;
    case unicode::utf8_status::invalid:
      return errc::invalid_utf8;
    case unicode::utf8_status::lone_surrogate:
      return errc::lone_surrogate;
  }
  // A component built with a wrong cached length is as bad as invalid text.
  return code_points == c.length() ? std::error_code{} : make_error_code(errc::invalid_utf8);
}

}  // namespace

std::error_code check(const op& operation) noexcept {
  if (operation.validated()) return {};
  // Bounds every walk: no sum of lengths below can overflow 64 bits.
  std::uint64_t total = 0;
  const component* last = nullptr;
  for (const component& c : operation) {
    switch (c.kind()) {
      case component_kind::erase:
        if (c.length() == 0) return errc::empty_delete;
        if (c.has_text()) {
          if (auto error = check_text(c)) return error;
        }
        break;
      case component_kind::insert:
        if (c.length() == 0 || c.text().empty()) return errc::empty_insert;
        if (auto error = check_text(c)) return error;
        break;
      case component_kind::skip:
        if (c.length() == 0) return errc::non_positive_skip;
        if (last != nullptr && last->is_skip()) return errc::adjacent_skips;
        break;
    }
    if (c.length() > max_length) return errc::length_out_of_range;
    total += c.length();
    if (total > max_length) return errc::length_out_of_range;
    last = &c;
  }
  if (last != nullptr && last->is_skip()) return errc::trailing_skip;
  return {};
}

std::error_code validate(op& operation) noexcept {
  auto error = check(operation);
  operation.validated_ = !error;
  return error;
}

op normalize(const op& operation) {
  op_builder builder(operation.size());
  for (const component& c : operation) builder.append(c);
  return std::move(builder).finish();
}

}  // namespace otsync::ot
