// One plain-HTTP connection: serves requests in order (keep-alive) and hands
// the socket to a WebSocket session on an upgrade to /ws.
//
// Thread safety: all state lives on the stream's strand.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "authenticate.hpp"
#include "connection_socket.hpp"
#include "context.hpp"
#include "http_routes.hpp"

namespace otsync::server {

class http_session : public std::enable_shared_from_this<http_session> {
 public:
  http_session(connection_socket&& socket, server_context& context);
  void run();

 private:
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void write(http_response response);
  /// Sends the 101 and hands the socket to a WebSocket session.
  /// Writes the 101 and hands the socket to a WebSocket session holding `address`'s connection slot.
  void upgrade(http_response response, std::string address, caller who);

  boost::beast::basic_stream<boost::asio::ip::tcp, connection_executor> stream_;
  server_context& context_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
};

}  // namespace otsync::server
