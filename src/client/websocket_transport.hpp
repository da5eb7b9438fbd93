// One WebSocket client socket at a time for the connection: connect (resolve,
// TCP, TLS for wss://, upgrade), read text frames, write queued frames in
// order, close. The only translation unit of the client library that
// includes Beast.
//
// Thread safety: none; every call and callback runs on the io_context's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
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

/// How a wss:// URL's server is checked (ignored for ws://).
struct transport_tls {
  std::filesystem::path ca_file;  ///< empty: the system's trust store
  bool skip_verify = false;       ///< no certificate or host name check (tests only)
};

class websocket_transport {
 public:
  /// Throws std::invalid_argument when a wss:// URL's CA file cannot be loaded.
  websocket_transport(boost::asio::io_context& io, ws_url url, std::chrono::seconds keepalive,
                      transport_callbacks callbacks, const transport_tls& settings = {});
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
  struct socket_state;  ///< what send and shutdown need, whatever the stream
  template <class Ws>
  struct stream_state;  ///< one socket: a plain or a TLS WebSocket stream
  struct tls_state;     ///< the TLS context of a wss:// URL, shared by its sockets

  template <class Ws>
  void start(std::shared_ptr<stream_state<Ws>> state);
  template <class Ws>
  void upgrade(std::shared_ptr<stream_state<Ws>> state);
  void lose(socket_state& state, const std::string& why);

  boost::asio::io_context& io_;
  ws_url url_;
  std::string where_;  ///< HOST:PORT, for the Host header and messages
  std::chrono::seconds keepalive_;
  transport_callbacks callbacks_;
  std::unique_ptr<tls_state> tls_;
  std::shared_ptr<socket_state> socket_;
};

}  // namespace otsync::client
