// One hiredis async connection driven by an Asio io_context: hiredis 0.14's
// event hooks (addRead/delRead/addWrite/delWrite/cleanup) become waits on a
// stream_descriptor. hiredis 0.14 has no timer hook, so connect and command
// timeouts run on Asio timers here; a command that times out fails, and the
// connection is dropped (its reply stream can no longer be trusted).
//
// Thread safety: none; everything runs on the io_context's one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

struct redisAsyncContext;
struct redisReply;

namespace otsync::redis {

class connection {
 public:
  /// `reply` is null when the command got no reply (not connected, timeout, disconnect).
  using reply_handler = std::function<void(const redisReply* reply)>;

  connection(boost::asio::io_context& io, std::string host, std::uint16_t port,
             std::chrono::milliseconds connect_timeout, std::chrono::milliseconds command_timeout);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Connects; `done(true)` once connected, `done(false)` on failure or timeout.
  void connect(std::function<void(bool)> done);
  /// Where the next `connect` goes (Sentinel: the master moves).
  void set_address(std::string host, std::uint16_t port) {
    host_ = std::move(host);
    port_ = port;
  }
  [[nodiscard]] const std::string& host() const noexcept { return host_; }
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  /// Called once when an established connection is lost (not after `disconnect`).
  void on_lost(std::function<void()> fn) { on_lost_ = std::move(fn); }
  [[nodiscard]] bool connected() const noexcept { return connected_; }
  /// Sends one command; `done` runs exactly once.
  void command(const std::vector<std::string>& argv, reply_handler done);
  /// Commands sent and not yet answered.
  [[nodiscard]] std::size_t pending() const noexcept { return pending_; }
  /// Closes the connection; pending commands fail.
  void disconnect();
  [[nodiscard]] std::uint64_t timeouts() const noexcept { return timeouts_; }
  /// Also counts timeouts in `total` (which outlives this connection): an owner with many connections.
  void count_timeouts_in(std::atomic<std::uint64_t>* total) noexcept { timeouts_total_ = total; }

  /// Subscribe mode (a connection used only for pub/sub): SUBSCRIBE and
  /// UNSUBSCRIBE, with every confirmation and message going to the handlers
  /// below. No timeouts: a subscription waits for messages indefinitely.
  void subscribe(const std::string& channel);
  void unsubscribe(const std::string& channel);
  void on_message(std::function<void(std::string_view channel, std::string_view payload)> fn) {
    on_message_ = std::move(fn);
  }
  void on_subscribed(std::function<void(std::string_view channel)> fn) { on_subscribed_ = std::move(fn); }

 private:
  struct adapter;
  struct pending_command;
  struct name_lookup;
  static void on_connect(const redisAsyncContext* ctx, int status);
  static void on_disconnect(const redisAsyncContext* ctx, int status);
  static void on_reply(redisAsyncContext* ctx, void* reply, void* privdata);
  static void on_subscription_reply(redisAsyncContext* ctx, void* reply, void* privdata);
  void connection_gone();
  void lookup(bool ipv6, std::uint64_t attempt);
  void start_connect(const std::string& address);
  void fail_connect();

  boost::asio::io_context& io_;
  std::string host_;
  std::uint16_t port_;
  std::chrono::milliseconds connect_timeout_;
  std::chrono::milliseconds command_timeout_;
  redisAsyncContext* ctx_ = nullptr;
  bool connected_ = false;
  bool closing_ = false;
  std::size_t pending_ = 0;
  std::atomic<std::uint64_t> timeouts_{0};  // read from other threads (stats)
  std::atomic<std::uint64_t>* timeouts_total_ = nullptr;
  std::function<void(bool)> connect_done_;
  std::uint64_t connect_attempt_ = 0;  // a late lookup or timer of an earlier attempt does nothing
  std::unique_ptr<name_lookup> lookup_;
  std::function<void()> on_lost_;
  std::function<void(std::string_view, std::string_view)> on_message_;
  std::function<void(std::string_view)> on_subscribed_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace otsync::redis
