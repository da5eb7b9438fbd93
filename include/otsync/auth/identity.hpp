// Connection identities that cannot be borrowed. The server mints every
// connection id (`src`) itself: random, with a tag keyed by a server secret
// that all instances share, so any instance can tell an id it (or a sibling)
// issued from one a client made up. Other connections and the REST API never
// see a real id, only its alias (a keyed hash): the real id is a bearer
// secret known to its owner alone, which is what lets a reconnecting client
// reclaim it in its handshake and nobody else.
//
// Thread safety: immutable after construction; every member is const.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "otsync/auth/base64url.hpp"  // base64url_encode, the encoding of ids

namespace otsync::auth {

/// Secrets shorter than this are refused (16 bytes of entropy).
inline constexpr std::size_t min_identity_secret_bytes = 16;

class identity_keys {
 public:
  /// `secret`: at least `min_identity_secret_bytes` bytes (throws std::invalid_argument otherwise).
  explicit identity_keys(std::string secret);
  /// A fresh random secret (for a single process with nothing to share it with).
  [[nodiscard]] static std::string random_secret();

  /// A new connection id: 128 random bits and a 128-bit tag, base64url, 44 characters.
  [[nodiscard]] std::string mint_id() const;
  /// Whether `id` was minted under this secret (a constant-time tag check).
  [[nodiscard]] bool is_minted(std::string_view id) const;
  /// What everyone but the owner sees in place of `src`: "~" and 22
  /// base64url characters of a keyed hash; the same on every instance that
  /// shares the secret. An empty src (an op the server wrote) stays empty.
  [[nodiscard]] std::string alias(std::string_view src) const;

 private:
  [[nodiscard]] std::string tag(std::string_view domain, std::string_view data, std::size_t bytes) const;
  std::string secret_;
};

}  // namespace otsync::auth
