// One WebSocket connection: reads frames into its agent, writes the agent's
// frames one at a time from a bounded queue. A client that stops reading
// while the queue is full is disconnected with close code 1013 (try again
// later): it reconnects and catches up from its version, instead of making
// the server buffer without bound.
//
// Thread safety: all state lives on the stream's strand; `send`, `close`,
// `post` and `resume_reading` are called on it (`post` from anywhere).
#pragma once

#include <deque>
#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "context.hpp"
#include "otsync/server/agent.hpp"

namespace otsync::server {

class websocket_session : public connection_io, public std::enable_shared_from_this<websocket_session> {
 public:
  websocket_session(boost::beast::tcp_stream&& stream, server_context& context);
  ~websocket_session() override;

  /// Completes the upgrade of `request` and starts reading.
  void run(boost::beast::http::request<boost::beast::http::string_body> request);
  /// Shutdown: close with 1001 (going away) once queued frames are out. Any thread.
  void going_away();

  void send(doc::shared_frame frame) override;
  void send_broadcast(doc::shared_frame frame) override;
  void close(std::uint16_t code, std::string reason) override;
  void post(std::function<void()> fn) override;
  void resume_reading() override;

 private:
  void enqueue(doc::shared_frame frame, bool broadcast);
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void do_write();
  void on_write(boost::beast::error_code ec, std::size_t bytes);
  void do_close();
  void finish();

  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  server_context& context_;
  std::string id_;
  boost::beast::flat_buffer buffer_;
  std::unique_ptr<agent> agent_;
  std::deque<doc::shared_frame> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool reading_ = false;
  bool read_paused_ = false;
  bool closing_ = false;
  bool close_sent_ = false;
  bool finished_ = false;
  std::uint16_t close_code_ = 1000;
  std::string close_reason_;
};

}  // namespace otsync::server
