// TLS for wss:// on the OpenSSL handles under Asio's streams, shared by the
// client's transport and otsync-load: how a client context trusts servers,
// what is set on each connection before its handshake (SNI, the name the
// certificate must carry), and how a failed handshake is explained.
//
// Thread safety: plain functions; a context is configured before it is shared.
#pragma once

#include <openssl/ssl.h>

#include <filesystem>
#include <string>

namespace otsync::client::tls {

/// A client context: TLS 1.2 or later; the server's certificate verified
/// against the CAs in `ca_file` (instead of the system's trust store), or
/// against the system's store when `ca_file` is empty; nothing verified when
/// `skip_verify` (tests only). Throws std::invalid_argument when the CAs
/// cannot be loaded.
void configure_client_context(SSL_CTX* context, const std::filesystem::path& ca_file, bool skip_verify);

/// On one connection before its handshake: SNI for a host name (never for an
/// IP literal, RFC 6066), and unless verification is off, the DNS name or IP
/// address the certificate must carry. Returns an error message, or "" when done.
std::string prepare_connection(SSL* connection, const std::string& name);

/// "TLS handshake with WHERE failed: ERROR", plus the verification's reason
/// when the certificate was refused ("certificate has expired", "hostname
/// mismatch", "unable to get local issuer certificate", ...).
std::string handshake_failure(const std::string& where, const std::string& error, const SSL* connection);

}  // namespace otsync::client::tls
