// One WebSocket client socket at a time for the connection: connect (resolve,
// TCP, upgrade), read text frames, write queued frames in order, close. The
// only translation unit of the client library that includes Beast.
//
// Thread safety: none; every call and callback runs on the io_context's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "otsync/client/ws_url.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace otsync::client {

struct transport_callbacks {
  std::function<void()> on_open;                   ///< upgrade done: frames may be sent
  std::function<void(std::string_view)> on_frame;  ///< one text frame
  std::function<void(std::string)> on_closed;      ///< why; after a failed connect too
  std::function<std::string()> bearer_token;       ///< before each upgrade; non-empty: sent as a bearer token
};

class websocket_transport {
 public:
  websocket_transport(boost::asio::io_context& io, ws_url url, std::chrono::seconds keepalive,
                      transport_callbacks callbacks);
  ~websocket_transport();
  websocket_transport(const websocket_transport&) = delete;
  websocket_transport& operator=(const websocket_transport&) = delete;

  /// Opens a new socket (the previous one must have closed).
  void connect();
  /// Queues a text frame; dropped when the socket is not open (the protocol
  /// layer sends what matters again after the next handshake).
  void send(std::string frame);
  /// Closes the socket now; `on_closed` is not called for it.
  void shutdown();
  [[nodiscard]] bool open() const noexcept;

 private:
  struct socket_state;
  boost::asio::io_context& io_;
  ws_url url_;
  std::chrono::seconds keepalive_;
  transport_callbacks callbacks_;
  std::shared_ptr<socket_state> socket_;
};

}  // namespace otsync::client
