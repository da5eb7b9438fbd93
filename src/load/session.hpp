// One WebSocket connection speaking ShareDB's protocol as the sharedb npm
// client does: handshake, subscribe (or fetch) one document, and for writers
// a replica (`client::ot_client`) that generates valid edits, transforms
// remote ops past local ones and keeps one op in flight.
//
// Thread safety: every member function except the status getters runs on the
// connection's io_context thread (post to it). The getters read atomics; the
// replica and the checked snapshot may be read once the thread has stopped.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "frame.hpp"
#include "otsync/client/ot_client.hpp"
#include "run_state.hpp"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace otsync::load {

enum class role : std::uint8_t { writer, reader, idle, checker };

/// A server URL, resolved once: `ws://HOST:PORT/PATH`.
struct target {
  std::string url;
  std::string host;  ///< for the Host header
  std::string port;
  std::string path;
  std::string address;  ///< resolved IP
  std::uint16_t port_number = 0;
};

/// Parses and resolves `url`; throws std::runtime_error with a clear message.
target resolve_target(const std::string& url);

struct session_config {
  role kind = role::reader;
  std::uint32_t index = 0;  ///< this connection's number in the run (the writer key for delivery times)
  const target* server = nullptr;
  std::string collection;
  std::string doc_id;
  bool creator = false;         ///< creates the document when the subscribe finds none
  std::uint32_t receivers = 0;  ///< other connections of this process subscribed to the document
  double rate = 0;              ///< ops/s; 0 = closed loop
  std::uint32_t max_doc_chars = 2000;
  std::uint64_t seed = 1;
};

enum class session_status : int { idle, connecting, ready, failed, disconnected, closed };

class session {
 public:
  /// `on_connected` runs once on the connection's thread when it is ready or failed.
  session(boost::asio::io_context& io, session_config config, run_state& run, thread_stats& stats,
          std::function<void()> on_connected);
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  void connect();
  /// Writers start editing (closed loop or paced).
  void start_writing();
  /// No new edits; ops already composed are still sent.
  void stop_writing();
  /// Closes the socket; nothing counts as a disconnect afterwards.
  void close();

  [[nodiscard]] session_status status() const noexcept { return status_.load(std::memory_order_acquire); }
  /// Nothing in flight, pending, or being fetched.
  [[nodiscard]] bool settled() const noexcept { return settled_.load(std::memory_order_acquire); }
  [[nodiscard]] std::uint64_t version() const noexcept { return version_.load(std::memory_order_acquire); }
  [[nodiscard]] const session_config& config() const noexcept { return config_; }
  /// Why it failed (set before the status turns failed).
  [[nodiscard]] const std::string& failure() const noexcept { return failure_; }
  /// The connection id the server gave (after the handshake).
  [[nodiscard]] const std::string& src() const noexcept { return src_; }

  /// After the thread stopped: the replica (null when the document has no type here).
  [[nodiscard]] const client::ot_client* replica() const noexcept { return replica_.get(); }
  /// After the thread stopped: the checker's fetched snapshot.
  [[nodiscard]] const snapshot& checked() const noexcept { return checked_; }

 private:
  struct io;
  void on_frame(std::string_view text);
  void on_op(frame& f);
  void on_op_error(const frame& f);
  void on_doc_reply(frame& f);
  void on_ack();
  void adopt_snapshot(const snapshot& snap);
  void edit_and_flush();
  void flush();
  void fetch_from_version();
  void reload();
  void mark_ready();
  void fail(std::string why);
  void publish() noexcept;
  void count_error(std::string_view code);
  void send(std::string_view text);
  void schedule_tick();

  session_config config_;
  run_state& run_;
  thread_stats& stats_;
  std::function<void()> on_connected_;
  std::unique_ptr<io> io_;

  std::atomic<session_status> status_{session_status::idle};
  std::atomic<bool> settled_{false};
  std::atomic<std::uint64_t> version_{0};
  std::string failure_;

  std::string src_;
  frame frame_;
  std::string out_;
  std::unique_ptr<client::ot_client> replica_;
  snapshot checked_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t create_seq_ = 0;  ///< seq of our create while it awaits its reply
  std::uint64_t inflight_seq_ = 0;
  std::int64_t sent_ns_ = 0;
  bool subscribed_ = false;
  bool fetching_ = false;   ///< a versioned fetch (a gap) is under way
  bool reloading_ = false;  ///< a snapshot fetch (after an error) is under way
  bool writing_ = false;
  bool closing_ = false;
  bool ready_reported_ = false;
  std::uint64_t rng_;
};

}  // namespace otsync::load
