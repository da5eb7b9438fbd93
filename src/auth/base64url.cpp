#include "otsync/auth/base64url.hpp"

#include <array>
#include <cstdint>

namespace otsync::auth {
namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::uint8_t not_base64url = 0xff;

constexpr std::array<std::uint8_t, 256> make_decoding_table() {
  std::array<std::uint8_t, 256> table{};
  for (auto& entry : table) entry = not_base64url;
  for (std::uint8_t value = 0; value < 64; ++value) {
    table[static_cast<unsigned char>(alphabet[value])] = value;
  }
  return table;
}
constexpr auto decoding_table = make_decoding_table();

constexpr std::size_t encoded_length(std::size_t bytes) {
  return (bytes * 4 + 2) / 3;
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve(encoded_length(bytes.size()));
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    unsigned v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(alphabet[(v >> shift) & 63]);
  }
  if (bytes.size() - i == 1) {
    unsigned v = byte(i) << 16;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
  } else if (bytes.size() - i == 2) {
    unsigned v = byte(i) << 16 | byte(i + 1) << 8;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  // 4k+1 characters would leave 6 bits: not a whole byte.
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  unsigned pending = 0;  // bits read but not yet emitted, in the low `pending_bits`
  unsigned pending_bits = 0;
  for (char c : text) {
    std::uint8_t value = decoding_table[static_cast<unsigned char>(c)];
    if (value == not_base64url) return std::nullopt;
    pending = (pending << 6 | value) & 0xfffu;
    pending_bits += 6;
    if (pending_bits >= 8) {
      pending_bits -= 8;
      out.push_back(static_cast<char>((pending >> pending_bits) & 0xffu));
      pending &= (1u << pending_bits) - 1;
    }
  }
  // Non-zero leftover bits would give a second encoding of the same bytes.
  if (pending != 0) return std::nullopt;
  return out;
}

}  // namespace otsync::auth
