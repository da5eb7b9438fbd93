// Bearer tokens: JWS compact JWTs signed with HS256 (a shared secret), RS256
// (RSA keys of at least 2048 bits) or ES256 (P-256 keys), the public keys
// read once from a JWKS or PEM file. The key decides the algorithm, never the
// token: HS256 is checked against the shared secret alone, RS256 against RSA
// keys alone, ES256 against P-256 keys alone, and `none` and everything else
// is refused, so a token cannot turn a public key into an HMAC secret.
//
// Keys and `kid`: a token with a `kid` is checked against the key with that
// kid only; keys without one (every key of a PEM file) are tried for any
// token of their algorithm, as is every key when the token has no kid. HS256
// ignores `kid` (there is one secret).
//
// Claims: `exp` and `nbf` are NumericDates (numbers; strings are refused),
// checked with `clock_skew` of tolerance; a token without `exp` never
// expires (the issuer decides; tokens are checked when a connection
// authenticates, not for its whole life). `iat` is not checked. `iss` and
// `aud` are checked when configured. The permissions claim (see access.hpp)
// becomes the token's access rules.
//
// Thread safety: immutable after construction; copies share the keys.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "otsync/auth/access.hpp"

namespace otsync::auth {

/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash.
inline constexpr std::size_t min_hs256_secret_bytes = 32;
/// RSA moduli below this are refused when the keys are loaded.
inline constexpr unsigned min_rsa_key_bits = 2048;

struct jwt_settings {
  /// HS256 secret; empty: HS256 tokens are refused.
  std::string hs256_secret;
  /// A JWKS file (`{"keys":[…]}`) or PEM `PUBLIC KEY` blocks; empty: none.
  std::filesystem::path public_keys_file;
  /// Required `iss`; empty: not checked.
  std::string issuer;
  /// Required member of `aud` (a string or an array of strings); empty: not checked.
  std::string audience;
  /// Tolerance for `exp` and `nbf` against the caller's clock.
  std::chrono::seconds clock_skew{60};
  /// Longer tokens are refused before any decoding.
  std::size_t max_token_bytes = 8192;
  /// The claim holding `{"read": [patterns], "write": [patterns]}`.
  std::string permissions_claim = "otsync";
};

enum class token_errc {
  malformed = 1,          ///< not three base64url parts, or a part is not a JSON object
  too_large,              ///< longer than `max_token_bytes`
  unsupported_algorithm,  ///< `alg` is not one the configured keys verify (`none` never is)
  bad_signature,          ///< no candidate key verifies the signature
  unknown_key,            ///< no configured key has the token's `kid`
  expired,                ///< `exp` passed (beyond the skew)
  not_yet_valid,          ///< `nbf` is ahead (beyond the skew)
  wrong_issuer,           ///< `iss` missing or not the configured issuer
  wrong_audience,         ///< `aud` missing or without the configured audience
  bad_claims,             ///< a claim has the wrong shape (`exp` a string, a pattern not a string, …)
};

/// A stable lowercase name, for logs and metrics ("bad_signature").
[[nodiscard]] std::string_view token_errc_name(token_errc kind) noexcept;

struct token_error {
  token_errc kind;
  /// For logs and for the client; never quotes the token or its claims.
  std::string message;
};

struct verified_token {
  /// `sub`; empty when absent.
  std::string subject;
  /// `exp`; nullopt when absent (the token does not expire).
  std::optional<std::chrono::system_clock::time_point> expires_at;
  /// From the permissions claim; grants nothing when the claim is absent.
  access_rules access;
  /// `iss`; empty when absent.
  std::string issuer;
};

class jwt_verifier {
 public:
  /// A verifier, or why `settings` make none (no secret and no key file, a
  /// secret shorter than `min_hs256_secret_bytes`, an unreadable or invalid
  /// key file, a key of an unsupported type or curve, an RSA key below
  /// `min_rsa_key_bits`, a private key in the file, two keys with one kid).
  [[nodiscard]] static std::variant<jwt_verifier, std::string> create(const jwt_settings& settings);

  /// The token's identity and permissions, or why it is refused. `now` is
  /// the caller's clock (a parameter so tests can move it).
  [[nodiscard]] std::variant<verified_token, token_error> verify(std::string_view token,
                                                                 std::chrono::system_clock::time_point now) const;

 private:
  struct key_ring;  // jwt.cpp: the settings (the secret among them) and the parsed public keys
  explicit jwt_verifier(std::shared_ptr<const key_ring> keys) : keys_(std::move(keys)) {}
  std::shared_ptr<const key_ring> keys_;
};

}  // namespace otsync::auth
