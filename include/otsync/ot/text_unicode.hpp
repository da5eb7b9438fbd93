// The text-unicode OT type: check, normalize, apply, compose, transform,
// cursor transforms and the invert helpers, identical in every result to
// ot-text-unicode@4.0.0 (any difference would split a document between JS
// clients and the server).
//
// Every length and position counts Unicode code points. Functions taking ops
// from outside run `check` first and report its error; none throws except
// std::bad_alloc.
//
// Thread safety: all functions are pure (apply mutates only its argument).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "otsync/ot/error.hpp"
#include "otsync/ot/op.hpp"
#include "otsync/ot/result.hpp"
#include "otsync/ot/rope.hpp"

namespace otsync::ot {

inline constexpr std::string_view type_name = "text-unicode";
inline constexpr std::string_view type_uri = "http://sharejs.org/types/text-unicode";

/// Which op wins when both insert at the same place: `left` goes first.
enum class side : std::uint8_t { left, right };

/// Every rejection of ot-text-unicode's `checkOp` (empty components, skips
/// that are not positive, adjacent skips, a trailing skip), plus otsync's
/// stricter rules: text must be valid UTF-8 without lone surrogates, and
/// lengths (each, and in total) stay below 2^53. The first bad component
/// decides the error, as in JS.
std::error_code check(const op& operation) noexcept;

namespace detail {
/// `check`, skipping the call for ops already known valid (the hot path).
inline std::error_code checked(const op& operation) noexcept {
  return operation.validated() ? std::error_code{} : check(operation);
}
}  // namespace detail

/// Drops empty components, merges neighbours of one kind and a trailing skip.
/// Takes any op, checked or not (as JS). Law: normalize(normalize(x)) == normalize(x).
op normalize(const op& operation);

/// Applies `operation` to `doc` in place. A delete running past the end is cut
/// short; a skip past the end is `errc::op_too_long`. On any error `doc` is
/// left unchanged.
std::error_code apply(rope& doc, const op& operation);
/// Convenience for strings: the new text.
result<std::string> apply(std::string_view doc, const op& operation);

/// One op equal to `first` followed by `second`.
/// Law: apply(apply(d, a), b) == apply(d, compose(a, b)).
result<op> compose(const op& first, const op& second);

/// `operation` rewritten to apply after `other` (both made on one document);
/// `which` breaks ties between inserts at one place. Port of the take/peek walk.
/// Law (TP1): apply(apply(d, a), transform(b, a, right)) ==
///            apply(apply(d, b), transform(a, b, left)).
result<op> transform(const op& operation, const op& other, side which);

/// Where `cursor` ends up after `operation`; an insert at the cursor does not
/// move it, a delete around it pulls it to the start of the deleted range.
/// Takes any op, checked or not (as JS).
std::uint64_t transform_position(std::uint64_t cursor, const op& operation) noexcept;

/// As `transform_position`, but an insert exactly at the cursor moves it past the inserted text
/// when `is_own_op`: the author's caret follows what they type (presence; the rule of otsync's JS
/// type package, `clients/js`).
std::uint64_t transform_caret(std::uint64_t cursor, const op& operation, bool is_own_op) noexcept;

/// A selection: a caret when `anchor == focus`; focus may precede anchor.
struct selection {
  std::uint64_t anchor = 0;
  std::uint64_t focus = 0;
  friend bool operator==(const selection&, const selection&) = default;
};
selection transform_selection(selection range, const op& operation) noexcept;
/// Both ends moved by `transform_caret` (a presence's range).
selection transform_selection(selection range, const op& operation, bool is_own_op) noexcept;

[[nodiscard]] inline bool is_noop(const op& operation) noexcept {
  return operation.empty();
}
/// True when no delete is numeric, so `invert` can succeed.
[[nodiscard]] bool is_invertible(const op& operation) noexcept;
/// Records the deleted text of every numeric delete, read from `doc` (the
/// document the op applies to); a delete past the end records what is there.
op make_invertible(const op& operation, const rope& doc);
/// The op that undoes `operation`; `errc::not_invertible` if a delete is numeric.
result<op> invert(const op& operation);
/// Replaces every `{d:"text"}` with `{d:N}`.
op strip_invertible(const op& operation);

}  // namespace otsync::ot
