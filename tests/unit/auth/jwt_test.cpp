#include "otsync/auth/jwt.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "unit/auth/token_forge.hpp"

namespace otsync::auth {
namespace {

using namespace std::chrono_literals;
using forge::json;
using std::chrono::system_clock;

const system_clock::time_point now = system_clock::time_point(1'700'000'000s);
const std::string secret(32, 's');

// Signing keys shared by every test: RSA generation takes a while.
struct keys {
  forge::pkey_ptr rsa_a = forge::make_rsa_key(2048);
  forge::pkey_ptr rsa_b = forge::make_rsa_key(2048);
  forge::pkey_ptr rsa_small = forge::make_rsa_key(1024);
  forge::pkey_ptr ec_a = forge::make_ec_key();
  forge::pkey_ptr ec_b = forge::make_ec_key();
  forge::pkey_ptr ec_p384 = forge::make_ec_key("P-384");
};
const keys& test_keys() {
  static const keys k;
  return k;
}

json claims(json extra = json::object()) {
  json c = {{"sub", "alice"},
            {"exp", forge::numeric_date(now + 1h)},
            {"otsync", {{"read", {"notes/*"}}, {"write", {"notes/alice-*"}}}}};
  for (auto& [name, value] : extra.items()) c[name] = value;
  return c;
}

template <class T>
const T& value_of(const std::variant<T, std::string>& result) {
  if (auto* error = std::get_if<std::string>(&result)) throw std::runtime_error("unexpected error: " + *error);
  return std::get<T>(result);
}

std::string setup_error(const jwt_settings& settings) {
  auto result = jwt_verifier::create(settings);
  if (auto* error = std::get_if<std::string>(&result)) return *error;
  return "";
}

class Jwt : public ::testing::Test {
 protected:
  const keys& k = test_keys();
  forge::temp_dir dir;

  jwt_verifier with_secret(jwt_settings settings = {}) const {
    settings.hs256_secret = secret;
    return value_of(jwt_verifier::create(settings));
  }
  jwt_verifier with_file(const std::string& content, jwt_settings settings = {}) const {
    settings.public_keys_file = dir.write("keys", content);
    return value_of(jwt_verifier::create(settings));
  }
  jwt_verifier with_jwks(const std::vector<json>& jwks, jwt_settings settings = {}) const {
    return with_file(json{{"keys", jwks}}.dump(2), std::move(settings));
  }
  std::string jwks_error(const std::vector<json>& jwks) const {
    jwt_settings settings;
    settings.public_keys_file = dir.write("keys", json{{"keys", jwks}}.dump());
    return setup_error(settings);
  }
};

::testing::AssertionResult accepted(const std::variant<verified_token, token_error>& result) {
  if (auto* error = std::get_if<token_error>(&result)) {
    return ::testing::AssertionFailure() << "refused: " << token_errc_name(error->kind) << ": " << error->message;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult refused(const std::variant<verified_token, token_error>& result, token_errc expected) {
  if (std::holds_alternative<verified_token>(result)) return ::testing::AssertionFailure() << "accepted";
  const auto& error = std::get<token_error>(result);
  if (error.kind != expected) {
    return ::testing::AssertionFailure() << "refused as " << token_errc_name(error.kind) << " (" << error.message
                                         << "), expected " << token_errc_name(expected);
  }
  if (error.message.empty()) return ::testing::AssertionFailure() << "no message";
  return ::testing::AssertionSuccess();
}

// --- valid tokens ----------------------------------------------------------

TEST_F(Jwt, ValidHs256) {
  auto verifier = with_secret();
  auto result = verifier.verify(forge::hs256_token(claims({{"iss", "idp"}}), secret), now);
  ASSERT_TRUE(accepted(result));
  const auto& token = std::get<verified_token>(result);
  EXPECT_EQ(token.subject, "alice");
  EXPECT_EQ(token.issuer, "idp");
  ASSERT_TRUE(token.expires_at.has_value());
  EXPECT_EQ(*token.expires_at, now + 1h);
  EXPECT_TRUE(token.access.may_read("notes", "x"));
  EXPECT_FALSE(token.access.may_write("notes", "x"));
  EXPECT_TRUE(token.access.may_write("notes", "alice-1"));
  EXPECT_FALSE(token.access.may_read("drafts", "x"));
}

TEST_F(Jwt, ValidRs256AndEs256FromJwks) {
  auto verifier = with_jwks({forge::rsa_jwk(k.rsa_a.get(), "r1"), forge::ec_jwk(k.ec_a.get(), "e1")});
  EXPECT_TRUE(accepted(verifier.verify(forge::rs256_token(claims(), k.rsa_a.get(), "r1"), now)));
  EXPECT_TRUE(accepted(verifier.verify(forge::es256_token(claims(), k.ec_a.get(), "e1"), now)));
  // Without a kid every key of the algorithm's type is tried.
  EXPECT_TRUE(accepted(verifier.verify(forge::rs256_token(claims(), k.rsa_a.get()), now)));
  EXPECT_TRUE(accepted(verifier.verify(forge::es256_token(claims(), k.ec_a.get()), now)));
}

TEST_F(Jwt, ValidRs256AndEs256FromPem) {
  auto pem = forge::pem_of(k.rsa_a.get()) + "\n" + forge::pem_of(k.ec_a.get()) + forge::pem_of(k.rsa_b.get());
  auto verifier = with_file(pem);
  EXPECT_TRUE(accepted(verifier.verify(forge::rs256_token(claims(), k.rsa_a.get()), now)));
  EXPECT_TRUE(accepted(verifier.verify(forge::rs256_token(claims(), k.rsa_b.get()), now)));
  EXPECT_TRUE(accepted(verifier.verify(forge::es256_token(claims(), k.ec_a.get()), now)));
  // PEM keys have no kid and answer to any.
  EXPECT_TRUE(accepted(verifier.verify(forge::rs256_token(claims(), k.rsa_b.get(), "whatever"), now)));
  EXPECT_TRUE(refused(verifier.verify(forge::es256_token(claims(), k.ec_b.get()), now), token_errc::bad_signature));
}

TEST_F(Jwt, SecretAndKeysTogether) {
  jwt_settings settings;
  settings.hs256_secret = secret;
  auto verifier = with_jwks({forge::rsa_jwk(k.rsa_a.get(), "r1")}, settings);
  EXPECT_TRUE(accepted(verifier.verify(forge::hs256_token(claims(), secret), now)));
  EXPECT_TRUE(accepted(verifier.verify(forge::rs256_token(claims(), k.rsa_a.get(), "r1"), now)));
  // HS256 ignores kid: there is one secret.
  EXPECT_TRUE(accepted(verifier.verify(forge::hs256_token(claims(), secret, {{"kid", "r1"}}), now)));
  auto copy = verifier;  // copies share the keys
  EXPECT_TRUE(accepted(copy.verify(forge::rs256_token(claims(), k.rsa_a.get(), "r1"), now)));
}

// --- kid -------------------------------------------------------------------

TEST_F(Jwt, KidSelectsTheOnlyKeyTried) {
  auto verifier = with_jwks(
      {forge::rsa_jwk(k.rsa_a.get(), "a"), forge::rsa_jwk(k.rsa_b.get(), "b"), forge::ec_jwk(k.ec_a.get(), "ec")});
  EXPECT_TRUE(accepted(verifier.verify(forge::rs256_token(claims(), k.rsa_b.get(), "b"), now)));
  EXPECT_TRUE(accepted(verifier.verify(forge::rs256_token(claims(), k.rsa_b.get()), now)));
  // Signed by b but naming a: only a is tried.
  EXPECT_TRUE(
      refused(verifier.verify(forge::rs256_token(claims(), k.rsa_b.get(), "a"), now), token_errc::bad_signature));
  EXPECT_TRUE(refused(verifier.verify(forge::rs256_token(claims(), k.rsa_b.get(), "c"), now), token_errc::unknown_key));
  // An empty kid is a kid: no key has it.
  json empty_kid = {{"alg", "RS256"}, {"kid", ""}};
  auto empty_kid_input = forge::encode(empty_kid) + "." + forge::encode(claims());
  EXPECT_TRUE(refused(
      verifier.verify(forge::with_signature(empty_kid_input, forge::digest_sign(k.rsa_b.get(), empty_kid_input)), now),
      token_errc::unknown_key));
  // A kid naming a key of the other type.
  EXPECT_TRUE(refused(verifier.verify(forge::es256_token(claims(), k.ec_a.get(), "a"), now),
                      token_errc::unsupported_algorithm));
  EXPECT_TRUE(refused(verifier.verify(forge::rs256_token(claims(), k.rsa_a.get(), "ec"), now),
                      token_errc::unsupported_algorithm));
  EXPECT_TRUE(accepted(verifier.verify(forge::es256_token(claims(), k.ec_a.get(), "ec"), now)));

  json header = {{"alg", "RS256"}, {"kid", 7}};
  auto input = forge::encode(header) + "." + forge::encode(claims());
  EXPECT_TRUE(refused(verifier.verify(forge::with_signature(input, forge::digest_sign(k.rsa_a.get(), input)), now),
                      token_errc::malformed));
}

// --- time ------------------------------------------------------------------

TEST_F(Jwt, ExpiryWithSkew) {
  auto verifier = with_secret();
  auto at = [&](auto exp) { return verifier.verify(forge::hs256_token(claims({{"exp", exp}}), secret), now); };
  EXPECT_TRUE(refused(at(forge::numeric_date(now - 61s)), token_errc::expired));
  EXPECT_TRUE(refused(at(forge::numeric_date(now - 60s)), token_errc::expired));
  EXPECT_TRUE(accepted(at(forge::numeric_date(now - 59s))));
  EXPECT_TRUE(accepted(at(forge::numeric_date(now - 1s))));
  EXPECT_TRUE(accepted(at(static_cast<double>(forge::numeric_date(now)) + 0.5)));
  EXPECT_TRUE(refused(at(-1e300), token_errc::expired));
  auto far = at(1e300);
  ASSERT_TRUE(accepted(far));
  EXPECT_EQ(std::get<verified_token>(far).expires_at, system_clock::time_point::max());

  jwt_settings strict;
  strict.clock_skew = 0s;
  auto exact = with_secret(strict);
  EXPECT_TRUE(refused(exact.verify(forge::hs256_token(claims({{"exp", forge::numeric_date(now)}}), secret), now),
                      token_errc::expired));
  EXPECT_TRUE(accepted(exact.verify(forge::hs256_token(claims({{"exp", forge::numeric_date(now) + 1}}), secret), now)));
}

TEST_F(Jwt, NotBeforeWithSkew) {
  auto verifier = with_secret();
  auto at = [&](auto nbf) { return verifier.verify(forge::hs256_token(claims({{"nbf", nbf}}), secret), now); };
  EXPECT_TRUE(refused(at(forge::numeric_date(now + 61s)), token_errc::not_yet_valid));
  EXPECT_TRUE(accepted(at(forge::numeric_date(now + 60s))));
  EXPECT_TRUE(accepted(at(forge::numeric_date(now + 30s))));
  EXPECT_TRUE(accepted(at(forge::numeric_date(now - 1h))));
  // iat is not checked, even far in the future.
  EXPECT_TRUE(
      accepted(verifier.verify(forge::hs256_token(claims({{"iat", forge::numeric_date(now + 24h)}}), secret), now)));
}

TEST_F(Jwt, NoExpiryIsAccepted) {
  auto verifier = with_secret();
  auto c = claims();
  c.erase("exp");
  auto result = verifier.verify(forge::hs256_token(c, secret), now);
  ASSERT_TRUE(accepted(result));
  EXPECT_FALSE(std::get<verified_token>(result).expires_at.has_value());
}

TEST_F(Jwt, DatesMustBeNumbers) {
  auto verifier = with_secret();
  for (const json& bad : {json(std::to_string(forge::numeric_date(now + 1h))), json(true), json(nullptr),
                          json::array({1}), json::object()}) {
    EXPECT_TRUE(
        refused(verifier.verify(forge::hs256_token(claims({{"exp", bad}}), secret), now), token_errc::bad_claims))
        << bad.dump();
    EXPECT_TRUE(
        refused(verifier.verify(forge::hs256_token(claims({{"nbf", bad}}), secret), now), token_errc::bad_claims))
        << bad.dump();
  }
}

// --- issuer and audience ---------------------------------------------------

TEST_F(Jwt, Issuer) {
  jwt_settings settings;
  settings.issuer = "https://idp.example";
  auto verifier = with_secret(settings);
  auto with = [&](json extra) { return verifier.verify(forge::hs256_token(claims(std::move(extra)), secret), now); };
  EXPECT_TRUE(accepted(with({{"iss", "https://idp.example"}})));
  EXPECT_TRUE(refused(with({{"iss", "https://evil.example"}}), token_errc::wrong_issuer));
  EXPECT_TRUE(refused(with({{"iss", "https://idp.example/"}}), token_errc::wrong_issuer));
  EXPECT_TRUE(refused(with({}), token_errc::wrong_issuer));
  EXPECT_TRUE(refused(with({{"iss", json::array({"https://idp.example"})}}), token_errc::bad_claims));
  // Not configured: any issuer, reported.
  auto any = with_secret();
  auto result = any.verify(forge::hs256_token(claims({{"iss", "someone"}}), secret), now);
  ASSERT_TRUE(accepted(result));
  EXPECT_EQ(std::get<verified_token>(result).issuer, "someone");
}

TEST_F(Jwt, Audience) {
  jwt_settings settings;
  settings.audience = "otsync";
  auto verifier = with_secret(settings);
  auto with = [&](json extra) { return verifier.verify(forge::hs256_token(claims(std::move(extra)), secret), now); };
  EXPECT_TRUE(accepted(with({{"aud", "otsync"}})));
  EXPECT_TRUE(accepted(with({{"aud", {"other", "otsync"}}})));
  EXPECT_TRUE(refused(with({{"aud", "other"}}), token_errc::wrong_audience));
  EXPECT_TRUE(refused(with({{"aud", {"other", "otsync2"}}}), token_errc::wrong_audience));
  EXPECT_TRUE(refused(with({{"aud", json::array()}}), token_errc::wrong_audience));
  EXPECT_TRUE(refused(with({}), token_errc::wrong_audience));
  EXPECT_TRUE(refused(with({{"aud", 5}}), token_errc::bad_claims));
  EXPECT_TRUE(refused(with({{"aud", {"otsync", 5}}}), token_errc::bad_claims));
  EXPECT_TRUE(accepted(with_secret().verify(forge::hs256_token(claims({{"aud", "anything"}}), secret), now)));
}

TEST_F(Jwt, Subject) {
  auto verifier = with_secret();
  auto c = claims();
  c.erase("sub");
  auto result = verifier.verify(forge::hs256_token(c, secret), now);
  ASSERT_TRUE(accepted(result));
  EXPECT_EQ(std::get<verified_token>(result).subject, "");
  EXPECT_TRUE(refused(verifier.verify(forge::hs256_token(claims({{"sub", 42}}), secret), now), token_errc::bad_claims));
}

// --- forgeries -------------------------------------------------------------

// Every token with one bit flipped in one decoded byte of one part.
std::vector<std::pair<std::size_t, std::string>> bit_flips(const std::string& token) {
  std::vector<std::pair<std::size_t, std::string>> out;
  auto first = token.find('.');
  auto second = token.find('.', first + 1);
  std::string parts[3] = {token.substr(0, first), token.substr(first + 1, second - first - 1),
                          token.substr(second + 1)};
  for (std::size_t part = 0; part < 3; ++part) {
    auto bytes = *base64url_decode(parts[part]);
    for (std::size_t i = 0; i < bytes.size(); i += 1 + bytes.size() / 40) {
      auto flipped = bytes;
      flipped[i] = static_cast<char>(flipped[i] ^ 0x01);
      std::string copy[3] = {parts[0], parts[1], parts[2]};
      copy[part] = base64url_encode(flipped);
      out.emplace_back(part, copy[0] + "." + copy[1] + "." + copy[2]);
    }
  }
  return out;
}

TEST_F(Jwt, AnyFlippedBitIsRefused) {
  jwt_settings settings;
  settings.hs256_secret = secret;
  auto verifier = with_jwks({forge::rsa_jwk(k.rsa_a.get()), forge::ec_jwk(k.ec_a.get())}, settings);
  for (const auto& token : {forge::hs256_token(claims(), secret), forge::rs256_token(claims(), k.rsa_a.get()),
                            forge::es256_token(claims(), k.ec_a.get())}) {
    ASSERT_TRUE(accepted(verifier.verify(token, now)));
    for (const auto& [part, forged] : bit_flips(token)) {
      auto result = verifier.verify(forged, now);
      ASSERT_FALSE(accepted(result)) << "part " << part;
      // The header may no longer parse; a changed payload or signature never verifies.
      if (part > 0) {
        EXPECT_TRUE(refused(result, token_errc::bad_signature)) << "part " << part;
      }
    }
  }
}

TEST_F(Jwt, AlgNoneIsAlwaysRefused) {
  jwt_settings settings;
  settings.hs256_secret = secret;
  auto verifier = with_jwks({forge::rsa_jwk(k.rsa_a.get()), forge::ec_jwk(k.ec_a.get())}, settings);
  for (const char* alg : {"none", "None", "NONE", "nOnE", ""}) {
    auto input = forge::encode({{"alg", alg}, {"typ", "JWT"}}) + "." + forge::encode(claims());
    EXPECT_TRUE(refused(verifier.verify(input + ".", now), token_errc::unsupported_algorithm)) << alg;
    // With an HS256 signature attached, still refused: the algorithm is not one we verify.
    EXPECT_TRUE(refused(verifier.verify(forge::with_signature(input, forge::hmac_sha256(secret, input)), now),
                        token_errc::unsupported_algorithm))
        << alg;
  }
  for (const char* alg : {"HS384", "HS512", "RS384", "RS512", "PS256", "ES384", "EdDSA", "hs256", "RS256 "}) {
    auto input = forge::encode({{"alg", alg}}) + "." + forge::encode(claims());
    EXPECT_TRUE(refused(verifier.verify(forge::with_signature(input, forge::digest_sign(k.rsa_a.get(), input)), now),
                        token_errc::unsupported_algorithm))
        << alg;
  }
  auto missing = forge::encode({{"typ", "JWT"}}) + "." + forge::encode(claims());
  EXPECT_TRUE(refused(verifier.verify(missing + ".", now), token_errc::malformed));
  auto not_string = forge::encode({{"alg", json::array({"HS256"})}}) + "." + forge::encode(claims());
  EXPECT_TRUE(refused(verifier.verify(not_string + ".", now), token_errc::malformed));
}

TEST_F(Jwt, PublicKeyAsHmacSecretIsRefused) {
  // The classic algorithm confusion: HS256 "signed" with the public key's PEM text.
  auto pem = forge::pem_of(k.rsa_a.get());
  for (const auto& forged : {forge::hs256_token(claims(), pem), forge::hs256_token(claims(), pem, {{"kid", "r1"}})}) {
    EXPECT_TRUE(refused(with_file(pem).verify(forged, now), token_errc::unsupported_algorithm));
    EXPECT_TRUE(refused(with_jwks({forge::rsa_jwk(k.rsa_a.get(), "r1")}).verify(forged, now),
                        token_errc::unsupported_algorithm));
    jwt_settings settings;
    settings.hs256_secret = secret;
    EXPECT_TRUE(refused(with_file(pem, settings).verify(forged, now), token_errc::bad_signature));
  }
  // The JWK's modulus bytes and the DER key as secrets.
  auto n = *base64url_decode(forge::rsa_jwk(k.rsa_a.get())["n"].get<std::string>());
  EXPECT_TRUE(refused(with_file(pem).verify(forge::hs256_token(claims(), n), now), token_errc::unsupported_algorithm));
}

TEST_F(Jwt, AlgorithmMustMatchTheConfiguredKeys) {
  auto secret_only = with_secret();
  EXPECT_TRUE(
      refused(secret_only.verify(forge::rs256_token(claims(), k.rsa_a.get()), now), token_errc::unsupported_algorithm));
  EXPECT_TRUE(
      refused(secret_only.verify(forge::es256_token(claims(), k.ec_a.get()), now), token_errc::unsupported_algorithm));
  auto rsa_only = with_jwks({forge::rsa_jwk(k.rsa_a.get())});
  EXPECT_TRUE(
      refused(rsa_only.verify(forge::es256_token(claims(), k.ec_a.get()), now), token_errc::unsupported_algorithm));
  EXPECT_TRUE(refused(rsa_only.verify(forge::hs256_token(claims(), secret), now), token_errc::unsupported_algorithm));
  // An RS256 header over an ECDSA signature, and the reverse.
  auto ec_only = with_jwks({forge::ec_jwk(k.ec_a.get())});
  EXPECT_TRUE(
      refused(ec_only.verify(forge::rs256_token(claims(), k.rsa_a.get()), now), token_errc::unsupported_algorithm));
  auto input = forge::encode({{"alg", "RS256"}}) + "." + forge::encode(claims());
  EXPECT_TRUE(refused(rsa_only.verify(forge::with_signature(input, forge::digest_sign(k.ec_a.get(), input)), now),
                      token_errc::bad_signature));
}

TEST_F(Jwt, SignatureLengths) {
  jwt_settings settings;
  settings.hs256_secret = secret;
  auto verifier = with_jwks({forge::rsa_jwk(k.rsa_a.get()), forge::ec_jwk(k.ec_a.get())}, settings);
  auto es_input = forge::encode({{"alg", "ES256"}}) + "." + forge::encode(claims());
  auto der = forge::digest_sign(k.ec_a.get(), es_input);
  auto raw = forge::raw_es256(der);
  ASSERT_TRUE(accepted(verifier.verify(forge::with_signature(es_input, raw), now)));
  for (const auto& wrong : {der, raw.substr(0, 63), raw + '\0', std::string(1, '\0') + raw, raw + raw, std::string()}) {
    EXPECT_TRUE(refused(verifier.verify(forge::with_signature(es_input, wrong), now), token_errc::bad_signature))
        << wrong.size();
  }
  EXPECT_TRUE(
      refused(verifier.verify(forge::with_signature(es_input, std::string(64, '\0')), now), token_errc::bad_signature));
  auto rs_input = forge::encode({{"alg", "RS256"}}) + "." + forge::encode(claims());
  auto rs = forge::digest_sign(k.rsa_a.get(), rs_input);
  ASSERT_TRUE(accepted(verifier.verify(forge::with_signature(rs_input, rs), now)));
  for (const auto& wrong : {rs.substr(0, rs.size() - 1), rs + '\0', std::string(1, '\0') + rs, std::string()}) {
    EXPECT_TRUE(refused(verifier.verify(forge::with_signature(rs_input, wrong), now), token_errc::bad_signature));
  }
  auto hs_input = forge::encode({{"alg", "HS256"}}) + "." + forge::encode(claims());
  auto mac = forge::hmac_sha256(secret, hs_input);
  for (const auto& wrong : {mac.substr(0, 31), mac.substr(0, 16), mac + '\0', std::string()}) {
    EXPECT_TRUE(refused(verifier.verify(forge::with_signature(hs_input, wrong), now), token_errc::bad_signature));
  }
}

// --- malformed tokens ------------------------------------------------------

TEST_F(Jwt, SizeLimit) {
  auto verifier = with_secret();
  auto token = forge::hs256_token(claims({{"pad", std::string(10000, 'x')}}), secret);
  EXPECT_TRUE(refused(verifier.verify(token, now), token_errc::too_large));
  EXPECT_TRUE(refused(verifier.verify(std::string(8193, 'a'), now), token_errc::too_large));
  EXPECT_TRUE(refused(verifier.verify(std::string(1 << 24, '.'), now), token_errc::too_large));
  jwt_settings settings;
  settings.max_token_bytes = 1 << 16;
  EXPECT_TRUE(accepted(with_secret(settings).verify(token, now)));
  settings.max_token_bytes = token.size();
  EXPECT_TRUE(accepted(with_secret(settings).verify(token, now)));
  settings.max_token_bytes = token.size() - 1;
  EXPECT_TRUE(refused(with_secret(settings).verify(token, now), token_errc::too_large));
}

TEST_F(Jwt, PartCount) {
  auto verifier = with_secret();
  auto token = forge::hs256_token(claims(), secret);
  auto last_dot = token.rfind('.');
  for (const auto& bad :
       {std::string(), std::string("."), std::string(".."), std::string("..."), token.substr(0, last_dot), token + ".",
        token + "." + token.substr(last_dot + 1), "." + token, token.substr(0, token.find('.')), std::string("abc")}) {
    EXPECT_TRUE(refused(verifier.verify(bad, now), token_errc::malformed)) << bad;
  }
}

TEST_F(Jwt, BadBase64) {
  auto verifier = with_secret();
  auto token = forge::hs256_token(claims(), secret);
  auto first = token.find('.');
  auto second = token.find('.', first + 1);
  std::string header = token.substr(0, first);
  std::string payload = token.substr(first + 1, second - first - 1);
  std::string signature = token.substr(second + 1);
  auto join = [](const std::string& a, const std::string& b, const std::string& c) { return a + "." + b + "." + c; };
  std::vector<std::string> bad_parts = {"+/+/", "ab!d", "ab d", "abc=", "ab==", "a", "abcde", "ab\ncd", "ab%3D"};
  for (const auto& bad : bad_parts) {
    EXPECT_TRUE(refused(verifier.verify(join(bad, payload, signature), now), token_errc::malformed)) << bad;
    EXPECT_TRUE(refused(verifier.verify(join(header, payload, bad), now), token_errc::malformed)) << bad;
  }
  // Padding characters appended to a valid part, and standard base64's alphabet.
  EXPECT_TRUE(refused(verifier.verify(join(header + "=", payload, signature), now), token_errc::malformed));
  EXPECT_TRUE(refused(verifier.verify(join(header, payload, signature + "="), now), token_errc::malformed));
  // Non-canonical: the last character of a 43-character signature carries 2 unused bits.
  ASSERT_EQ(signature.size(), 43u);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  auto noncanonical = signature;
  noncanonical.back() = alphabet[alphabet.find(signature.back()) | 1];
  EXPECT_TRUE(refused(verifier.verify(join(header, payload, noncanonical), now), token_errc::malformed));
  // The payload is covered by the signature, so it cannot be altered to reach its decoder unsigned.
  auto bad_payload = forge::encode({{"alg", "HS256"}}) + ".e30=";
  EXPECT_TRUE(refused(verifier.verify(forge::with_signature(bad_payload, forge::hmac_sha256(secret, bad_payload)), now),
                      token_errc::malformed));
}

TEST_F(Jwt, NonObjectJson) {
  auto verifier = with_secret();
  auto signed_token = [&](std::string_view header_text, std::string_view payload_text) {
    auto input = forge::signing_input(header_text, payload_text);
    return forge::with_signature(input, forge::hmac_sha256(secret, input));
  };
  auto header = json{{"alg", "HS256"}}.dump();
  for (std::string_view bad : {"[]", "\"HS256\"", "null", "42", "{", "", "{\"alg\":\"HS256\"} trailing", "\xff\xfe"}) {
    EXPECT_TRUE(refused(verifier.verify(signed_token(bad, claims().dump()), now), token_errc::malformed)) << bad;
    EXPECT_TRUE(refused(verifier.verify(signed_token(header, bad), now), token_errc::malformed)) << bad;
  }
  EXPECT_TRUE(refused(verifier.verify(signed_token(R"({"alg":"HS256","crit":["exp"]})", claims().dump()), now),
                      token_errc::malformed));
}

TEST_F(Jwt, DeepNestingIsRefusedWithoutRecursion) {
  jwt_settings settings;
  settings.max_token_bytes = 1 << 20;
  auto verifier = with_secret(settings);
  auto signed_token = [&](std::string_view header_text, std::string_view payload_text) {
    auto input = forge::signing_input(header_text, payload_text);
    return forge::with_signature(input, forge::hmac_sha256(secret, input));
  };
  std::string deep = std::string(10000, '[') + std::string(10000, ']');
  std::string deep_claim = R"({"sub":"a","x":)" + deep + "}";
  std::string deep_unclosed = R"({"sub":"a","x":)" + std::string(10000, '[');
  auto header = json{{"alg", "HS256"}}.dump();
  EXPECT_TRUE(refused(verifier.verify(signed_token(header, deep), now), token_errc::malformed));
  EXPECT_TRUE(refused(verifier.verify(signed_token(header, deep_claim), now), token_errc::malformed));
  EXPECT_TRUE(refused(verifier.verify(signed_token(header, deep_unclosed), now), token_errc::malformed));
  EXPECT_TRUE(refused(verifier.verify(signed_token(R"({"alg":"HS256","x":)" + deep + "}", claims().dump()), now),
                      token_errc::malformed));
  std::string deep_objects;
  for (int i = 0; i < 10000; ++i) deep_objects += "{\"a\":";
  EXPECT_TRUE(refused(verifier.verify(signed_token(header, deep_objects), now), token_errc::malformed));
  // Nesting a real claims set may need (an object in an object) is fine.
  EXPECT_TRUE(accepted(verifier.verify(signed_token(header, claims({{"x", {{"y", {{"z", {1, 2}}}}}}}).dump()), now)));
}

TEST_F(Jwt, MessagesNeverQuoteTheToken) {
  jwt_settings settings;
  settings.hs256_secret = secret;
  settings.issuer = "idp";
  settings.audience = "aud";
  auto verifier = with_jwks({forge::rsa_jwk(k.rsa_a.get(), "a")}, settings);
  const std::string marker = "SECRETMARKER";
  std::vector<std::string> tokens = {
      forge::hs256_token(claims({{"iss", marker}}), secret),
      forge::hs256_token(claims({{"iss", "idp"}, {"aud", marker}}), secret),
      forge::hs256_token(claims({{"iss", "idp"}, {"aud", "aud"}, {"otsync", {{"read", {marker}}}}}), secret),
      forge::hs256_token(claims({{"iss", "idp"}, {"aud", "aud"}, {"otsync", {{"read", {1}}, {"write", {marker}}}}}),
                         secret),
      forge::hs256_token(claims({{"sub", marker}}), marker + marker + marker),
      forge::rs256_token(claims({{"sub", marker}}), k.rsa_a.get(), marker),
      forge::encode({{"alg", marker}}) + "." + forge::encode(claims()) + ".",
      forge::encode({{"alg", "none"}, {"kid", marker}}) + "." + forge::encode(claims()) + ".",
      marker + "." + marker + "." + marker,
      marker,
  };
  for (const auto& token : tokens) {
    auto result = verifier.verify(token, now);
    ASSERT_FALSE(accepted(result)) << token;
    const auto& message = std::get<token_error>(result).message;
    EXPECT_EQ(message.find(marker), std::string::npos) << message;
    for (std::size_t at = 0; at + 12 <= token.size(); at += 6) {
      EXPECT_EQ(message.find(token.substr(at, 12)), std::string::npos) << message;
    }
  }
}

// --- the permissions claim -------------------------------------------------

TEST_F(Jwt, PermissionsClaimName) {
  jwt_settings settings;
  settings.permissions_claim = "https://example.com/otsync";
  auto verifier = with_secret(settings);
  auto result =
      verifier.verify(forge::hs256_token(claims({{"https://example.com/otsync", {{"write", {"*"}}}}}), secret), now);
  ASSERT_TRUE(accepted(result));
  EXPECT_TRUE(std::get<verified_token>(result).access.may_write("any", "doc"));
  // The default claim is ignored under another name.
  auto other = verifier.verify(forge::hs256_token(claims(), secret), now);
  ASSERT_TRUE(accepted(other));
  EXPECT_FALSE(std::get<verified_token>(other).access.may_read("notes", "x"));
}

// --- settings and key files ------------------------------------------------

TEST_F(Jwt, SettingsErrors) {
  EXPECT_NE(setup_error({}).find("no key"), std::string::npos);
  jwt_settings settings;
  settings.hs256_secret = std::string(31, 's');
  EXPECT_NE(setup_error(settings).find("32"), std::string::npos);
  settings.hs256_secret = secret;
  settings.clock_skew = -1s;
  EXPECT_NE(setup_error(settings), "");
  settings.clock_skew = 0s;
  settings.max_token_bytes = 0;
  EXPECT_NE(setup_error(settings), "");
  settings.max_token_bytes = 10;
  settings.permissions_claim = "";
  EXPECT_NE(setup_error(settings), "");
  settings.permissions_claim = "otsync";
  EXPECT_EQ(setup_error(settings), "");
}

TEST_F(Jwt, UnreadableKeyFiles) {
  jwt_settings settings;
  settings.public_keys_file = dir.path() / "missing.json";
  EXPECT_NE(setup_error(settings).find("missing.json"), std::string::npos);
  settings.public_keys_file = dir.path();
  EXPECT_NE(setup_error(settings).find("directory"), std::string::npos);
  settings.public_keys_file = dir.write("empty", "");
  EXPECT_NE(setup_error(settings), "");
  settings.public_keys_file = dir.write("huge", std::string((1 << 20) + 1, ' '));
  EXPECT_NE(setup_error(settings).find("larger"), std::string::npos);
}

TEST_F(Jwt, BadJwksIsRefusedAtLoad) {
  auto rsa = forge::rsa_jwk(k.rsa_a.get(), "r");
  auto ec = forge::ec_jwk(k.ec_a.get(), "e");
  auto with = [](json jwk, const char* member, json value) {
    jwk[member] = std::move(value);
    return jwk;
  };
  auto without = [](json jwk, const char* member) {
    jwk.erase(member);
    return jwk;
  };
  jwt_settings settings;
  for (const std::string& text :
       {std::string("{"), std::string("{}"), std::string(R"({"keys":{}})"), std::string(R"({"keys":[]})"),
        std::string(R"({"keys":[1]})"), std::string(R"({"keys":[{"kty":"RSA"}]})"),
        "{\"keys\":" + std::string(100, '[') + std::string(100, ']') + "}"}) {
    settings.public_keys_file = dir.write("bad.json", text);
    EXPECT_NE(setup_error(settings), "") << text;
  }
  struct refused_jwk {
    json jwk;
    const char* expected;  // a word the message must hold
  };
  for (const auto& [jwk, expected] : std::vector<refused_jwk>{
           {forge::rsa_jwk(k.rsa_small.get(), "small"), "1024"},
           {without(rsa, "kty"), "kty"},
           {with(rsa, "kty", "OKP"), "kty"},
           {with(rsa, "kty", "oct"), "oct"},
           {with(rsa, "alg", "RS512"), "RS256"},
           {with(rsa, "alg", "HS256"), "RS256"},
           {with(ec, "alg", "RS256"), "ES256"},
           {with(rsa, "kid", 5), "kid"},
           {with(rsa, "use", "other"), "use"},
           {with(rsa, "n", "not base64!"), "\"n\""},
           {with(rsa, "n", "AQAB="), "\"n\""},
           {without(rsa, "e"), "\"e\""},
           {with(rsa, "e", "AA"), "RSA"},
           {forge::ec_jwk(k.ec_p384.get(), "p384", "P-384", 48), "P-256"},
           {with(ec, "crv", "P-384"), "P-256"},
           {with(ec, "crv", "secp256k1"), "P-256"},
           {with(ec, "x", base64url_encode(std::string(31, 'x'))), "32"},
           {with(ec, "y", ec["x"]), "curve"},  // (x, x) is not on the curve
       }) {
    auto error = jwks_error({jwk});
    EXPECT_NE(error.find(expected), std::string::npos) << jwk.dump() << " → " << error;
  }
  // One bad key refuses the whole file; duplicate kids too.
  EXPECT_NE(jwks_error({rsa, forge::rsa_jwk(k.rsa_small.get(), "small")}), "");
  EXPECT_NE(jwks_error({rsa, forge::rsa_jwk(k.rsa_b.get(), "r")}).find("kid"), std::string::npos);
  // Encryption keys are skipped, but a file of them alone has no key.
  EXPECT_EQ(jwks_error({rsa, with(forge::rsa_jwk(k.rsa_b.get(), "enc"), "use", "enc")}), "");
  EXPECT_NE(jwks_error({with(rsa, "use", "enc")}), "");
}

TEST_F(Jwt, BadPemIsRefusedAtLoad) {
  jwt_settings settings;
  auto error_for = [&](const std::string& pem) {
    settings.public_keys_file = dir.write("keys.pem", pem);
    return setup_error(settings);
  };
  EXPECT_NE(error_for(forge::pem_of(k.rsa_small.get())).find("1024"), std::string::npos);
  EXPECT_NE(error_for(forge::pem_of(k.ec_p384.get())).find("P-256"), std::string::npos);
  EXPECT_NE(error_for(forge::pem_of(k.rsa_a.get(), true)).find("private"), std::string::npos);
  EXPECT_NE(error_for(forge::pem_of(k.rsa_a.get()) + forge::pem_of(k.ec_a.get(), true)).find("private"),
            std::string::npos);
  EXPECT_NE(error_for("-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"), "");
  EXPECT_NE(error_for("-----BEGIN PUBLIC KEY-----\nMIIB\n"), "");
  EXPECT_NE(error_for("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").find("PUBLIC KEY"),
            std::string::npos);
  EXPECT_NE(error_for("not a key at all"), "");
  auto ed25519 = forge::pkey_ptr(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  ASSERT_NE(ed25519, nullptr);
  EXPECT_NE(error_for(forge::pem_of(ed25519.get())), "");
  EXPECT_EQ(error_for(forge::pem_of(k.rsa_a.get())), "");
}

TEST(Base64url, DecodeIsStrict) {
  for (const std::string& bytes : {std::string(), std::string("f"), std::string("fo"), std::string("foo"),
                                   std::string("\xfb\xff\x00", 3), std::string(1000, '\xa5')}) {
    EXPECT_EQ(base64url_decode(base64url_encode(bytes)), bytes);
  }
  EXPECT_EQ(base64url_decode("Zm9vYmFy"), "foobar");
  EXPECT_EQ(base64url_decode("-_8"), "\xfb\xff");
  for (const char* bad : {"Zg==", "Zg=", "Z", "Zm9vY", "+/8", "Zm 9v", "Zm9v\n", "Zh", "Zm9", "Zm8=", "\x80\x80"}) {
    EXPECT_FALSE(base64url_decode(bad).has_value()) << bad;
  }
  EXPECT_TRUE(base64url_decode("Zm8").has_value());
}

TEST(TokenErrc, Names) {
  EXPECT_EQ(token_errc_name(token_errc::malformed), "malformed");
  EXPECT_EQ(token_errc_name(token_errc::bad_signature), "bad_signature");
  EXPECT_EQ(token_errc_name(token_errc::bad_claims), "bad_claims");
}

}  // namespace
}  // namespace otsync::auth
