// The document actor's decisions, without Asio or a store: the live head (the
// text on a rope, its version, type and creator), the cache of recent ops
// and their encoded frames, and the submit pipeline's state machine. The
// actor feeds it events (a load's result, the submissions at the front of its
// queue, the store's commit outcomes, ops committed elsewhere) and carries
// out what it answers: which history to read, which commits to send, which
// acks, errors and broadcasts to hand out, what to retry, and whether to
// catch up (resync) or reload after a lost race.
//
// One batch at a time: begin_batch, offer (once per queued submission, in
// queue order) until it stops taking them, seal (the commits to send), then
// complete with the store's outcomes. Nothing is acknowledged or broadcast
// before `complete` says the store made it durable.
//
// Thread safety: none; the actor uses it on its strand only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <system_error>
#include <unordered_map>
#include <variant>
#include <vector>

#include "otsync/doc/types.hpp"
#include "otsync/ot/result.hpp"
#include "otsync/ot/rope.hpp"
#include "otsync/protocol/message.hpp"
#include "otsync/store/store.hpp"

namespace otsync::doc {

/// A submission waiting in a document's queue, with its reply handler.
struct submit_entry {
  submission original;
  submit_handler done;
  std::chrono::steady_clock::time_point received;
  unsigned attempts = 0;                 ///< lost commit races so far
  std::vector<op_record> older_history;  ///< read from the store when the cache is too short
  bool history_loaded = false;           ///< older_history was read (it is not asked for twice)
  bool caught_up = false;                ///< the head was caught up for it (it is not asked for twice)
};

/// A committed op and its op message, encoded once for every reader.
struct recent_op {
  op_record record;
  shared_frame frame;
};

class submit_pipeline {
 public:
  submit_pipeline(store::doc_key key, const document_options& options);

  // ---- The head and the cache -------------------------------------------

  /// Replays a loaded document (stored snapshot + ops) onto the head and
  /// caches the ops. An error leaves the head unusable: load again.
  std::optional<protocol::error_info> load(store::loaded_document loaded);
  [[nodiscard]] snapshot head_snapshot() const;
  [[nodiscard]] std::uint64_t head_version() const noexcept { return head_version_; }
  [[nodiscard]] bool exists() const noexcept { return type_uri_.has_value(); }
  /// The first cached version; the cache holds [recent_base, head_version).
  [[nodiscard]] std::uint64_t recent_base() const noexcept { return head_version_ - recent_.size(); }
  [[nodiscard]] const std::deque<recent_op>& recent() const noexcept { return recent_; }
  /// The cached frames of the ops from `from` (at least recent_base) to the head.
  [[nodiscard]] std::vector<shared_frame> cached_frames(std::uint64_t from) const;
  /// `op`'s op message, encoded for this document.
  [[nodiscard]] shared_frame encode(const op_record& op) const;
  /// Forgets the cached ops (the head is about to be reloaded).
  void clear_cache();
  /// Drops the oldest cached ops beyond `recent_ops` or `recent_ops_bytes`.
  void trim_cache();
  /// Bytes held: the text, each cached op as a record and as a frame, and the authors' aliases kept.
  [[nodiscard]] std::size_t footprint() const noexcept {
    return text_.size_bytes() + 2 * recent_bytes_ + public_srcs_.size() * public_src_entry_bytes;
  }

  /// A presence `src` sent at `version`, moved through the cached ops to the
  /// head; an error when they are no longer cached (the sender's next update
  /// brings a fresh one), except with no range to move (a removal goes out at
  /// the head however old it is). A version ahead of the head is left as it is.
  [[nodiscard]] presence_result transform_presence(std::uint64_t version, const std::string& src,
                                                   std::optional<ot::selection> range) const;

  // ---- Ops committed by other instances -----------------------------------

  struct remote_outcome {
    std::vector<recent_op> applied;  ///< to broadcast, in order
    bool diverged = false;           ///< the log disagrees with this copy: reload
  };
  /// Applies ops committed elsewhere, in version order, skipping those the head has.
  remote_outcome apply_remote(std::vector<op_record> ops);

  // ---- Ops the store lost ------------------------------------------------------

  /// Ops the store acknowledged and then lost (a Redis failover without --redis-min-replicas
  /// promotes a replica that had not received them), as this copy still has them.
  struct lost_ops {
    std::vector<op_record> ops;  ///< from the store's head on, in order
    /// The op just before them (none at version 0): the store's last op must be this one.
    std::optional<op_record> before;
    /// The load ended on a stored snapshot, so it did not show the store's last op: read it first.
    bool read_before = false;
  };
  /// The committed ops this copy holds from `loaded`'s head up to `until` (exclusive), when they
  /// continue the store's history: the store's last op is the one this copy has at that version.
  /// Empty when that is not so, or cannot be told. Call before `load` replaces the cache.
  [[nodiscard]] lost_ops ops_missing_from(const store::loaded_document& loaded, std::uint64_t until) const;
  /// The first version where `loaded`'s ops and this copy's cached ops differ, if any.
  [[nodiscard]] std::optional<std::uint64_t> first_difference(const store::loaded_document& loaded) const;
  /// Whether `op` is the committed op this copy has cached at its version.
  [[nodiscard]] bool has_committed(const op_record& op) const;
  /// The same op as committed: author, seq, version, time and body.
  [[nodiscard]] static bool same_committed_op(const op_record& a, const op_record& b);
  /// After `load`: applies the lost ops to the head again (cached, as committed) and returns the
  /// commits that put them back in the store, in order; empty, with the head unusable (load
  /// again), if they do not apply.
  std::vector<store::commit_request> restore(std::vector<op_record> ops);

  // ---- Submit batches ------------------------------------------------------

  /// `shared`: other instances write too (a feed): a lost race is undone and
  /// retried, a lost reply retried, and a batch commits all or nothing (one op
  /// at a time when the store cannot).
  void begin_batch(bool shared, bool atomic_batches);

  enum class offer_kind {
    answered,        ///< decided without a commit: answer `error` to the entry, drop it
    batched,         ///< taken into the batch (moved from): drop it from the queue
    full,            ///< the batch takes no more: leave it queued, seal
    needs_history,   ///< read ops [history_from, history_until) into it (accept_history), offer again
    needs_catch_up,  ///< names a version past the head: apply the log's ops up to history_until, offer again
  };
  struct offer_result {
    offer_kind kind = offer_kind::batched;
    std::optional<protocol::error_info> error;
    std::uint64_t history_from = 0;
    std::uint64_t history_until = 0;
  };
  /// Considers the submission at the queue's front: rebases it onto the head
  /// and applies it there (tentatively, until the commit completes).
  offer_result offer(submit_entry& entry);
  /// The history `offer` asked for, read from the store: kept in `entry`, or
  /// the error to answer it with.
  std::optional<protocol::error_info> accept_history(submit_entry& entry,
                                                     ot::result<std::vector<op_record>> history) const;

  struct commit_plan {
    bool empty = true;  ///< nothing was batched: nothing to complete
    std::vector<store::commit_request> requests;
    bool all_or_nothing = false;  ///< one commit_all for every request (one outcome)
  };
  /// Ends the batch: the commits to send, in order. With no requests but a
  /// batch (resends only), call `complete({})` at once.
  commit_plan seal();

  struct answer {
    submit_entry entry;
    submit_result result;
    std::optional<recent_op> broadcast;  ///< to every subscriber, after the ack
  };
  enum class next_step {
    carry_on,
    resync,  ///< a race was lost and undone: read what the other writer committed, then retry
    reload,  ///< the head holds ops that were not committed: reload it from the store
  };
  struct completion {
    std::vector<answer> answers;        ///< in submission order
    std::vector<submit_entry> retries;  ///< back to the queue's front, in this order
    next_step next = next_step::carry_on;
    std::size_t committed = 0;  ///< ops the store made durable
  };
  /// The store's outcomes: one per request, or one for an all-or-nothing batch.
  completion complete(const std::vector<std::error_code>& outcomes);

 private:
  // How to get back to the head before the batch in flight: each edit is
  // undone by its inverse (cheap), a create or delete restores the text it
  // replaced; the steps are undone last first.
  using undo_step = std::variant<ot::op, ot::rope>;
  struct committed_state {
    std::uint64_t version;
    std::optional<std::string> type_uri;
    std::optional<create_record> created;
    std::vector<undo_step> undo;
    bool undo_complete = true;  // false when an inverse could not be made: reload instead
    std::size_t recent_size;
    std::uint64_t last_snapshot_version;
  };
  struct in_flight {
    submit_entry entry;
    op_record committed;  // what was sent to the store (src, seq, version for a resend)
    std::vector<shared_frame> missed;
    bool already_submitted = false;
    shared_frame frame;
    store::commit_request request;  // the head after the op, as the store records it
  };

  /// Applies `record` to the head; cuts deletes that run past the end (in
  /// `record`). With `undo`, also records how to go back.
  std::optional<protocol::error_info> apply_to_head(op_record& record, committed_state* undo = nullptr);
  bool roll_back(committed_state& before);
  void cache_push(recent_op op);
  /// options_.public_src(src), kept for the authors seen lately: it is a keyed hash, an HMAC per op
  /// otherwise.
  const std::string& public_src(const std::string& src) const;

  /// Authors whose alias is kept; past that the list starts again (a document with more authors
  /// typing at once computes some twice).
  static constexpr std::size_t max_public_srcs = 256;
  /// How far ahead of the clock the last op's time may be and still be the floor of the next op's.
  static constexpr std::int64_t max_timestamp_lead_ms = 5 * 60 * 1000;
  static constexpr std::size_t public_src_entry_bytes = 200;  // the two strings, the node and its bucket

  store::doc_key key_;
  const document_options& options_;

  std::uint64_t head_version_ = 0;
  std::optional<std::string> type_uri_;
  std::optional<create_record> created_;
  ot::rope text_;
  std::uint64_t last_snapshot_version_ = 0;
  std::int64_t last_timestamp_ms_ = 0;  // the latest op timestamp applied: new ops never go before it
  std::deque<recent_op> recent_;
  std::size_t recent_bytes_ = 0;
  mutable std::unordered_map<std::string, std::string> public_srcs_;  // src -> options_.public_src(src)

  bool shared_ = false;
  bool all_or_nothing_ = false;
  std::uint64_t batch_base_ = 0;  // the head when the batch began: its commits take the versions from here
  std::size_t max_batch_ = 0;
  std::optional<committed_state> pre_batch_;  // shared: the head before the batch in flight
  std::vector<in_flight> batch_;
};

}  // namespace otsync::doc
