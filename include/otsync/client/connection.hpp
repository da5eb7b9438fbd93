// The native client: one WebSocket connection to an otsyncd (or any ShareDB
// server) speaking ShareDB's protocol, with text-unicode documents kept as
// local replicas. Local edits apply at once and are sent one op at a time;
// remote ops are transformed past them. The connection reconnects by itself
// (exponential backoff with jitter), sends the op in flight again with the
// same src and seq so the server commits it once, and can keep unsent edits
// in an offline queue on disk so they survive a restart of the program.
//
// Documents also carry presence: the program's cursor or selection goes to the
// other clients of the document, and theirs come back moved onto the local
// text (`set_selection`, `on_presence`, `remote_presences`).
//
// Thread safety: every member function of `connection` and `document` may be
// called from any thread. Callbacks (`on_change`, `on_presence`, `on_error`, `on_state`) run
// on the connection's own thread, never under its lock: they may call back in.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "otsync/client/events.hpp"
#include "otsync/ot/op.hpp"

namespace otsync::client {

enum class connection_state : std::uint8_t {
  connecting,    ///< opening the socket or waiting for the handshake reply
  connected,     ///< handshake done: documents subscribe and send
  disconnected,  ///< lost; a reconnect is scheduled
  closed,        ///< `close()` was called
};

struct connection_options {
  /// ws://HOST[:PORT]/PATH (e.g. ws://127.0.0.1:8080/ws), or wss://HOST[:PORT]/PATH
  /// for TLS (port 443 by default): the server's certificate must chain to a
  /// trusted CA and name HOST (a DNS name, or an IP address SAN for an IP).
  std::string url;
  std::chrono::milliseconds reconnect_min{100};   ///< first delay after a drop
  std::chrono::milliseconds reconnect_max{5000};  ///< the delay doubles up to this (plus up to 50% jitter)
  /// Pings on an idle socket so a silent server is noticed (0: never).
  std::chrono::seconds keepalive{20};
  /// When set: the offline queue. Each open document's replica (text, version,
  /// op in flight, unsent edits) and the connection's id are kept here, so a
  /// restarted program resumes them and sends what was not acknowledged.
  /// One directory per program instance.
  std::filesystem::path offline_dir;
  bool offline_fsync = true;  ///< fsync every save (false: faster; a power cut may lose the last edits)
  /// Called (on the connection's thread) before every connection attempt; a
  /// non-empty result goes as `Authorization: Bearer <token>` on the upgrade.
  /// Return a fresh token each time: after the server closes a connection
  /// whose token expired (close code 4001), the reconnect asks for one.
  std::function<std::string()> token_provider;
  /// wss:// only: trust the CAs in this PEM file *instead of* the system's
  /// trust store (a private CA; empty: the system store, set_default_verify_paths).
  std::filesystem::path tls_ca_file;
  /// wss:// only: accept any certificate for any name. Encrypts but does not
  /// authenticate the server: for tests against throwaway certificates, never in production.
  bool tls_insecure_skip_verify_for_tests_only = false;
  /// Presence: other clients' presences kept per document at most (more are dropped and counted,
  /// `document::presences_dropped`).
  std::size_t max_remote_presences = 1000;
  /// Presence: a remote value larger than this many bytes of JSON is dropped (otsyncd's default limit).
  std::size_t max_presence_bytes = 4096;
  std::function<void(connection_state)> on_state;
  std::function<void(const client_error&)> on_error;
};

class document;
struct doc_entry;  // the connection's record of one document (internal)

class connection {
 public:
  /// Starts connecting at once. Throws std::invalid_argument for a bad URL or
  /// a `tls_ca_file` that cannot be loaded, and std::runtime_error when the
  /// offline directory cannot be used. A TLS handshake that fails (the
  /// certificate refused, and why) is reported like any failed connection:
  /// through `on_error` (OTSYNC_CLIENT_DISCONNECTED), then a reconnect.
  explicit connection(connection_options options);
  /// Closes (see `close`).
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Opens a document and subscribes to it (now, or once connected). With
  /// `create_with`, a document that does not exist is created with that text.
  /// Opening the same document twice gives the same replica.
  std::shared_ptr<document> open(const std::string& collection, const std::string& id,
                                 std::optional<std::string> create_with = std::nullopt);

  /// Stops reconnecting and closes the socket; waits for the connection's
  /// thread. Unsent edits stay in the offline queue when there is one.
  void close();

  [[nodiscard]] connection_state state() const noexcept;
  /// The connection id the server gave (`src` of our ops); empty before the first handshake.
  [[nodiscard]] std::string id() const;
  /// Completed handshakes after the first.
  [[nodiscard]] std::uint64_t reconnects() const noexcept;
  /// Waits until connected, at most `timeout`.
  bool wait_connected(std::chrono::milliseconds timeout) const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

/// A text-unicode document's local replica. Positions and lengths count
/// Unicode code points, as in ot-text-unicode.
class document {
 public:
  document(std::shared_ptr<connection::impl> owner, doc_entry* entry);

  [[nodiscard]] const std::string& collection() const noexcept { return collection_; }
  [[nodiscard]] const std::string& id() const noexcept { return id_; }

  /// The local text, local edits included.
  [[nodiscard]] std::string text() const;
  /// The server version the local text is based on.
  [[nodiscard]] std::uint64_t version() const;
  /// A snapshot is known (fetched, created, or resumed from the offline queue).
  [[nodiscard]] bool loaded() const;
  /// The document exists (has a type); false while unknown, missing or deleted.
  [[nodiscard]] bool exists() const;
  /// Subscribed, with every local edit acknowledged by the server.
  [[nodiscard]] bool synchronised() const;
  /// Ops of ours the server acknowledged during this run.
  [[nodiscard]] std::uint64_t acknowledged() const;

  /// A local edit (skip / insert / delete in code points): applied at once,
  /// sent when the op before it is acknowledged. Errors leave the text unchanged:
  /// `ot::errc` for an op that does not apply, `no_such_file_or_directory`
  /// when the document does not exist (yet).
  std::error_code submit(const ot::op& edit);
  std::error_code insert(std::uint64_t position, std::string_view text);
  std::error_code erase(std::uint64_t position, std::uint64_t count);

  /// Called for every change the program did not make itself (see `change_kind`).
  void on_change(std::function<void(const change&)> callback);

  // Presence: cursors and selections, in code points, as the ShareDB client's doc
  // presence with otsync's text-unicode `transformPresence` (clients/js). The first of
  // these calls subscribes the document's presence channel (again after every reconnect).

  /// Shows our selection to the other clients of the document (nullopt: none, which
  /// tells them we left). It is kept on the local text as we and others edit (our own
  /// insert at the caret carries it along) and is sent when no edit of ours waits for
  /// its acknowledgement; it is sent again after a reconnect and when the server asks.
  /// `data`, a JSON object, adds its members to the value (`{"name":"Ada","color":"#c33"}`:
  /// the others read them as `remote_presence::data`). Errors change nothing:
  /// `no_such_file_or_directory` when the document does not exist, `result_out_of_range`
  /// for a range past the end of the text, `invalid_argument` when `data` is not a JSON
  /// object, `message_size` when the value is larger than `max_presence_bytes`.
  std::error_code set_selection(std::optional<ot::selection> range, std::string_view data = {});
  /// Our selection as it is now (moved by edits since `set_selection`).
  [[nodiscard]] std::optional<ot::selection> selection() const;
  /// Our presence id on this document: random, the same across reconnects.
  [[nodiscard]] std::string presence_id() const;
  /// Called when another client's presence appears, changes or leaves (see `presence_kind`).
  void on_presence(std::function<void(const presence_change&)> callback);
  /// Every remote presence now, moved onto the local text (read it after `on_change` to redraw).
  [[nodiscard]] std::vector<remote_presence> remote_presences() const;
  /// Remote presences dropped: over `max_remote_presences` or `max_presence_bytes`, or too old to place.
  [[nodiscard]] std::uint64_t presences_dropped() const;

  bool wait_loaded(std::chrono::milliseconds timeout) const;
  bool wait_synchronised(std::chrono::milliseconds timeout) const;

 private:
  std::shared_ptr<connection::impl> owner_;
  doc_entry* entry_;  ///< lives as long as the connection (kept alive by `owner_`)
  std::string collection_;
  std::string id_;
};

}  // namespace otsync::client
