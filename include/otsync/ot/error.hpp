// Errors the OT core reports, as std::error_code values of one category.
//
// Thread safety: all functions are pure.
#pragma once

#include <system_error>

namespace otsync::ot {

/// Every way the OT core (and the op codec, on its behalf) rejects an op.
/// The messages of the first group are ot-text-unicode's own, word for word,
/// because ShareDB relays them to clients; the second group is otsync's
/// stricter rules (see the wire protocol notes, section 6).
enum class errc {
  // ot-text-unicode's checkOp / apply / invert messages.
  op_not_array = 1,             ///< "Op must be an array of components"
  delete_not_number_or_string,  ///< "Delete must be number or string"
  empty_delete,                 ///< "Deletes must not be empty"
  empty_insert,                 ///< "Inserts cannot be empty"
  non_positive_skip,            ///< "Skip components must be >0"
  adjacent_skips,               ///< "Adjacent skip components should be combined"
  trailing_skip,                ///< "Op has a trailing skip"
  op_too_long,                  ///< "The op is too long for this document"
  not_invertible,               ///< invert() of an op with a numeric delete
  invalid_selection,            ///< "Invalid selection"
  // otsync's stricter rules.
  null_component,       ///< null where a component was expected
  boolean_component,    ///< JS silently ignores booleans; we refuse them
  non_integer_length,   ///< fractional skip or delete length
  length_out_of_range,  ///< a length, or the op's total length, is 2^53 or more
  invalid_utf8,         ///< text is not well-formed UTF-8
  lone_surrogate,       ///< text encodes a lone UTF-16 surrogate
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// The largest length JSON clients can represent exactly (2^53 - 1).
inline constexpr unsigned long long max_length = (1ULL << 53U) - 1U;

}  // namespace otsync::ot

template <>
struct std::is_error_code_enum<otsync::ot::errc> : std::true_type {};
