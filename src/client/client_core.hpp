// The client side of ShareDB's protocol for text-unicode documents, without
// sockets: frames in (`on_frame`), frames out (into an outbox), changes and
// errors out (into a list the caller delivers after releasing its lock).
// Follows the sharedb npm client: handshake with the previous id on
// reconnect, the in-flight op sent again first with the same src and seq,
// then a subscribe from the replica's version; one op in flight per document;
// a gap fetches the missing ops; a rejected op reloads the snapshot.
//
// Thread safety: none; the connection calls it under its lock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "otsync/client/events.hpp"
#include "otsync/client/ot_client.hpp"
#include "otsync/protocol/server_message.hpp"
#include "replica_journal.hpp"

namespace otsync::client {

/// One open document.
struct doc_entry {
  std::string collection;
  std::string id;
  std::optional<std::string> create_with;  ///< create it with this text when it does not exist
  std::unique_ptr<ot_client> replica;      ///< null while unknown, missing or deleted
  bool loaded = false;                     ///< a snapshot (or a saved replica) is known
  bool subscribed = false;
  bool fetch_only = false;  ///< fetch the snapshot once instead of subscribing (set before connecting)
  bool fetching = false;    ///< a versioned fetch (after a gap) is under way
  bool reloading = false;   ///< a snapshot fetch (after a rejected op) is under way
  std::uint64_t create_seq = 0;
  std::uint64_t acks = 0;
  std::function<void(const change&)> on_change;
};

/// Work for the caller once its lock is released.
struct client_events {
  std::vector<std::pair<std::function<void(const change&)>, change>> changes;
  std::vector<client_error> errors;
  [[nodiscard]] bool empty() const noexcept { return changes.empty() && errors.empty(); }
};

/// Hooks for a program that measures the protocol (the load generator).
/// Called synchronously from inside `on_frame` and `submit`: they must not
/// call back into the core.
class core_observer {
 public:
  /// An op frame went into the outbox (`op.resend`: the in-flight op again).
  virtual void op_sent(const doc_entry& doc, const outgoing_op& op) = 0;
  /// Our op with `seq` was acknowledged (by its ack, or its echo in the stream).
  virtual void acknowledged(const doc_entry& doc, std::uint64_t seq) = 0;
  /// Another client's op (`src`, `seq`) was applied to the replica.
  virtual void remote_applied(const doc_entry& doc, std::string_view src, std::uint64_t seq) = 0;

 protected:
  core_observer() = default;
  ~core_observer() = default;
  core_observer(const core_observer&) = default;
  core_observer& operator=(const core_observer&) = default;
};

struct client_core_options {
  /// How the frames are written (the load generator writes them as the sharedb npm client does).
  protocol::frame_style style = protocol::frame_style::otsync;
  core_observer* observer = nullptr;
};

class client_core {
 public:
  using outbox = std::vector<std::string>;

  /// `journal` (may be null) keeps identity and replicas on disk.
  explicit client_core(replica_journal* journal, client_events& startup_errors, client_core_options options = {});

  /// The socket opened: the handshake frame to send.
  std::string on_open();
  void on_frame(std::string_view text, outbox& out, client_events& events);
  /// The socket closed: everything in flight is sent again after the next handshake.
  void on_disconnected();

  /// Opens (once) and, when connected, subscribes. A replica saved by an
  /// earlier run is resumed: its text is readable and editable at once.
  doc_entry& open(const std::string& collection, const std::string& id, std::optional<std::string> create_with,
                  outbox& out, client_events& events);
  /// A local edit: applied to the text at once, sent when the document's turn comes.
  std::error_code submit(doc_entry& doc, const ot::op& edit, outbox& out, client_events& events);

  [[nodiscard]] bool connected() const noexcept { return connected_; }
  [[nodiscard]] const std::string& id() const noexcept { return src_; }
  /// How other clients see this connection's ops (otsyncd's hs `alias`); empty from ShareDB, which shows ids.
  [[nodiscard]] const std::string& alias() const noexcept { return alias_; }

 private:
  doc_entry* find(std::string_view collection, std::string_view id);
  void on_handshake(outbox& out, client_events& events);
  void on_doc_reply(doc_entry& doc, outbox& out, client_events& events);
  void on_op(doc_entry& doc, outbox& out, client_events& events);
  void on_op_error(doc_entry& doc, outbox& out, client_events& events);
  void send_op(doc_entry& doc, const outgoing_op& op, outbox& out);
  void start_document(doc_entry& doc, outbox& out);
  void flush(doc_entry& doc, outbox& out, client_events& events);
  void fetch(doc_entry& doc, bool from_version, outbox& out);
  void adopt_snapshot(doc_entry& doc, std::uint64_t version, const std::optional<std::string>& text, outbox& out,
                      client_events& events);
  std::uint64_t take_seq(client_events& events);
  void persist(doc_entry& doc, client_events& events);
  void notify(doc_entry& doc, change c, client_events& events);
  static void report(const doc_entry* doc, std::string code, std::string message, client_events& events);

  replica_journal* journal_;
  client_core_options options_;
  protocol::server_message message_;  ///< the frame being handled, reused
  std::string src_;
  std::string alias_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t reserved_seq_ = 0;  ///< seqs below it are recorded as used in the journal
  bool connected_ = false;
  /// Orders (collection, id) keys and finds them by string views (no copies per frame).
  struct key_less {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const noexcept {
      return std::pair<std::string_view, std::string_view>(a.first, a.second) <
             std::pair<std::string_view, std::string_view>(b.first, b.second);
    }
  };
  std::map<std::pair<std::string, std::string>, std::unique_ptr<doc_entry>, key_less> docs_;
};

}  // namespace otsync::client
