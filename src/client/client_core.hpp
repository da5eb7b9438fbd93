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
#include <deque>
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

/// A presence frame from the server: a `p` (another client's presence, or the
/// echo that acknowledges ours), the reply to `ps`/`pu`, or a `pr` (send yours
/// again). Read by `parse_presence_frame`.
struct presence_frame {
  enum class kind : std::uint8_t { update, subscribed, unsubscribed, resend };
  kind action = kind::update;
  std::string channel;  ///< `ch`; empty for the reply to our own `pr`
  std::string id;       ///< `p`: the presence id
  std::string src;      ///< `p`: its owner as others see it
  std::uint64_t pv = 0;
  std::optional<std::uint64_t> version;  ///< `v`: the document version the value is at
  bool present = false;                  ///< `p` is not null (null: the presence left)
  std::optional<ot::selection> range;    ///< `p` as `{index, length}` (nullopt: another kind of value)
  std::string data;                      ///< `p` but `index`/`length` as JSON (`remote_presence::data`)
  std::size_t value_bytes = 0;           ///< `p` as JSON text
  bool has_error = false;
  std::string error_code;
  std::string error_message;
};

/// The presence frame in `text`; nullopt for any other frame, and for a
/// presence frame that is malformed (not JSON, no channel, no string id, a
/// `pv`/`v`/`seq` that is not a non-negative integer). Never throws.
std::optional<presence_frame> parse_presence_frame(std::string_view text);

/// `operation` without its text (skips, and inserts and deletes by length): all that moving a
/// cursor reads, so ops kept for presence cost no more than their components.
ot::op presence_shape(const ot::op& operation);

/// A document's presence, once the program uses it (`set_selection`, `on_presence`).
struct doc_presence {
  /// Another client's presence; `range` is at the replica's version (server coordinates).
  struct remote {
    std::string src;
    std::uint64_t pv = 0;
    std::optional<ot::selection> range;
    std::string data;
  };
  /// One sent at a version we have not reached yet (the latest per id).
  struct waiting {
    std::string src;
    std::uint64_t pv = 0;
    std::uint64_t version = 0;
    ot::selection range;
    std::string data;
  };
  /// A committed op, in the server's form, to catch up presences sent before it (its shape only).
  struct past_op {
    std::uint64_t version = 0;
    ot::op op;
    std::string src;  ///< its author as shown (empty: ours)
  };

  std::string local_id;                               ///< random, kept across reconnects
  std::optional<ot::selection> local;                 ///< ours, on the local text
  std::string local_data;                             ///< our value's other members: a JSON object (empty: none)
  bool local_unsent = false;                          ///< `local` (or its removal) waits to go out
  bool local_shown = false;                           ///< a non-null value of ours went out
  std::uint64_t pv = 0;                               ///< the next presence version of ours
  bool subscribed = false;                            ///< `ps` acknowledged on this connection
  std::uint64_t asked_resend_at = ~std::uint64_t{0};  ///< the version we last sent `pr` at
  std::map<std::string, remote, std::less<>> remotes;
  std::map<std::string, waiting, std::less<>> waits;
  std::deque<past_op> history;
  std::size_t history_components = 0;  ///< components in `history`
  void forget_history() noexcept {
    history.clear();
    history_components = 0;
  }
  std::uint64_t dropped = 0;  ///< presences refused by the bounds (count, size) or too old to place
  std::function<void(const presence_change&)> on_presence;
};

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
  std::unique_ptr<doc_presence> presence;  ///< null until the program uses presence
};

/// Work for the caller once its lock is released.
struct client_events {
  std::vector<std::pair<std::function<void(const change&)>, change>> changes;
  std::vector<client_error> errors;
  std::vector<std::pair<std::function<void(const presence_change&)>, presence_change>> presences;
  [[nodiscard]] bool empty() const noexcept { return changes.empty() && errors.empty() && presences.empty(); }
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
  /// Presence: other clients' presences kept per document (shown and waiting), at most.
  std::size_t max_remote_presences = 1000;
  /// Presence: a remote value larger than this (as JSON) is dropped.
  std::size_t max_presence_bytes = 4096;
  /// Presence: committed ops kept to move a presence sent at an older version.
  std::size_t presence_history = 128;
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
  /// Remote presences are gone (`left`, in `events`) until the server sends them again.
  void on_disconnected(client_events& events);
  void on_disconnected() {
    client_events ignored;
    on_disconnected(ignored);
  }

  /// Opens (once) and, when connected, subscribes. A replica saved by an
  /// earlier run is resumed: its text is readable and editable at once.
  doc_entry& open(const std::string& collection, const std::string& id, std::optional<std::string> create_with,
                  outbox& out, client_events& events);
  /// A local edit: applied to the text at once, sent when the document's turn comes.
  std::error_code submit(doc_entry& doc, const ot::op& edit, outbox& out, client_events& events);

  /// Presence: subscribes the document's presence channel (now, or once
  /// connected; again after every reconnect). Idempotent.
  doc_presence& enable_presence(doc_entry& doc, outbox& out);
  /// Presence: our selection on the local text (nullopt: none). Sent when the
  /// document has no unacknowledged edits (the server reads it at our version).
  /// `data`: a JSON object whose members go with the range (empty: none).
  std::error_code set_selection(doc_entry& doc, std::optional<ot::selection> range, std::string_view data, outbox& out,
                                client_events& events);
  /// Presence: every remote presence, on the local text, by id.
  [[nodiscard]] std::vector<remote_presence> remote_presences(const doc_entry& doc) const;

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
  void flush_ops(doc_entry& doc, outbox& out, client_events& events);
  void fetch(doc_entry& doc, bool from_version, outbox& out);
  void adopt_snapshot(doc_entry& doc, std::uint64_t version, const std::optional<std::string>& text, outbox& out,
                      client_events& events);
  std::uint64_t take_seq(client_events& events);
  void persist(doc_entry& doc, client_events& events);
  void notify(doc_entry& doc, change c, client_events& events);
  static void report(const doc_entry* doc, std::string code, std::string message, client_events& events);

  // Presence (client_presence.cpp).
  void on_presence_frame(std::string_view text, outbox& out, client_events& events);
  void on_presence_update(doc_entry& doc, presence_frame& frame, outbox& out, client_events& events);
  void send_presence_subscribe(doc_entry& doc, outbox& out);
  void send_local_presence(doc_entry& doc, outbox& out);
  void ask_presence_resend(doc_entry& doc, outbox& out);
  /// A committed op moved the replica from `version` to `version + 1`: remote presences follow it.
  void presence_committed(doc_entry& doc, std::uint64_t version, ot::op shape, const std::string& src, outbox& out,
                          client_events& events);
  /// Places waiting presences the replica has reached.
  void promote_waiting(doc_entry& doc, outbox& out, client_events& events);
  /// Shows `range` (at `version`) for presence `id`; false when it is too old to place.
  bool place_remote(doc_entry& doc, const std::string& id, const std::string& src, std::uint64_t pv,
                    std::uint64_t version, std::optional<ot::selection> range, std::string data, outbox& out,
                    client_events& events);
  /// The text was replaced (load, reload, create, delete) or the connection dropped: remote
  /// presences are gone (`left`); `clear_local` forgets ours and those waiting too. A new
  /// text also forgets the kept ops (`forget_history`).
  void clear_presences(doc_entry& doc, bool clear_local, client_events& events);
  [[nodiscard]] remote_presence presence_view(const doc_entry& doc, const std::string& id,
                                              const doc_presence::remote& r) const;
  void notify_presence(doc_entry& doc, presence_kind kind, remote_presence p, client_events& events);
  std::uint64_t presence_seq_ = 1;

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
