// The public keys that verify RS256 and ES256 tokens, read from a JWKS or a
// PEM file with OpenSSL 3 (private to the auth layer).
//
// Thread safety: loading is pure; a loaded EVP_PKEY is only read afterwards,
// which OpenSSL allows from any number of threads.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/evp.h>

namespace otsync::auth::detail {

/// What a key verifies: the algorithm is the key's, never the token's.
enum class key_type {
  rsa,      ///< RS256
  ec_p256,  ///< ES256
};

struct pkey_free {
  void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

struct public_key {
  key_type type;
  std::optional<std::string> kid;  ///< JWKS `kid`; PEM keys have none
  pkey_ptr key;
};

/// Why a key file is refused, with a message an operator can act on.
class key_file_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Key files larger than this are refused (a JWKS of a few keys is a few KiB).
inline constexpr std::size_t max_key_file_bytes = std::size_t{1} << 20;

/// The keys of `path`, a JWKS (its text starts with `{`) or PEM `PUBLIC KEY`
/// blocks. Throws key_file_error.
[[nodiscard]] std::vector<public_key> load_public_keys(const std::filesystem::path& path);
/// The keys of a JWKS text. Throws key_file_error.
[[nodiscard]] std::vector<public_key> parse_jwks(std::string_view text);
/// The keys of PEM text (one or more `PUBLIC KEY` blocks). Throws key_file_error.
[[nodiscard]] std::vector<public_key> parse_pem(std::string_view text);

}  // namespace otsync::auth::detail
