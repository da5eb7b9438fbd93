// libFuzzer target: a bearer token as otsyncd receives it on a WebSocket
// upgrade or a REST request (src/auth/jwt.cpp): anyone can send these bytes.
// The verifier holds the HS256 secret the seed corpus is signed with
// (make_corpus.py, JWT_SECRET) and a P-256 key made at start-up.
//
// Input: the token text. Invariants, each an abort:
//   - verify never throws and never crashes;
//   - an error message never quotes the token (no 16-byte run of it);
//   - an accepted token really is signed with the secret (the EC key's
//     private half is thrown away): the HMAC of its first two parts,
//     recomputed here, is its third part;
//   - verifying the same token again gives the same answer.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "otsync/auth/base64url.hpp"
#include "otsync/auth/jwt.hpp"

namespace {

const std::string secret = "fuzz-jwt-secret-fuzz-jwt-secret-0123";

[[noreturn]] void fail(const char* what, std::string_view text) {
  std::fprintf(stderr, "invariant violated: %s\ninput: %.*s\n", what, static_cast<int>(text.size()), text.data());
  std::abort();
}

const otsync::auth::jwt_verifier& verifier() {
  static const otsync::auth::jwt_verifier instance = [] {
    // A P-256 public key in a JWKS file, so ES256 paths run too.
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    if (key == nullptr) std::abort();
    const auto dir = std::filesystem::temp_directory_path() / ("otsync-fuzz-jwt-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto pem = dir / "key.pem";
    {
      FILE* out = std::fopen(pem.c_str(), "w");
      if (out == nullptr || PEM_write_PUBKEY(out, key) != 1) std::abort();
      std::fclose(out);
    }
    EVP_PKEY_free(key);
    otsync::auth::jwt_settings settings;
    settings.hs256_secret = secret;
    settings.public_keys_file = pem;
    auto made = otsync::auth::jwt_verifier::create(settings);
    std::filesystem::remove_all(dir);
    if (!std::holds_alternative<otsync::auth::jwt_verifier>(made)) std::abort();
    return std::get<otsync::auth::jwt_verifier>(std::move(made));
  }();
  return instance;
}

bool signed_with_secret(std::string_view token) {
  const auto last = token.rfind('.');
  if (last == std::string_view::npos) return false;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const auto input = token.substr(0, last);
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &length);
  return otsync::auth::base64url_encode(std::string_view(reinterpret_cast<const char*>(mac), length)) ==
         token.substr(last + 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view token(reinterpret_cast<const char*>(data), size);
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  auto first = verifier().verify(token, now);
  auto second = verifier().verify(token, now);
  if (first.index() != second.index()) fail("two verifications disagree", token);
  if (const auto* error = std::get_if<otsync::auth::token_error>(&first)) {
    // (Runs with a space in them could be the message's own words.)
    for (std::size_t at = 0; at + 16 <= token.size(); at += 8) {
      const auto run = token.substr(at, 16);
      if (run.find(' ') == std::string_view::npos && error->message.find(run) != std::string::npos) {
        fail("the error quotes the token", token);
      }
    }
    return 0;
  }
  // The EC key's private half is gone: only the secret can have signed an accepted token.
  if (!signed_with_secret(token)) fail("accepted a token not signed with the secret", token);
  return 0;
}
