#include "tls.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include <stdexcept>

namespace otsync::client::tls {
namespace {

bool is_ip_literal(const std::string& name) {
  unsigned char address[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, name.c_str(), address) == 1 || inet_pton(AF_INET6, name.c_str(), address) == 1;
}

/// The first error OpenSSL queued (the cause; later ones say where it surfaced), the queue emptied.
std::string first_error() {
  const char* reason = ERR_reason_error_string(ERR_peek_error());
  std::string text = reason != nullptr ? reason : "unknown error";
  ERR_clear_error();
  return text;
}

}  // namespace

void configure_client_context(SSL_CTX* context, const std::filesystem::path& ca_file, bool skip_verify) {
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  if (skip_verify) {
    SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nullptr);
    return;
  }
  SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nullptr);
  if (ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(context) != 1)
      throw std::invalid_argument("cannot load the system's trusted certificates: " + first_error());
  } else if (SSL_CTX_load_verify_locations(context, ca_file.c_str(), nullptr) != 1) {
    throw std::invalid_argument("cannot load the CA file " + ca_file.string() + ": " + first_error());
  }
}

std::string prepare_connection(SSL* connection, const std::string& name) {
  const bool ip = is_ip_literal(name);
  // SSL_set_tlsext_host_name, without the C cast in OpenSSL's macro.
  if (!ip && SSL_ctrl(connection, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                      const_cast<char*>(name.c_str())) != 1)
    return "cannot set the server name " + name;
  if (SSL_get_verify_mode(connection) == SSL_VERIFY_NONE) return {};
  const int named = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(connection), name.c_str())
                       : SSL_set1_host(connection, name.c_str());
  return named == 1 ? std::string() : "cannot verify the name " + name;
}

std::string handshake_failure(const std::string& where, const std::string& error, const SSL* connection) {
  std::string why = "TLS handshake with " + where + " failed: " + error;
  const long verify = SSL_get_verify_result(connection);
  if (verify != X509_V_OK) why += ": " + std::string(X509_verify_cert_error_string(verify));
  return why;
}

}  // namespace otsync::client::tls
