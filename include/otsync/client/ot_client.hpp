// The OT client state machine for one text document: synchronised, one op in
// flight, or one in flight with local edits pending behind it (composed into
// one op). Pure: no sockets; the transport feeds it server messages.
//
// Thread safety: one object needs external synchronisation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "otsync/oplog/op_record.hpp"
#include "otsync/ot/result.hpp"
#include "otsync/ot/rope.hpp"

namespace otsync::client {

/// An edit ready to go on the wire as `{a:"op", v, seq, op}` (with `src` on a resend).
struct outgoing_op {
  std::string src;
  std::uint64_t seq = 0;
  std::uint64_t version = 0;
  ot::op op;
  bool resend = false;
};

/// What `receive` did with a server op.
enum class receive_result : std::uint8_t {
  applied,       ///< a remote op, transformed past local edits and applied
  acknowledged,  ///< our in-flight op came back in the stream: treated as its ack
  duplicate,     ///< older than our version: ignored
  gap,           ///< newer than our version: ops are missing, fetch from `version()`
};

/// Everything a replica needs to resume after the program restarts: the
/// offline queue writes it to disk. `inflight` keeps its `inflight_seq` so a
/// resend after the restart is deduplicated by the server.
struct replica_state {
  std::string src;
  std::uint64_t version = 0;
  std::string text;
  std::optional<ot::op> inflight;
  std::uint64_t inflight_seq = 0;
  std::optional<ot::op> pending;
};

/// A replica of one text-unicode document as ShareDB's client keeps it:
/// local edits apply at once, at most one op is in flight, later edits wait
/// composed into one pending op, and remote ops are transformed past both
/// (`transform(local, remote, left)` and `transform(remote, local, right)`).
/// Handles edits; creates and deletes are the connection layer's business.
///
/// `src` stays the same for the replica's life: the server adopts the id the
/// client sends in its handshake after a reconnect (ShareDB's `hs.id`), which
/// is how a resent op and its echo in the stream are recognised as ours.
/// Any failing call leaves the replica unchanged; after a failed `receive`
/// the caller reloads the document, as ShareDB's client does.
class ot_client {
 public:
  ot_client(std::string src, std::uint64_t version, std::string_view text);
  /// Resumes a saved replica; its in-flight op (if any) is sent again first.
  explicit ot_client(const replica_state& saved);

  /// The state to save; `text` is the local text, edits included.
  [[nodiscard]] replica_state state() const;

  /// Takes the connection's id as the author of later ops. Only while no op is
  /// in flight (its echo is recognised by the old id); returns false otherwise.
  bool adopt_src(std::string src);

  /// A local edit, normalised first (as ShareDB's client does): applied to the
  /// local text and queued for sending.
  std::error_code submit(const ot::op& edit);

  /// The op to send now, if any: the in-flight op again after a disconnect
  /// (same src and seq, so the server dedupes it), else the pending op, which
  /// becomes in flight and takes the sequence number `next_seq++`.
  std::optional<outgoing_op> flush(std::uint64_t& next_seq);

  /// An op from the server's stream (a broadcast, a missing op before an ack,
  /// or an op from a versioned fetch). When it is applied and `applied` is
  /// given, `*applied` is the op as transformed onto the local text.
  ot::result<receive_result> receive(const oplog::op_record& record, ot::op* applied = nullptr);

  /// The ack of the in-flight op: it was committed at `version`.
  std::error_code acknowledge(std::uint64_t version);

  /// The connection dropped: the in-flight op must be sent again.
  void disconnected() noexcept { inflight_sent_ = false; }

  [[nodiscard]] const ot::rope& text() const noexcept { return text_; }
  [[nodiscard]] std::uint64_t version() const noexcept { return version_; }
  [[nodiscard]] const std::string& src() const noexcept { return src_; }
  /// The op in flight and the local edits behind it (composed), as they apply after `version()`
  /// (presence: a remote cursor at `version()` is moved through both onto the local text).
  [[nodiscard]] const std::optional<ot::op>& inflight() const noexcept { return inflight_; }
  [[nodiscard]] const std::optional<ot::op>& pending() const noexcept { return pending_; }
  [[nodiscard]] bool has_inflight() const noexcept { return inflight_.has_value(); }
  [[nodiscard]] bool has_pending() const noexcept { return pending_.has_value(); }
  [[nodiscard]] bool synchronised() const noexcept { return !inflight_ && !pending_; }
  /// The sequence number of the op in flight (0 when none).
  [[nodiscard]] std::uint64_t inflight_seq() const noexcept { return inflight_ ? inflight_seq_ : 0; }

 private:
  std::string src_;
  std::uint64_t version_ = 0;
  ot::rope text_;
  std::optional<ot::op> inflight_;
  std::uint64_t inflight_seq_ = 0;
  bool inflight_sent_ = false;
  std::optional<ot::op> pending_;
};

}  // namespace otsync::client
