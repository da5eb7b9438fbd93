// One WebSocket connection after the upgrade: reads frames into its agent
// (ws_frame.hpp decodes them), writes the agent's frames from a bounded queue,
// every frame queued when a write finishes going out in the next write (one
// syscall). A client that stops reading while the queue is full is
// disconnected with close code 1013 (try again later): it reconnects and
// catches up from its version, instead of making the server buffer without
// bound.
//
// An idle connection holds no read buffer: it waits for readability and then
// reads into a per-thread buffer. As Beast's suggested server settings did, a
// connection that sends nothing for half of --ws-idle-timeout-ms gets a ping,
// one silent for all of it is dropped, and so is one whose close handshake
// takes longer than `close_timeout` (`check_timeouts`, from the server's sweep).
//
// Thread safety: all state lives on the socket's executor (its I/O thread); `send`, `close`
// and `resume_reading` are called on it; `post`, `going_away` and
// `check_timeouts` from anywhere.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/basic_waitable_timer.hpp>

#include "authenticate.hpp"
#include "connection_socket.hpp"
#include "context.hpp"
#include "otsync/server/agent.hpp"
#include "otsync/server/ws_frame.hpp"
#include "send_queue.hpp"

namespace otsync::server {

struct tls_link;

class websocket_session : public connection_io, public std::enable_shared_from_this<websocket_session> {
 public:
  /// How long a close handshake may take (Beast's suggested handshake timeout).
  static constexpr std::chrono::seconds close_timeout{30};

  /// `early` holds bytes read with the upgrade request that belong to the WebSocket; the session
  /// holds the connection slot of `address` (server_context::acquire_connection) until it ends.
  websocket_session(connection_socket&& socket, server_context& context, std::string_view early, std::string address,
                    caller who = {auth::access_rules::allow_all(), {}, std::nullopt});
  /// The same over TLS (otsyncd's own listener, --tls-cert).
  websocket_session(std::unique_ptr<tls_link> tls, server_context& context, std::string_view early, std::string address,
                    caller who);
  ~websocket_session() override;

  /// The 101 response is out: start reading frames.
  void run();
  /// Shutdown: close with 1001 (going away) once queued frames are out. Any thread.
  void going_away();
  /// Shutdown past its grace: the connection goes now, close handshake or not (its subscriptions
  /// and presences with it). Any thread.
  void cut_off();
  /// Pings a connection silent for half the idle timeout; drops it after all of it, or after
  /// `close_timeout` of closing. Any thread.
  void check_timeouts(std::chrono::steady_clock::time_point now);

  void send(doc::shared_frame frame) override;
  void send_broadcast(doc::shared_frame frame) override;
  void show_presence(std::shared_ptr<const shown_presence> shown) override;
  void close(std::uint16_t code, std::string reason) override;
  void post(std::function<void()> fn) override;
  void post_broadcast(std::shared_ptr<broadcast_receiver> to, doc::shared_broadcast op) override;
  void post_after(std::chrono::milliseconds delay, std::function<void()> fn) override;
  void resume_reading() override;

 private:
  void enqueue(doc::shared_frame frame, ws::opcode op, bool broadcast);
  /// Replies waiting to be written pass --max-send-queue-bytes: read no more requests until they drain.
  [[nodiscard]] bool replies_backlogged() const noexcept {
    // Each queued frame also costs its buffer's bookkeeping: counted, so that a million tiny
    // replies are not taken for a few megabytes.
    constexpr std::size_t frame_overhead = 128;
    return queued_reply_bytes_ + frame_overhead * queued_reply_frames_ > context_.options.max_send_queue_bytes;
  }
  void queue_close(std::uint16_t code, std::string_view reason);
  void do_read();
  void on_readable(boost::system::error_code ec);
  void on_tls_read(boost::system::error_code ec, std::size_t bytes);
  /// Decodes and handles `bytes`; false once reading stops (paused, closed).
  bool process(std::span<char> bytes);
  void on_peer_close(std::uint16_t code);
  /// Counts the decoder's reassembly buffer against --max-partial-bytes and notes when a message
  /// began (for --message-timeout-ms); false when the connection was failed for it.
  bool account_partial();
  /// Closes with `code` without waiting for the client's close (RFC 6455 7.1.7).
  void fail_connection(std::uint16_t code, std::string_view reason);
  /// Drops the partly received message (its memory at once) and fails the connection.
  void abandon_input(std::uint16_t code, std::string_view reason);
  /// Drops the frames not yet being written.
  void drop_queued();
  /// Brings otsync_send_queue_depth up to date with this connection's queue.
  void report_queue();
  void schedule_write();
  /// --broadcast-coalesce-us: write what is queued at `until` (steady_clock ticks), not now.
  void hold_write(std::int64_t until);
  /// What is held fills a write, or half a slow-consumer limit: write it now.
  [[nodiscard]] bool held_backlog_full() const noexcept;
  /// After a write: holds the broadcasts queued meanwhile if a hold is on and nothing urgent waits.
  bool hold_after_write();
  void do_write();
  void on_write(boost::system::error_code ec);
  void finish();
  /// After the close of a failed connection: shut down sending, discard input until the client's
  /// end of stream (or `linger_time`), then finish.
  void linger();
  static constexpr std::chrono::seconds linger_time{2};
  enum class timeout_action : std::uint8_t { none, ping, drop, message_timeout };
  [[nodiscard]] timeout_action timeout_due(std::chrono::steady_clock::time_point now) const noexcept;
  static std::int64_t now_ticks() noexcept;

  connection_socket socket_;       // plain; with TLS, unopened (its executor is the connection's)
  std::unique_ptr<tls_link> tls_;  // TLS: the stream, its buffers
  server_context& context_;
  std::string id_;
  std::string address_;  // the client's IP address, whose connection slot this session holds
  caller who_;           // what its token grants; expires_at is read from any thread (never changed)
  std::optional<std::chrono::system_clock::time_point> closes_at_;  // when the token stops being accepted
  std::atomic<bool> expiry_noted_{false};
  std::atomic<bool> expiry_forced_{false};
  /// How long requests queued before a token's expiry may still be answered before the close.
  static constexpr std::chrono::seconds expiry_grace{5};
  std::unique_ptr<agent> agent_;
  ws::frame_decoder decoder_;
  std::string held_input_;  // read but not handled: reading is paused, or bytes that came with the upgrade
  frame_queue queue_;
  write_batch_ptr writing_;  // the batch being written, if any
  using hold_timer =
      boost::asio::basic_waitable_timer<std::chrono::steady_clock, boost::asio::wait_traits<std::chrono::steady_clock>,
                                        connection_executor>;
  std::unique_ptr<hold_timer> hold_timer_;  // made on a connection's first held write
  std::int64_t last_broadcast_write_ = 0;   // when the last write with broadcasts began (steady_clock ticks)
  std::size_t queued_frames_ = 0;           // in the queue and in the batch being written
  std::size_t queued_bytes_ = 0;
  std::size_t queued_reply_frames_ = 0;  // of those, replies to the client's own requests
  std::size_t queued_reply_bytes_ = 0;
  std::size_t reported_frames_ = 0;  // this connection's part of otsync_send_queue_depth
  // Read by check_timeouts on other threads (steady_clock ticks; 0: not closing).
  std::atomic<std::int64_t> last_read_{0};
  std::atomic<std::int64_t> closing_since_{0};
  std::atomic<bool> pinged_{false};               // a keep-alive ping went out since the last read
  std::atomic<std::int64_t> message_started_{0};  // when the message being received began (0: none)
  std::size_t accounted_partial_ = 0;             // our share of context_.partial_bytes
  bool reading_ = false;
  bool write_scheduled_ = false;
  bool write_held_ = false;            // broadcasts wait for hold_timer_
  std::uint32_t hold_generation_ = 0;  // which hold the timer's pending wait belongs to
  bool read_paused_ = false;
  bool closing_ = false;           // our close frame is queued: nothing else is sent
  bool close_sent_ = false;        // ... and written
  bool peer_closed_ = false;       // the client's close frame arrived: nothing more is read
  bool drop_after_close_ = false;  // a failed connection: no close handshake, drop once our close is out
  bool finished_ = false;
  bool lingering_ = false;  // linger(): input is discarded until the end of stream
};

}  // namespace otsync::server
