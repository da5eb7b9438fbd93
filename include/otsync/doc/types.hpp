// The document layer's values: what reads and submits answer, the options
// every document shares, and the interfaces subscribers and observers
// implement. No Asio: the submit pipeline and the service seam use them too.
//
// Thread safety: plain value types and interfaces.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "otsync/oplog/op_record.hpp"
#include "otsync/oplog/snapshot.hpp"
#include "otsync/protocol/message.hpp"

namespace otsync::doc {

// The op log's values, as the document layer names them.
using oplog::create_record;
using oplog::op_record;
using oplog::snapshot;
using oplog::submission;

/// Encoded messages are built once and shared by every connection that sends them.
using shared_frame = std::shared_ptr<const std::string>;

/// A committed op as broadcast: its encoded frame and its author, made once and shared by every
/// subscriber (a delivery copies a pointer, not the author's id).
struct op_broadcast {
  shared_frame frame;
  std::string src;
  std::uint64_t version = 0;  ///< the op's: a subscriber that got it is at version + 1
};
using shared_broadcast = std::shared_ptr<const op_broadcast>;

/// A connection's interest in a document's ops.
class subscriber {
 public:
  virtual ~subscriber() = default;
  /// A committed op, in version order. `op->src` is its author (a connection skips
  /// its own ops: it gets the ack instead).
  virtual void on_op(const shared_broadcast& op) = 0;
};

/// Observations for metrics; every call is on some document's strand.
class document_observer {
 public:
  virtual ~document_observer() = default;
  virtual void on_committed(std::size_t ops, std::chrono::nanoseconds store_latency) = 0;
  virtual void on_submit_done(std::chrono::nanoseconds latency, const protocol::error_info* error) = 0;
  /// A shared store lost `ops` committed ops of collection/id from `from_version` on (a Redis
  /// failover without --redis-min-replicas): `put_back` when this copy committed them again.
  virtual void on_store_lost_ops(const std::string& /*collection*/, const std::string& /*id*/,
                                 std::uint64_t /*from_version*/, std::size_t /*ops*/, bool /*put_back*/) {}
  /// A fetch or subscribe that waited for the store (document_options::max_store_wait) was
  /// answered: `served`, or failed (the wait ran out, or its connection unsubscribed meanwhile).
  virtual void on_read_held(bool /*served*/) {}
};

/// Tunables shared by every document.
struct document_options {
  std::size_t max_batch = 256;              ///< submissions per store batch
  std::size_t recent_ops = 1024;            ///< committed ops kept in memory for rebase and catch-up
  std::size_t recent_ops_bytes = 4u << 20;  ///< ... and their encoded bytes, at most (about half the memory they hold)
  std::uint64_t snapshot_interval = 200;    ///< store a snapshot every this many ops
  std::size_t max_queue = 10000;            ///< queued requests before new ones are refused
  unsigned max_submit_retries = 200;        ///< lost commit races (other instances writing) tolerated per op
  std::uint64_t max_document_bytes = 64ull << 20;  ///< edits growing a document past this are refused
  /// Text and cached ops of all open documents together: past it, idle documents are evicted at
  /// once and loading more is refused (ERR_MEMORY_BUDGET_EXCEEDED) until they fit again.
  std::uint64_t max_open_document_bytes = 2ull << 30;
  /// How long a fetch or subscribe waits for a store that does not answer (a failover, a restart)
  /// before it is answered ERR_DATABASE_UNAVAILABLE; 0: at once. Submits never wait.
  std::chrono::milliseconds max_store_wait{30000};
  /// The `src` an op shows in the frames every subscriber shares (the server
  /// sets an alias: a real id is its owner's secret); empty: the src itself.
  std::function<std::string(std::string_view src)> public_src;
};

/// A fetch/subscribe answer: a snapshot (no version asked) or the ops from the
/// version asked, as op messages.
struct read_result {
  std::optional<protocol::error_info> error;
  std::optional<snapshot> snap;
  std::vector<shared_frame> ops;
};

/// A submit's outcome: an error, or the ops the submitter missed (to send
/// before the ack) and the version the op was committed at.
struct submit_result {
  std::optional<protocol::error_info> error;
  std::vector<shared_frame> missed;
  std::string src;
  std::uint64_t seq = 0;
  std::uint64_t version = 0;
};

/// A presence moved to the document's head: `version` is the head; `cleared`
/// when a create or delete since removed it (the value becomes null).
struct presence_result {
  std::optional<protocol::error_info> error;
  std::uint64_t version = 0;
  std::optional<ot::selection> range;  ///< a text-unicode presence's range (protocol::presence_selection)
  bool cleared = false;
  bool moved = false;  ///< some op moved the range (even if a later one moved it back)
};

using read_handler = std::function<void(read_result)>;
using submit_handler = std::function<void(submit_result)>;
using presence_handler = std::function<void(presence_result)>;

}  // namespace otsync::doc
