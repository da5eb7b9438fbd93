#include "public_keys.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <array>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "otsync/auth/base64url.hpp"
#include "otsync/auth/jwt.hpp"
#include "otsync/protocol/json_parse.hpp"

namespace otsync::auth::detail {
namespace {

using nlohmann::json;

template <auto free_function>
struct openssl_free {
  template <class T>
  void operator()(T* p) const noexcept {
    free_function(p);
  }
};
using bignum_ptr = std::unique_ptr<BIGNUM, openssl_free<BN_free>>;
using param_builder_ptr = std::unique_ptr<OSSL_PARAM_BLD, openssl_free<OSSL_PARAM_BLD_free>>;
using params_ptr = std::unique_ptr<OSSL_PARAM, openssl_free<OSSL_PARAM_free>>;
using pkey_context_ptr = std::unique_ptr<EVP_PKEY_CTX, openssl_free<EVP_PKEY_CTX_free>>;
using bio_ptr = std::unique_ptr<BIO, openssl_free<BIO_free_all>>;

constexpr std::size_t p256_coordinate_bytes = 32;
// OpenSSL's own ceiling (OPENSSL_RSA_MAX_MODULUS_BITS); larger keys only cost time.
constexpr int max_rsa_key_bits = 16384;
// A JWKS is three levels deep; x5c chains add one.
constexpr std::size_t max_jwks_depth = 16;

const unsigned char* bytes_of(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string describe(std::size_t index, const json& jwk) {
  auto kid = jwk.find("kid");
  std::string out = "key " + std::to_string(index);
  if (kid != jwk.end() && kid->is_string()) out += " (kid \"" + kid->get<std::string>() + "\")";
  return out;
}

pkey_ptr key_from_params(const char* type, OSSL_PARAM_BLD* builder, const std::string& refusal) {
  params_ptr params(OSSL_PARAM_BLD_to_param(builder));
  pkey_context_ptr context(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !context || EVP_PKEY_fromdata_init(context.get()) != 1 ||
      EVP_PKEY_fromdata(context.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    throw key_file_error(refusal);
  }
  return pkey_ptr(key);
}

// Sanity beyond what EVP_PKEY_fromdata checks for RSA (only that n exists).
void check_rsa_key(EVP_PKEY* key, const std::string& what) {
  BIGNUM* raw_n = nullptr;
  BIGNUM* raw_e = nullptr;
  bool got = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &raw_n) == 1;
  bignum_ptr n(raw_n);
  got = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &raw_e) == 1 && got;
  bignum_ptr e(raw_e);
  if (!got) throw key_file_error(what + ": an RSA key without a modulus or exponent");
  int bits = BN_num_bits(n.get());
  if (bits < static_cast<int>(min_rsa_key_bits)) {
    throw key_file_error(what + ": an RSA key of " + std::to_string(bits) + " bits; at least " +
                         std::to_string(min_rsa_key_bits) + " are required");
  }
  if (bits > max_rsa_key_bits) {
    throw key_file_error(what + ": an RSA key of " + std::to_string(bits) + " bits; at most " +
                         std::to_string(max_rsa_key_bits) + " are accepted");
  }
  if (!BN_is_odd(n.get()) || !BN_is_odd(e.get()) || BN_is_one(e.get()) || BN_cmp(e.get(), n.get()) >= 0) {
    throw key_file_error(what + ": not a valid RSA public key (modulus or exponent)");
  }
}

// Whether an EC key is on P-256 and its point valid (on the curve, not infinity).
void check_p256_key(EVP_PKEY* key, const std::string& what) {
  std::array<char, 64> group{};
  std::size_t length = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group.data(), group.size(), &length) != 1 ||
      std::string_view(group.data(), length) != SN_X9_62_prime256v1) {
    throw key_file_error(what + ": an EC key on a curve other than P-256 (only ES256 is supported)");
  }
  pkey_context_ptr context(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (!context || EVP_PKEY_public_check(context.get()) != 1) {
    throw key_file_error(what + ": not a valid P-256 public key (the point is not on the curve)");
  }
}

std::string required_base64url(const json& jwk, const char* member, const std::string& what) {
  auto it = jwk.find(member);
  if (it == jwk.end() || !it->is_string()) {
    throw key_file_error(what + ": member \"" + member + "\" is missing or not a string");
  }
  auto decoded = base64url_decode(it->get_ref<const std::string&>());
  if (!decoded || decoded->empty()) {
    throw key_file_error(what + ": member \"" + member + "\" is not base64url (without padding)");
  }
  return *decoded;
}

pkey_ptr rsa_key_from_jwk(const json& jwk, const std::string& what) {
  std::string n = required_base64url(jwk, "n", what);
  std::string e = required_base64url(jwk, "e", what);
  bignum_ptr modulus(BN_bin2bn(bytes_of(n), static_cast<int>(n.size()), nullptr));
  bignum_ptr exponent(BN_bin2bn(bytes_of(e), static_cast<int>(e.size()), nullptr));
  param_builder_ptr builder(OSSL_PARAM_BLD_new());
  if (!modulus || !exponent || !builder ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, modulus.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, exponent.get()) != 1) {
    throw key_file_error(what + ": out of memory building the RSA key");
  }
  auto key = key_from_params("RSA", builder.get(), what + ": OpenSSL does not accept it as an RSA public key");
  check_rsa_key(key.get(), what);
  return key;
}

pkey_ptr p256_key_from_jwk(const json& jwk, const std::string& what) {
  auto crv = jwk.find("crv");
  if (crv == jwk.end() || !crv->is_string() || *crv != "P-256") {
    throw key_file_error(what + ": an EC key whose \"crv\" is not \"P-256\" (only ES256 is supported)");
  }
  std::string x = required_base64url(jwk, "x", what);
  std::string y = required_base64url(jwk, "y", what);
  if (x.size() != p256_coordinate_bytes || y.size() != p256_coordinate_bytes) {
    throw key_file_error(what + ": \"x\" and \"y\" must be 32 bytes each for P-256");
  }
  // SEC 1 uncompressed point: 0x04 || x || y.
  std::string point = "\x04" + x + y;
  param_builder_ptr builder(OSSL_PARAM_BLD_new());
  if (!builder ||
      OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, SN_X9_62_prime256v1, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
    throw key_file_error(what + ": out of memory building the EC key");
  }
  auto key = key_from_params("EC", builder.get(), what + ": not a P-256 public key (the point is not on the curve)");
  check_p256_key(key.get(), what);
  return key;
}

}  // namespace

std::vector<public_key> parse_jwks(std::string_view text) {
  json jwks = protocol::parse_json_bounded(text, max_jwks_depth);
  if (jwks.is_discarded() || !jwks.is_object()) throw key_file_error("not a JSON object (a JWKS is {\"keys\": [...]})");
  auto keys = jwks.find("keys");
  if (keys == jwks.end() || !keys->is_array()) throw key_file_error("no \"keys\" array");
  std::vector<public_key> out;
  std::set<std::string> kids;
  for (std::size_t i = 0; i < keys->size(); ++i) {
    const json& jwk = (*keys)[i];
    if (!jwk.is_object()) throw key_file_error("key " + std::to_string(i) + ": not a JSON object");
    std::string what = describe(i, jwk);
    // Encryption keys are not ours to use; they may share a JWKS with signing keys.
    auto use = jwk.find("use");
    if (use != jwk.end()) {
      if (!use->is_string()) throw key_file_error(what + ": \"use\" is not a string");
      if (*use == "enc") continue;
      if (*use != "sig") throw key_file_error(what + ": \"use\" is neither \"sig\" nor \"enc\"");
    }
    auto kty = jwk.find("kty");
    if (kty == jwk.end() || !kty->is_string()) throw key_file_error(what + ": \"kty\" is missing or not a string");
    public_key key{};
    const char* expected_alg = nullptr;
    if (*kty == "RSA") {
      key.type = key_type::rsa;
      key.key = rsa_key_from_jwk(jwk, what);
      expected_alg = "RS256";
    } else if (*kty == "EC") {
      key.type = key_type::ec_p256;
      key.key = p256_key_from_jwk(jwk, what);
      expected_alg = "ES256";
    } else if (*kty == "oct") {
      throw key_file_error(what + ": a symmetric key (kty \"oct\"); give an HS256 secret as the shared secret instead");
    } else {
      throw key_file_error(what + ": unsupported \"kty\" (RSA for RS256 and EC P-256 for ES256 are supported)");
    }
    auto alg = jwk.find("alg");
    if (alg != jwk.end() && (!alg->is_string() || *alg != expected_alg)) {
      throw key_file_error(what + ": \"alg\" is not \"" + expected_alg +
                           "\", the only algorithm supported for its kty");
    }
    auto kid = jwk.find("kid");
    if (kid != jwk.end()) {
      if (!kid->is_string()) throw key_file_error(what + ": \"kid\" is not a string");
      key.kid = kid->get<std::string>();
      // A kid selects one key; two would make the choice the file's order.
      if (!kids.insert(*key.kid).second) throw key_file_error(what + ": another key has the same kid");
    }
    out.push_back(std::move(key));
  }
  if (out.empty()) throw key_file_error("no signing key in the JWKS");
  return out;
}

std::vector<public_key> parse_pem(std::string_view text) {
  static constexpr std::string_view begin_marker = "-----BEGIN ";
  static constexpr std::string_view end_marker = "-----END ";
  static constexpr std::string_view dashes = "-----";
  std::vector<public_key> out;
  std::size_t at = 0;
  while ((at = text.find(begin_marker, at)) != std::string_view::npos) {
    std::size_t label_start = at + begin_marker.size();
    std::size_t label_end = text.find(dashes, label_start);
    if (label_end == std::string_view::npos) throw key_file_error("a PEM block without the end of its BEGIN line");
    std::string_view label = text.substr(label_start, label_end - label_start);
    std::string what = "PEM block " + std::to_string(out.size());
    if (label.find("PRIVATE KEY") != std::string_view::npos) {
      throw key_file_error(what + ": a private key; the server needs the public key only (openssl pkey -pubout)");
    }
    if (label != "PUBLIC KEY") {
      throw key_file_error(what + ": \"" + std::string(label) +
                           "\" is not a \"PUBLIC KEY\" block (convert with openssl pkey -pubin -pubout)");
    }
    std::string end_line = std::string(end_marker) + std::string(label) + std::string(dashes);
    std::size_t end = text.find(end_line, label_end);
    if (end == std::string_view::npos) throw key_file_error(what + ": no END PUBLIC KEY line");
    std::string_view block = text.substr(at, end + end_line.size() - at);
    at = end + end_line.size();

    bio_ptr bio(BIO_new_mem_buf(block.data(), static_cast<int>(block.size())));
    pkey_ptr key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!key) throw key_file_error(what + ": OpenSSL cannot read it as a public key");
    public_key entry{};
    if (EVP_PKEY_is_a(key.get(), "RSA")) {
      check_rsa_key(key.get(), what);
      entry.type = key_type::rsa;
    } else if (EVP_PKEY_is_a(key.get(), "EC")) {
      check_p256_key(key.get(), what);
      entry.type = key_type::ec_p256;
    } else {
      throw key_file_error(what + ": neither an RSA nor an EC P-256 key (RS256 and ES256 are supported)");
    }
    entry.key = std::move(key);
    out.push_back(std::move(entry));
  }
  if (out.empty()) throw key_file_error("no -----BEGIN PUBLIC KEY----- block");
  return out;
}

std::vector<public_key> load_public_keys(const std::filesystem::path& path) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) throw key_file_error(path.string() + " is a directory");
  std::ifstream file(path, std::ios::binary);
  if (!file) throw key_file_error("cannot open " + path.string());
  std::string text;
  text.resize(max_key_file_bytes + 1);
  file.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (file.bad()) throw key_file_error("cannot read " + path.string());
  text.resize(static_cast<std::size_t>(file.gcount()));
  if (text.size() > max_key_file_bytes) {
    throw key_file_error(path.string() + " is larger than " + std::to_string(max_key_file_bytes) +
                         " bytes; not a key file");
  }
  auto first = text.find_first_not_of(" \t\r\n");
  try {
    if (first != std::string::npos && text[first] == '{') return parse_jwks(text);
    return parse_pem(text);
  } catch (const key_file_error& e) {
    throw key_file_error(path.string() + ": " + e.what());
  }
}

}  // namespace otsync::auth::detail
