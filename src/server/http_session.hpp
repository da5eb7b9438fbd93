// HTTP connections: requests served in order (keep-alive), and the upgrade to
// /ws handed to a WebSocket session. Plain, or over TLS (--tls-cert) after a
// handshake with the server context of the moment.
//
// Thread safety: each connection's state lives on its executor (its I/O thread).
#pragma once

#include <memory>

#include "connection_socket.hpp"
#include "context.hpp"

namespace boost::asio::ssl {
class context;
}

namespace otsync::server {

/// Serves a plain HTTP connection.
void serve_http(connection_socket&& socket, server_context& context);
/// Serves an HTTPS connection: the TLS handshake first (within the request timeout).
void serve_https(connection_socket&& socket, server_context& context, std::shared_ptr<boost::asio::ssl::context> tls);

}  // namespace otsync::server
