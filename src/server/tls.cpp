#include "tls.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

#include <boost/asio/ssl/context.hpp>

namespace otsync::server {
namespace ssl = boost::asio::ssl;

namespace {

// Mozilla's "intermediate" profile: TLS 1.2 with forward-secret AEAD suites, and TLS 1.3 (its
// suites are OpenSSL's defaults, all of which the profile lists). No DHE suites: they would need
// a DH parameter file, and every client of a WebSocket server speaks ECDHE.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Why a file cannot be used, before OpenSSL says something vaguer.
std::string unreadable(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::strerror(errno);
  return {};
}

std::string describe(const boost::system::error_code& ec) {
  auto text = ec.message();
  return text.empty() ? "not a usable PEM file" : text;
}

std::chrono::system_clock::time_point certificate_not_after(SSL_CTX* ctx) {
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert == nullptr) return {};
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

tls_server_config::tls_server_config(const server_options& options)
    : cert_file_(options.tls_cert),
      key_file_(options.tls_key.empty() ? options.tls_cert : options.tls_key),
      client_ca_file_(options.tls_client_ca) {}

tls_server_config::~tls_server_config() = default;

std::unique_ptr<tls_server_config> tls_server_config::load(const server_options& options, std::string& error) {
  std::unique_ptr<tls_server_config> config(new tls_server_config(options));
  error = config->build(config->current_, config->not_after_);
  if (!error.empty()) return nullptr;
  return config;
}

std::string tls_server_config::build(std::shared_ptr<ssl::context>& out,
                                     std::chrono::system_clock::time_point& not_after) const {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression | ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle connections give OpenSSL's record buffers back (about 34 KiB each).
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(native, tls12_ciphers) != 1) return "TLS: cipher list not supported by this OpenSSL";

  boost::system::error_code ec;
  if (auto why = unreadable(cert_file_); !why.empty()) return "--tls-cert " + cert_file_ + ": " + why;
  ctx->use_certificate_chain_file(cert_file_, ec);
  if (ec) return "--tls-cert " + cert_file_ + ": no certificate (PEM expected): " + describe(ec);
  // The key may sit in the certificate's file (no --tls-key): name the file and the flag the user gave.
  const std::string key_flag = key_file_ == cert_file_ ? "--tls-cert " : "--tls-key ";
  if (auto why = unreadable(key_file_); !why.empty()) return key_flag + key_file_ + ": " + why;
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(nullptr, EVP_PKEY_free);
  if (std::unique_ptr<BIO, decltype(&BIO_free)> in(BIO_new_file(key_file_.c_str(), "r"), BIO_free); in) {
    key.reset(PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr));
  }
  ERR_clear_error();
  if (!key) {
    return key_flag + key_file_ + ": no private key (PEM expected)" +
           (key_file_ == cert_file_ ? "; give the key's file with --tls-key" : "");
  }
  if (SSL_CTX_use_PrivateKey(native, key.get()) != 1 || SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return key_flag + key_file_ + ": the private key does not match the certificate in " + cert_file_;
  }
  if (!client_ca_file_.empty()) {
    if (auto why = unreadable(client_ca_file_); !why.empty()) return "--tls-client-ca " + client_ca_file_ + ": " + why;
    ctx->load_verify_file(client_ca_file_, ec);
    if (ec) return "--tls-client-ca " + client_ca_file_ + ": no CA certificate (PEM expected): " + describe(ec);
    // Tell clients which CAs we accept, and refuse a handshake without a certificate from one.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(client_ca_file_.c_str())) {
      SSL_CTX_set_client_CA_list(native, names);
    }
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    // Session resumption with client certificates needs a context id.
    static constexpr unsigned char session_context[] = "otsyncd";
    SSL_CTX_set_session_id_context(native, session_context, sizeof session_context - 1);
  }
  not_after = certificate_not_after(native);
  out = std::move(ctx);
  return {};
}

std::shared_ptr<ssl::context> tls_server_config::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

std::string tls_server_config::reload() {
  std::shared_ptr<ssl::context> fresh;
  std::chrono::system_clock::time_point fresh_not_after;
  if (auto error = build(fresh, fresh_not_after); !error.empty()) return error;
  std::lock_guard lock(mutex_);
  current_ = std::move(fresh);
  not_after_ = fresh_not_after;
  return {};
}

std::chrono::system_clock::time_point tls_server_config::not_after() const {
  std::lock_guard lock(mutex_);
  return not_after_;
}

}  // namespace otsync::server
