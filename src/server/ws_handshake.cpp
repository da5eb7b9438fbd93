#include "ws_handshake.hpp"

#include <boost/beast/websocket/detail/hybi13.hpp>
#include <nlohmann/json.hpp>

#include "authenticate.hpp"

namespace otsync::server {
namespace http = boost::beast::http;

namespace {

http_response refuse(const http_request& request, http::status status, const char* message) {
  http_response res{status, request.version()};
  res.set(http::field::server, "otsyncd");
  res.set(http::field::content_type, "application/json");
  res.body() = nlohmann::json{{"error", {{"code", "ERR_BAD_REQUEST"}, {"message", message}}}}.dump();
  res.keep_alive(false);
  res.prepare_payload();
  return res;
}

}  // namespace

http_response websocket_upgrade_response(const http_request& request) {
  // The checks Beast's accept makes (its error messages, too).
  if (request.find(http::field::host) == request.end()) {
    return refuse(request, http::status::bad_request, "Missing Host");
  }
  auto key = request[http::field::sec_websocket_key];
  if (key.empty()) return refuse(request, http::status::bad_request, "Missing Sec-WebSocket-Key");
  if (key.size() > boost::beast::websocket::detail::sec_ws_key_type::static_capacity) {
    return refuse(request, http::status::bad_request, "Invalid Sec-WebSocket-Key");
  }
  auto version = request[http::field::sec_websocket_version];
  if (version != "13") {
    auto res = refuse(request, http::status::upgrade_required, "Unsupported Sec-WebSocket-Version");
    res.set(http::field::sec_websocket_version, "13");
    return res;
  }
  boost::beast::websocket::detail::sec_ws_accept_type accept;
  boost::beast::websocket::detail::make_sec_ws_accept(accept, key);
  http_response res{http::status::switching_protocols, request.version()};
  res.set(http::field::server, "otsyncd");
  res.set(http::field::upgrade, "websocket");
  res.set(http::field::connection, "Upgrade");
  res.set(http::field::sec_websocket_accept, boost::beast::string_view(accept.data(), accept.size()));
  // A browser that sends its token as a subprotocol offers "otsync" too, and
  // must get one of its offers back (never the token's) or it fails the connection.
  if (offers_subprotocol(request)) res.set(http::field::sec_websocket_protocol, websocket_subprotocol);
  return res;
}

}  // namespace otsync::server
