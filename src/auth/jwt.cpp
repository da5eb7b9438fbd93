// Signatures are checked with OpenSSL 3's EVP API directly, not libjwt:
// libjwt 1.10 lets the token choose its algorithm, reads no JWKS and parses
// JSON with jansson, outside our depth bounds; pinning, keys and claims would
// be ours anyway, and what it would add (HMAC, EVP_DigestVerify) is a few calls.
#include "otsync/auth/jwt.hpp"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cmath>
#include <vector>

#include <nlohmann/json.hpp>

#include "otsync/auth/base64url.hpp"
#include "otsync/protocol/json_parse.hpp"
#include "public_keys.hpp"

namespace otsync::auth {

struct jwt_verifier::key_ring {
  jwt_settings settings;
  std::vector<detail::public_key> keys;
};

namespace {

using detail::key_type;
using nlohmann::json;

// A JOSE header is flat and a claims set a few levels deep; this is plenty.
constexpr std::size_t max_jose_depth = 16;
constexpr std::size_t max_jose_values = 10000;
constexpr std::size_t hs256_signature_bytes = 32;
// JWS ES256 signatures are r || s, 32 bytes each (RFC 7518 §3.4), not DER.
constexpr std::size_t es256_half_bytes = 32;

template <auto free_function>
struct openssl_free {
  template <class T>
  void operator()(T* p) const noexcept {
    free_function(p);
  }
};
using bignum_ptr = std::unique_ptr<BIGNUM, openssl_free<BN_free>>;
using ecdsa_signature_ptr = std::unique_ptr<ECDSA_SIG, openssl_free<ECDSA_SIG_free>>;
using digest_context_ptr = std::unique_ptr<EVP_MD_CTX, openssl_free<EVP_MD_CTX_free>>;

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

token_error fail(token_errc kind, std::string message) {
  return token_error{kind, std::move(message)};
}

// The token's `alg` in a message only when it is a registered JWS algorithm
// (RFC 7518 and its successors): messages go to logs, token text does not.
std::string alg_for_message(const std::string& alg) {
  static constexpr std::string_view registered[] = {"none",  "HS256", "HS384", "HS512", "RS256",
                                                    "RS384", "RS512", "ES256", "ES384", "ES512",
                                                    "PS256", "PS384", "PS512", "EdDSA", "ES256K"};
  for (auto name : registered) {
    if (alg == name) return "\"" + alg + "\"";
  }
  return "not a registered JWS algorithm";
}

bool hs256_verifies(std::string_view secret, std::string_view signing_input, std::string_view signature) {
  if (signature.size() != hs256_signature_bytes) return false;
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), bytes_of(signing_input), signing_input.size(),
           mac.data(), &length) == nullptr ||
      length != hs256_signature_bytes) {
    ERR_clear_error();
    return false;
  }
  return CRYPTO_memcmp(mac.data(), signature.data(), hs256_signature_bytes) == 0;
}

// SHA-256 and `key`'s own scheme: PKCS #1 v1.5 for RSA, ECDSA (DER signature) for EC.
bool signature_verifies(EVP_PKEY* key, std::string_view signing_input, std::string_view signature) {
  digest_context_ptr context(EVP_MD_CTX_new());
  bool verified = context && EVP_DigestVerifyInit(context.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
                  EVP_DigestVerify(context.get(), bytes_of(signature), signature.size(), bytes_of(signing_input),
                                   signing_input.size()) == 1;
  // A failed check leaves errors on this thread's queue, where a TLS call
  // on the same thread would find them.
  if (!verified) ERR_clear_error();
  return verified;
}

// The DER ECDSA-Sig-Value OpenSSL verifies, from JWS's raw r || s.
std::optional<std::string> es256_signature_der(std::string_view raw) {
  if (raw.size() != 2 * es256_half_bytes) return std::nullopt;
  bignum_ptr r(BN_bin2bn(bytes_of(raw), static_cast<int>(es256_half_bytes), nullptr));
  bignum_ptr s(BN_bin2bn(bytes_of(raw.substr(es256_half_bytes)), static_cast<int>(es256_half_bytes), nullptr));
  ecdsa_signature_ptr signature(ECDSA_SIG_new());
  if (!r || !s || !signature || ECDSA_SIG_set0(signature.get(), r.get(), s.get()) != 1) return std::nullopt;
  (void)r.release();  // owned by `signature` now
  (void)s.release();
  int length = i2d_ECDSA_SIG(signature.get(), nullptr);
  if (length <= 0) return std::nullopt;
  std::string der(static_cast<std::size_t>(length), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(signature.get(), &out) != length) return std::nullopt;
  return der;
}

const char* type_name(key_type type) {
  return type == key_type::rsa ? "an RSA key" : "an EC P-256 key";
}

// A NumericDate claim (RFC 7519 §2): a JSON number of seconds since the epoch.
struct numeric_date {
  bool present = false;
  bool valid = true;
  double seconds = 0;
};
numeric_date read_numeric_date(const json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end()) return {};
  if (!it->is_number()) return {true, false, 0};
  double seconds = it->get<double>();
  return {true, std::isfinite(seconds), seconds};
}

std::chrono::system_clock::time_point time_point_from_seconds(double seconds) {
  using std::chrono::system_clock;
  using double_seconds = std::chrono::duration<double>;
  // Clamped, a second inside the clock's range so the conversion cannot overflow.
  double limit = std::chrono::duration_cast<double_seconds>(system_clock::duration::max()).count() - 1;
  if (seconds >= limit) return system_clock::time_point::max();
  if (seconds <= -limit) return system_clock::time_point::min();
  return system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(double_seconds(seconds)));
}

// The permissions claim `{"read": [...], "write": [...]}`: absent grants nothing.
std::variant<access_rules, std::string> read_access(const json& claims, const std::string& claim) {
  auto it = claims.find(claim);
  if (it == claims.end()) return access_rules();
  if (!it->is_object()) return "the \"" + claim + "\" claim is not an object";
  std::vector<std::string> lists[2];
  const char* names[2] = {"read", "write"};
  for (std::size_t list = 0; list < 2; ++list) {
    auto member = it->find(names[list]);
    if (member == it->end()) continue;
    std::string where = claim + "." + names[list];
    if (!member->is_array()) return where + " is not an array of patterns";
    if (member->size() > max_access_patterns) {
      return where + ": " + std::to_string(member->size()) + " patterns, at most " +
             std::to_string(max_access_patterns) + " are accepted";
    }
    for (std::size_t i = 0; i < member->size(); ++i) {
      const json& pattern = (*member)[i];
      if (!pattern.is_string()) return where + "[" + std::to_string(i) + "] is not a string";
      lists[list].push_back(pattern.get<std::string>());
    }
  }
  auto rules = access_rules::from_patterns(lists[0], lists[1]);
  if (auto* error = std::get_if<std::string>(&rules)) return claim + "." + *error;
  return rules;
}

// Nothing when `signature` verifies under a key `alg` and `kid` select, else why not.
std::optional<token_error> check_signature(const std::string& alg, const std::string* kid,
                                           std::string_view signing_input, const std::string& signature,
                                           const std::string& hs256_secret,
                                           const std::vector<detail::public_key>& keys) {
  if (alg == "HS256") {
    if (hs256_secret.empty()) {
      return fail(token_errc::unsupported_algorithm, "HS256 tokens are not accepted (no shared secret is configured)");
    }
    if (!hs256_verifies(hs256_secret, signing_input, signature)) {
      return fail(token_errc::bad_signature, "the HS256 signature does not verify");
    }
  } else if (alg == "RS256" || alg == "ES256") {
    key_type type = alg == "RS256" ? key_type::rsa : key_type::ec_p256;
    std::vector<EVP_PKEY*> candidates;
    bool any_of_type = false;
    for (const auto& key : keys) any_of_type = any_of_type || key.type == type;
    if (!any_of_type) {
      return fail(
          token_errc::unsupported_algorithm,
          alg + " tokens are not accepted (no " + (type == key_type::rsa ? "RSA" : "EC P-256") + " key is configured)");
    }
    const detail::public_key* named = nullptr;
    if (kid != nullptr) {
      for (const auto& key : keys) {
        if (key.kid == *kid) named = &key;
      }
    }
    if (named != nullptr) {
      if (named->type != type) {
        return fail(token_errc::unsupported_algorithm,
                    std::string("the key the token names is ") + type_name(named->type) + ", not for " + alg);
      }
      candidates.push_back(named->key.get());
    } else {
      // No key has the token's kid (or it has none): keys without a kid may verify it.
      for (const auto& key : keys) {
        if (key.type == type && (kid == nullptr || !key.kid)) candidates.push_back(key.key.get());
      }
      if (candidates.empty()) return fail(token_errc::unknown_key, "no configured key has the token's kid");
    }
    std::string der_signature;
    std::string_view checked_signature = signature;
    if (type == key_type::ec_p256) {
      auto der = es256_signature_der(signature);
      if (!der) {
        return fail(token_errc::bad_signature,
                    "an ES256 signature is 64 bytes (r || s), this one is " + std::to_string(signature.size()));
      }
      der_signature = std::move(*der);
      checked_signature = der_signature;
    }
    bool verified = false;
    for (EVP_PKEY* key : candidates) {
      if (signature_verifies(key, signing_input, checked_signature)) {
        verified = true;
        break;
      }
    }
    if (!verified) return fail(token_errc::bad_signature, "the " + alg + " signature does not verify");
  } else {
    return fail(token_errc::unsupported_algorithm,
                "the token's algorithm (" + alg_for_message(alg) + ") is not accepted; HS256, RS256 and ES256 are");
  }

  return std::nullopt;
}

// Nothing when the claims hold (filling `verified`), else why not.
std::optional<token_error> check_claims(const json& claims, const jwt_settings& settings,
                                        std::chrono::system_clock::time_point now, verified_token& verified) {
  double now_seconds = std::chrono::duration<double>(now.time_since_epoch()).count();
  auto skew = static_cast<double>(settings.clock_skew.count());
  auto exp = read_numeric_date(claims, "exp");
  auto nbf = read_numeric_date(claims, "nbf");
  if (!exp.valid) return fail(token_errc::bad_claims, "\"exp\" is not a number of seconds");
  if (!nbf.valid) return fail(token_errc::bad_claims, "\"nbf\" is not a number of seconds");
  if (exp.present) {
    if (now_seconds >= exp.seconds + skew) return fail(token_errc::expired, "the token has expired");
    verified.expires_at = time_point_from_seconds(exp.seconds);
  }
  if (nbf.present && now_seconds + skew < nbf.seconds) {
    return fail(token_errc::not_yet_valid, "the token is not valid yet (\"nbf\" is ahead)");
  }

  if (auto iss = claims.find("iss"); iss != claims.end()) {
    if (!iss->is_string()) return fail(token_errc::bad_claims, "\"iss\" is not a string");
    verified.issuer = iss->get<std::string>();
  }
  if (!settings.issuer.empty() && verified.issuer != settings.issuer) {
    return fail(token_errc::wrong_issuer, "the token is not from the configured issuer");
  }

  if (!settings.audience.empty()) {
    auto aud = claims.find("aud");
    bool ours = false;
    if (aud == claims.end()) return fail(token_errc::wrong_audience, "the token names no audience (\"aud\")");
    if (aud->is_string()) {
      ours = *aud == settings.audience;
    } else if (aud->is_array()) {
      for (const auto& member : *aud) {
        if (!member.is_string()) return fail(token_errc::bad_claims, "\"aud\" holds something other than strings");
        ours = ours || member == settings.audience;
      }
    } else {
      return fail(token_errc::bad_claims, "\"aud\" is neither a string nor an array of strings");
    }
    if (!ours) return fail(token_errc::wrong_audience, "the token is not for the configured audience");
  }

  if (auto sub = claims.find("sub"); sub != claims.end()) {
    if (!sub->is_string()) return fail(token_errc::bad_claims, "\"sub\" is not a string");
    verified.subject = sub->get<std::string>();
  }

  auto access = read_access(claims, settings.permissions_claim);
  if (auto* error = std::get_if<std::string>(&access)) return fail(token_errc::bad_claims, std::move(*error));
  verified.access = std::move(std::get<access_rules>(access));
  return std::nullopt;
}

}  // namespace

std::string_view token_errc_name(token_errc kind) noexcept {
  switch (kind) {
    case token_errc::malformed:
      return "malformed";
    case token_errc::too_large:
      return "too_large";
    case token_errc::unsupported_algorithm:
      return "unsupported_algorithm";
    case token_errc::bad_signature:
      return "bad_signature";
    case token_errc::unknown_key:
      return "unknown_key";
    case token_errc::expired:
      return "expired";
    case token_errc::not_yet_valid:
      return "not_yet_valid";
    case token_errc::wrong_issuer:
      return "wrong_issuer";
    case token_errc::wrong_audience:
      return "wrong_audience";
    case token_errc::bad_claims:
      return "bad_claims";
  }
  return "unknown";
}

std::variant<jwt_verifier, std::string> jwt_verifier::create(const jwt_settings& settings) {
  if (settings.hs256_secret.empty() && settings.public_keys_file.empty()) {
    return std::string("no key to verify tokens with: give an HS256 secret, a public key file, or both");
  }
  if (!settings.hs256_secret.empty() && settings.hs256_secret.size() < min_hs256_secret_bytes) {
    return "the HS256 secret is " + std::to_string(settings.hs256_secret.size()) + " bytes; at least " +
           std::to_string(min_hs256_secret_bytes) + " are required (RFC 7518 §3.2)";
  }
  if (settings.clock_skew < std::chrono::seconds(0)) return std::string("the clock skew must not be negative");
  if (settings.max_token_bytes == 0) return std::string("the maximum token size must not be 0");
  if (settings.permissions_claim.empty()) return std::string("the permissions claim needs a name");
  auto ring = std::make_shared<key_ring>();
  ring->settings = settings;
  if (!settings.public_keys_file.empty()) {
    try {
      ring->keys = detail::load_public_keys(settings.public_keys_file);
    } catch (const detail::key_file_error& e) {
      ERR_clear_error();
      return std::string("public keys: ") + e.what();
    }
  }
  return jwt_verifier(std::move(ring));
}

std::variant<verified_token, token_error> jwt_verifier::verify(std::string_view token,
                                                               std::chrono::system_clock::time_point now) const {
  const jwt_settings& settings = keys_->settings;
  if (token.size() > settings.max_token_bytes) {
    return fail(token_errc::too_large, "the token is " + std::to_string(token.size()) + " bytes; at most " +
                                           std::to_string(settings.max_token_bytes) + " are accepted");
  }
  auto first_dot = token.find('.');
  auto second_dot = first_dot == std::string_view::npos ? first_dot : token.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos || token.find('.', second_dot + 1) != std::string_view::npos) {
    return fail(token_errc::malformed, "not a JWS compact token (three base64url parts separated by '.')");
  }
  std::string_view signing_input = token.substr(0, second_dot);

  // The header is read before the signature is checked (it names the key);
  // the claims only after.
  auto header_text = base64url_decode(token.substr(0, first_dot));
  if (!header_text) return fail(token_errc::malformed, "the header is not base64url");
  json header = protocol::parse_json_bounded(*header_text, max_jose_depth, max_jose_values);
  if (header.is_discarded() || !header.is_object()) {
    return fail(token_errc::malformed, "the header is not a JSON object (or nests too deep)");
  }
  auto alg_member = header.find("alg");
  if (alg_member == header.end() || !alg_member->is_string()) {
    return fail(token_errc::malformed, "the header has no \"alg\" string");
  }
  const auto& alg = alg_member->get_ref<const std::string&>();
  // RFC 7515 §4.1.11: extensions marked critical must be understood; we know none.
  if (header.contains("crit")) {
    return fail(token_errc::malformed, "the header lists critical extensions (\"crit\"); none are supported");
  }
  const std::string* kid = nullptr;
  if (auto it = header.find("kid"); it != header.end()) {
    if (!it->is_string()) return fail(token_errc::malformed, "the header's \"kid\" is not a string");
    kid = &it->get_ref<const std::string&>();
  }
  auto signature = base64url_decode(token.substr(second_dot + 1));
  if (!signature) return fail(token_errc::malformed, "the signature is not base64url");

  if (auto error = check_signature(alg, kid, signing_input, *signature, settings.hs256_secret, keys_->keys)) {
    return *std::move(error);
  }

  auto claims_text = base64url_decode(token.substr(first_dot + 1, second_dot - first_dot - 1));
  if (!claims_text) return fail(token_errc::malformed, "the payload is not base64url");
  json claims = protocol::parse_json_bounded(*claims_text, max_jose_depth, max_jose_values);
  if (claims.is_discarded() || !claims.is_object()) {
    return fail(token_errc::malformed, "the payload is not a JSON object (or nests too deep)");
  }

  verified_token verified;
  if (auto error = check_claims(claims, settings, now, verified)) return *std::move(error);
  return verified;
}

}  // namespace otsync::auth
