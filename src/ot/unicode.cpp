#include "otsync/ot/unicode.hpp"

#include <bit>
#include <cstring>

namespace otsync::ot::unicode {

std::size_t count_code_points(std::string_view text) noexcept {
  // Counting lead bytes is branch-free and vectorises well.
  std::size_t count = 0;
  for (const char c : text) count += is_lead_byte(static_cast<unsigned char>(c)) ? 1U : 0U;
  return count;
}

std::size_t byte_offset(std::string_view text, std::size_t index) noexcept {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  std::size_t offset = 0;
  // Eight bytes at a time while the target lies beyond them: a continuation
  // byte is 10xxxxxx, so it has bit 7 set and bit 6 (shifted to bit 7) clear.
  while (offset + 8 <= size) {
    std::uint64_t word = 0;
    std::memcpy(&word, bytes + offset, 8);
    const std::uint64_t continuation = word & ~(word << 1U) & 0x8080808080808080ULL;
    const auto leads = static_cast<std::size_t>(8 - std::popcount(continuation));
    if (leads > index) break;
    index -= leads;
    offset += 8;
  }
  for (; offset < size; ++offset) {
    if (is_lead_byte(bytes[offset])) {
      if (index == 0) return offset;
      --index;
    }
  }
  return size;
}

std::string_view substr(std::string_view text, std::size_t first, std::size_t count) noexcept {
  const std::size_t begin = byte_offset(text, first);
  const std::string_view rest = text.substr(begin);
  return rest.substr(0, byte_offset(rest, count));
}

utf8_status validate_utf8(std::string_view text, std::size_t& code_points) noexcept {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  std::size_t count = 0;
  std::size_t i = 0;
  while (i < size) {
    const unsigned char b0 = bytes[i];
    if (b0 < 0x80) {
      ++i;
      ++count;
      continue;
    }
    std::size_t length = 0;
    std::uint32_t cp = 0;
    std::uint32_t min = 0;
    if ((b0 & 0xE0U) == 0xC0U) {
      length = 2;
      cp = b0 & 0x1FU;
      min = 0x80;
    } else if ((b0 & 0xF0U) == 0xE0U) {
      length = 3;
      cp = b0 & 0x0FU;
      min = 0x800;
    } else if ((b0 & 0xF8U) == 0xF0U) {
      length = 4;
      cp = b0 & 0x07U;
      min = 0x10000;
    } else {
      return utf8_status::invalid;
    }
    if (i + length > size) return utf8_status::invalid;
    for (std::size_t k = 1; k < length; ++k) {
      const unsigned char b = bytes[i + k];
      if ((b & 0xC0U) != 0x80U) return utf8_status::invalid;
      cp = (cp << 6) | (b & 0x3FU);
    }
    if (cp < min || cp > 0x10FFFF) return utf8_status::invalid;
    if (cp >= 0xD800 && cp <= 0xDFFF) return utf8_status::lone_surrogate;
    i += length;
    ++count;
  }
  code_points = count;
  return utf8_status::valid;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace otsync::ot::unicode
