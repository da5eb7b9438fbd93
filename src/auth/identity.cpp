#include "otsync/auth/identity.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <stdexcept>

namespace otsync::auth {
namespace {

constexpr std::size_t id_random_bytes = 16;
constexpr std::size_t id_tag_bytes = 16;
constexpr std::size_t alias_bytes = 16;
// base64url lengths without padding.
constexpr std::size_t encoded_length(std::size_t bytes) {
  return (bytes * 4 + 2) / 3;
}
constexpr std::size_t id_random_chars = encoded_length(id_random_bytes);
constexpr std::size_t id_tag_chars = encoded_length(id_tag_bytes);

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("identity: the system random generator failed");
  }
  return out;
}

}  // namespace

identity_keys::identity_keys(std::string secret) : secret_(std::move(secret)) {
  if (secret_.size() < min_identity_secret_bytes) {
    throw std::invalid_argument("the identity secret must be at least 16 bytes");
  }
}

std::string identity_keys::random_secret() {
  return random_bytes(32);
}

std::string identity_keys::tag(std::string_view domain, std::string_view data, std::size_t bytes) const {
  // HMAC-SHA256 over "domain\0data": the id tag and the alias never share an input.
  std::string message;
  message.reserve(domain.size() + 1 + data.size());
  message.append(domain).push_back('\0');
  message.append(data);
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac.data(), &length) == nullptr) {
    throw std::runtime_error("identity: HMAC-SHA256 failed");
  }
  return base64url_encode(
      std::string_view(reinterpret_cast<const char*>(mac.data()), std::min<std::size_t>(bytes, length)));
}

std::string identity_keys::mint_id() const {
  std::string id = base64url_encode(random_bytes(id_random_bytes));
  id += tag("otsync-id", id, id_tag_bytes);
  return id;
}

bool identity_keys::is_minted(std::string_view id) const {
  if (id.size() != id_random_chars + id_tag_chars) return false;
  std::string expected = tag("otsync-id", id.substr(0, id_random_chars), id_tag_bytes);
  return CRYPTO_memcmp(expected.data(), id.data() + id_random_chars, id_tag_chars) == 0;
}

std::string identity_keys::alias(std::string_view src) const {
  if (src.empty()) return {};
  std::string out(1, '~');
  out += tag("otsync-alias", src, alias_bytes);
  return out;
}

}  // namespace otsync::auth
