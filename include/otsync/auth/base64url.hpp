// Base64url (RFC 4648 §5) without padding, the encoding of connection ids and
// of the three parts of a JWT.
//
// Thread safety: pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace otsync::auth {

/// Base64url without padding.
[[nodiscard]] std::string base64url_encode(std::string_view bytes);

/// The bytes `text` encodes, or nullopt unless `text` is canonical base64url
/// without padding: only `A-Z a-z 0-9 - _`, no `=`, no length of the form
/// 4k+1, and zero in the unused low bits of the last character (so every
/// byte string has exactly one accepted encoding).
[[nodiscard]] std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace otsync::auth
