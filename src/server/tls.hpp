// otsyncd's own TLS listener (--tls-cert, --tls-key, --tls-client-ca): the
// server context every new connection is accepted with, rebuilt from the
// files on SIGHUP. A connection keeps the context it was accepted with (an
// SSL object holds a reference to it), so a reload never drops one; a reload
// that fails keeps the current context.
//
// Thread safety: `current` and `reload` may be called from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/basic_stream.hpp>

#include "connection_socket.hpp"
#include "otsync/server/options.hpp"

namespace otsync::server {

/// A client connection over TLS, for the HTTP requests and then the WebSocket: Beast's stream
/// underneath gives the handshake and the HTTP requests their timeouts.
using tls_stream = boost::asio::ssl::stream<boost::beast::basic_stream<boost::asio::ip::tcp, connection_executor>>;

/// A WebSocket connection's TLS state once the upgrade is done.
struct tls_link {
  tls_link(tls_stream&& s, std::shared_ptr<boost::asio::ssl::context> c)
      : context(std::move(c)), stream(std::move(s)) {}
  std::shared_ptr<boost::asio::ssl::context> context;  // before `stream`: outlives its SSL object
  tls_stream stream;
  std::vector<char> read_buffer;  // decrypted bytes land here (OpenSSL buffers the rest)
  std::string write_buffer;       // a write batch's frames, one TLS write
};

class tls_server_config {
 public:
  /// Reads the files named by `options`; empty `error` on success.
  static std::unique_ptr<tls_server_config> load(const server_options& options, std::string& error);
  ~tls_server_config();

  /// The context new connections are accepted with.
  [[nodiscard]] std::shared_ptr<boost::asio::ssl::context> current() const;
  /// Reads the files again; on success new connections use them, else the
  /// current context stays and the reason is returned.
  std::string reload();
  /// The serving certificate's notAfter.
  [[nodiscard]] std::chrono::system_clock::time_point not_after() const;

 private:
  explicit tls_server_config(const server_options& options);
  std::string build(std::shared_ptr<boost::asio::ssl::context>& out,
                    std::chrono::system_clock::time_point& not_after) const;

  std::string cert_file_;
  std::string key_file_;
  std::string client_ca_file_;
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> current_;
  std::chrono::system_clock::time_point not_after_{};
};

}  // namespace otsync::server
