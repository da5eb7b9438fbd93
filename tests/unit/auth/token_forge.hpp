// Test helpers for bearer tokens: keys generated at run time, JWKS and PEM
// files in a temporary directory, and tokens signed here, byte by byte, so
// tests can also build every malformed or forged token they need.
#pragma once

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "otsync/auth/base64url.hpp"

namespace otsync::auth::forge {

using nlohmann::json;

struct pkey_free {
  void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

inline void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test helper: ") + what + " failed");
}

inline pkey_ptr make_rsa_key(unsigned bits) {
  pkey_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(bits)));
  require(key != nullptr, "RSA key generation");
  return key;
}

inline pkey_ptr make_ec_key(const char* curve = "P-256") {
  pkey_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
  require(key != nullptr, "EC key generation");
  return key;
}

inline std::string pem_of(EVP_PKEY* key, bool private_key = false) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  require(bio != nullptr, "BIO_new");
  int written = private_key ? PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
                            : PEM_write_bio_PUBKEY(bio.get(), key);
  require(written == 1, "PEM_write_bio");
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(length));
}

// A big-endian BIGNUM parameter of `key`, base64url; `width` pads with zeros.
inline std::string bignum_param(EVP_PKEY* key, const char* name, int width = 0) {
  BIGNUM* raw = nullptr;
  require(EVP_PKEY_get_bn_param(key, name, &raw) == 1, "EVP_PKEY_get_bn_param");
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(raw, &BN_free);
  int size = width > 0 ? width : BN_num_bytes(bn.get());
  std::string bytes(static_cast<std::size_t>(size), '\0');
  require(BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(bytes.data()), size) == size, "BN_bn2binpad");
  return base64url_encode(bytes);
}

inline json rsa_jwk(EVP_PKEY* key, const std::string& kid = "") {
  json jwk = {{"kty", "RSA"},
              {"n", bignum_param(key, OSSL_PKEY_PARAM_RSA_N)},
              {"e", bignum_param(key, OSSL_PKEY_PARAM_RSA_E)},
              {"alg", "RS256"},
              {"use", "sig"}};
  if (!kid.empty()) jwk["kid"] = kid;
  return jwk;
}

inline json ec_jwk(EVP_PKEY* key, const std::string& kid = "", const char* crv = "P-256", int width = 32) {
  json jwk = {{"kty", "EC"},
              {"crv", crv},
              {"x", bignum_param(key, OSSL_PKEY_PARAM_EC_PUB_X, width)},
              {"y", bignum_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, width)}};
  if (!kid.empty()) jwk["kid"] = kid;
  return jwk;
}

inline std::string hmac_sha256(std::string_view secret, std::string_view input) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int length = 0;
  require(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
               reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac.data(), &length) != nullptr,
          "HMAC");
  return std::string(reinterpret_cast<const char*>(mac.data()), length);
}

// A SHA-256 signature by `key`: PKCS #1 v1.5 for RSA, DER ECDSA for EC.
inline std::string digest_sign(EVP_PKEY* key, std::string_view input) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  require(context && EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key) == 1, "DigestSignInit");
  std::size_t length = 0;
  auto* data = reinterpret_cast<const unsigned char*>(input.data());
  require(EVP_DigestSign(context.get(), nullptr, &length, data, input.size()) == 1, "DigestSign (size)");
  std::string signature(length, '\0');
  require(EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, data,
                         input.size()) == 1,
          "DigestSign");
  signature.resize(length);
  return signature;
}

// JWS's ES256 form of a DER ECDSA signature: r || s, 32 bytes each.
inline std::string raw_es256(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> signature(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())), &ECDSA_SIG_free);
  require(signature != nullptr, "d2i_ECDSA_SIG");
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  require(BN_bn2binpad(ECDSA_SIG_get0_r(signature.get()), out, 32) == 32, "r");
  require(BN_bn2binpad(ECDSA_SIG_get0_s(signature.get()), out + 32, 32) == 32, "s");
  return raw;
}

inline std::string encode(const json& part) {
  return base64url_encode(part.dump());
}

/// `header.payload` from JSON texts (not necessarily valid JSON).
inline std::string signing_input(std::string_view header_text, std::string_view payload_text) {
  return base64url_encode(header_text) + "." + base64url_encode(payload_text);
}

/// A token from a signing input and raw signature bytes.
inline std::string with_signature(const std::string& input, std::string_view signature) {
  return input + "." + base64url_encode(signature);
}

inline std::string hs256_token(const json& payload, std::string_view secret, json header = {{"typ", "JWT"}}) {
  header["alg"] = "HS256";
  auto input = encode(header) + "." + encode(payload);
  return with_signature(input, hmac_sha256(secret, input));
}

inline std::string rs256_token(const json& payload, EVP_PKEY* key, const std::string& kid = "") {
  json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  if (!kid.empty()) header["kid"] = kid;
  auto input = encode(header) + "." + encode(payload);
  return with_signature(input, digest_sign(key, input));
}

inline std::string es256_token(const json& payload, EVP_PKEY* key, const std::string& kid = "") {
  json header = {{"alg", "ES256"}, {"typ", "JWT"}};
  if (!kid.empty()) header["kid"] = kid;
  auto input = encode(header) + "." + encode(payload);
  return with_signature(input, raw_es256(digest_sign(key, input)));
}

/// A fresh directory under the system's temporary directory, removed with its contents.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "otsync-auth-XXXXXX").string();
    require(mkdtemp(pattern.data()) != nullptr, "mkdtemp");
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  std::filesystem::path write(const std::string& name, std::string_view content) const {
    auto file = path_ / name;
    std::ofstream out(file, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    require(static_cast<bool>(out), "writing a key file");
    return file;
  }

 private:
  std::filesystem::path path_;
};

/// Seconds since the epoch of `t` as a JSON NumericDate.
inline std::int64_t numeric_date(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace otsync::auth::forge
