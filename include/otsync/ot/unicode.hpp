// UTF-8 helpers for code-point indexed text.
//
// Thread safety: all functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace otsync::ot::unicode {

/// True when `byte` starts a code point (it is not a 10xxxxxx continuation byte).
constexpr bool is_lead_byte(unsigned char byte) noexcept {
  return (byte & 0xC0U) != 0x80U;
}

/// Number of code points in `text`, which must be valid UTF-8.
std::size_t count_code_points(std::string_view text) noexcept;

/// Byte offset of code point `index` in valid UTF-8 `text`; `text.size()` when
/// `index` is at or past the end.
std::size_t byte_offset(std::string_view text, std::size_t index) noexcept;

/// Sub-string of valid UTF-8 `text` from code point `first`, `count` code points
/// long, clamped to the end of the text.
std::string_view substr(std::string_view text, std::size_t first, std::size_t count) noexcept;

/// Outcome of strict UTF-8 validation.
enum class utf8_status : std::uint8_t {
  valid,
  invalid,         ///< malformed, overlong, truncated or out of range
  lone_surrogate,  ///< encodes U+D800..U+DFFF, which no valid text contains
};

/// Validates `text` as strict UTF-8 (RFC 3629) and counts its code points.
/// `code_points` is written only when the result is `valid`.
utf8_status validate_utf8(std::string_view text, std::size_t& code_points) noexcept;

/// Appends code point `cp` (at most U+10FFFF) to `out` as UTF-8.
void append_utf8(std::string& out, char32_t cp);

}  // namespace otsync::ot::unicode
