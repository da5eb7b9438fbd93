// One WebSocket connection speaking ShareDB's protocol as the sharedb npm
// client does: handshake, subscribe (or fetch) one document, and for writers
// edits on the replica. The protocol is the client library's
// (`client::client_core`, writing its frames in the sharedb npm client's
// style, with `client::ot_client` as the replica); this file keeps the
// connection (Beast), the pacing of the edits and the measurements.
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

#include "client/client_core.hpp"
#include "otsync/client/ot_client.hpp"
#include "run_state.hpp"

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}  // namespace ssl
}  // namespace boost::asio

namespace otsync::load {

enum class role : std::uint8_t { writer, reader, idle, checker };

/// How wss:// servers are checked.
struct tls_options {
  std::string ca_file;       ///< trust these CAs instead of the system's store
  bool skip_verify = false;  ///< no certificate or host name check (tests only)
};

/// A server URL, resolved once: `ws://HOST:PORT/PATH` or `wss://HOST:PORT/PATH`.
struct target {
  std::string url;
  std::string host;  ///< for the Host header
  std::string name;  ///< `host` without IPv6 brackets: SNI and the name the certificate must carry
  std::string port;
  std::string path;
  std::string address;  ///< resolved IP
  std::uint16_t port_number = 0;
  /// wss:// only: one TLS context for every connection to this server.
  std::shared_ptr<boost::asio::ssl::context> tls;
};

/// Parses and resolves `url` (and for wss:// loads the trusted CAs); throws
/// std::runtime_error with a clear message.
target resolve_target(const std::string& url, const tls_options& tls = {});

struct session_config {
  role kind = role::reader;
  std::uint32_t index = 0;  ///< this connection's number in the run (the writer key for delivery times)
  const target* server = nullptr;
  std::string collection;
  std::string doc_id;
  bool creator = false;         ///< creates the document when the subscribe finds none
  std::uint32_t receivers = 0;  ///< other connections of this process subscribed to the document
  double rate = 0;              ///< ops/s; 0 = closed loop
  double rate_jitter = 0;       ///< each interval is 1/rate times a factor in [1 - this, 1 + this]
  std::uint32_t max_doc_chars = 2000;
  std::uint64_t seed = 1;
};

enum class session_status : int { idle, connecting, ready, failed, disconnected, closed };

/// What the checker fetched: the server's snapshot of the document.
struct snapshot {
  std::uint64_t v = 0;
  bool has_type = false;
  std::string data;
};

class session final : private client::core_observer {
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
  [[nodiscard]] const std::string& src() const noexcept { return core_.id(); }
  /// What readers see as this connection's src: otsyncd's alias, ShareDB's id.
  [[nodiscard]] const std::string& shown_src() const noexcept {
    return core_.alias().empty() ? core_.id() : core_.alias();
  }

  /// After the thread stopped: the replica (null when the document has no type here).
  [[nodiscard]] const client::ot_client* replica() const noexcept { return doc_.replica.get(); }
  /// After the thread stopped: the checker's fetched snapshot.
  [[nodiscard]] const snapshot& checked() const noexcept { return checked_; }

 private:
  struct io;
  /// After TCP (and TLS): the WebSocket upgrade, then the read loop.
  void upgrade();
  void on_frame(std::string_view text);
  /// After the core handled something: send its frames, count its errors, follow its state.
  void after_core();
  void edit();
  void mark_ready();
  void fail(std::string why);
  void publish() noexcept;
  void count_error(std::string_view code);
  void send(std::string&& text);
  void schedule_tick();

  // client::core_observer
  void op_sent(const client::doc_entry& doc, const client::outgoing_op& op) override;
  void acknowledged(const client::doc_entry& doc, std::uint64_t seq) override;
  void remote_applied(const client::doc_entry& doc, std::string_view src, std::uint64_t seq) override;

  session_config config_;
  run_state& run_;
  thread_stats& stats_;
  std::function<void()> on_connected_;
  std::unique_ptr<io> io_;

  std::atomic<session_status> status_{session_status::idle};
  std::atomic<bool> settled_{false};
  std::atomic<std::uint64_t> version_{0};
  std::string failure_;

  client::client_events events_;
  client::client_core core_;
  client::doc_entry& doc_;
  client::client_core::outbox outbox_;
  snapshot checked_;
  std::int64_t sent_ns_ = 0;
  bool writing_ = false;
  bool closing_ = false;
  bool ready_reported_ = false;
  std::uint64_t rng_;
};

}  // namespace otsync::load
