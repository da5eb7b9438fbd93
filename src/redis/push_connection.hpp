// A pub/sub-only Redis connection on an Asio socket, for sharded pub/sub
// (SSUBSCRIBE), which hiredis 0.14's async API does not know: it matches
// replies to callbacks and drops an `smessage` it has no SUBSCRIBE for. Here
// hiredis only encodes commands and parses replies; every reply (confirmation,
// message, a server-sent `sunsubscribe` when a slot moves, an error) goes to
// one handler, since on a subscribed connection each reply says what it is.
//
// Thread safety: none; everything runs on the io_context's one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

struct redisReply;

namespace otsync::redis {

class push_connection {
 public:
  push_connection(boost::asio::io_context& io, std::string host, std::uint16_t port,
                  std::chrono::milliseconds connect_timeout);
  ~push_connection();
  push_connection(const push_connection&) = delete;
  push_connection& operator=(const push_connection&) = delete;

  /// Connects; `done(true)` once connected, `done(false)` on failure or timeout.
  void connect(std::function<void(bool)> done);
  /// Queues one command (no reply is matched to it: replies go to `on_reply`).
  void send(const std::vector<std::string>& argv);
  /// Every reply, on the io_context's thread.
  void on_reply(std::function<void(const redisReply*)> fn) { on_reply_ = std::move(fn); }
  /// Called once when an established connection is lost (not after `disconnect`).
  void on_lost(std::function<void()> fn) { on_lost_ = std::move(fn); }
  [[nodiscard]] bool connected() const noexcept;
  [[nodiscard]] const std::string& host() const noexcept;
  [[nodiscard]] std::uint16_t port() const noexcept;
  void disconnect();

 private:
  struct state;
  std::shared_ptr<state> state_;  // shared with pending handlers, which outlive a disconnect
  std::function<void(const redisReply*)> on_reply_;
  std::function<void()> on_lost_;
};

}  // namespace otsync::redis
