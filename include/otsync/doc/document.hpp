// The per-document actor: one live copy of a document (its text on a rope),
// its subscribers and its submit queue, all touched only on the document's
// strand. Submissions are rebased, applied and committed in batches: while
// one batch is being made durable, new requests queue, and the next batch
// goes to the store as soon as the previous one completes, so a busy
// document costs one store round trip per batch, not per op. Nothing is
// acknowledged or broadcast before the store reports it durable.
//
// Thread safety: public member functions may be called from any thread; they
// post to the document's strand. Handlers and subscriber callbacks run on
// that strand: callers post back to their own executor.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/strand.hpp>

#include "otsync/doc/service.hpp"
#include "otsync/oplog/op_record.hpp"
#include "otsync/oplog/snapshot.hpp"
#include "otsync/ot/rope.hpp"
#include "otsync/protocol/message.hpp"
#include "otsync/store/store.hpp"

namespace otsync::doc {

// The op log's values, as the actor names them.
using oplog::create_record;
using oplog::op_record;
using oplog::snapshot;
using oplog::submission;

class registry;

/// Observations for metrics; every call is on some document's strand.
class document_observer {
 public:
  virtual ~document_observer() = default;
  virtual void on_committed(std::size_t ops, std::chrono::nanoseconds store_latency) = 0;
  virtual void on_submit_done(std::chrono::nanoseconds latency, const protocol::error_info* error) = 0;
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
};

class document : public std::enable_shared_from_this<document> {
 public:
  document(boost::asio::any_io_executor executor, registry& owner, store::doc_key key);
  ~document();
  document(const document&) = delete;
  document& operator=(const document&) = delete;

  [[nodiscard]] const store::doc_key& key() const noexcept { return key_; }

  /// `f`: the snapshot (no version) or the committed ops from `from` on.
  void fetch(std::optional<std::uint64_t> from, read_handler done);
  /// `s`: registers `who` and reads as `fetch`, atomically: every op after
  /// the read reaches `who` through `on_op`.
  void subscribe(std::shared_ptr<subscriber> who, std::optional<std::uint64_t> from, read_handler done);
  /// `u`, or a closed connection. `done` (optional) runs once removed.
  void unsubscribe(const subscriber* who, std::function<void()> done = {});
  /// `op`: the submit pipeline.
  void submit(submission op, submit_handler done);

  /// On the strand: true when nothing is queued, loading or committing and
  /// nobody subscribes; marks the document evicted when `evict` is set.
  bool try_evict(std::chrono::steady_clock::time_point idle_since);
  /// Whether a commit is in flight or requests are queued (approximate).
  [[nodiscard]] bool busy() const noexcept { return busy_flag_.load(std::memory_order_relaxed); }

 private:
  friend class registry;
  struct read_request {
    std::shared_ptr<subscriber> who;  // null for a fetch
    std::optional<std::uint64_t> from;
    read_handler done;
  };
  struct submit_entry {
    submission original;
    submit_handler done;
    std::chrono::steady_clock::time_point received;
    unsigned attempts = 0;
    std::vector<op_record> older_history;  // loaded from the store when the cache is too short
  };
  struct unsubscribe_request {
    const subscriber* who;
    std::function<void()> done;
  };
  /// An op another instance committed (from the op feed).
  struct remote_op_request {
    op_record op;
  };
  /// The feed subscription is (again) in place: catch up from the op log.
  struct resync_request {};
  using request = std::variant<read_request, submit_entry, unsubscribe_request, remote_op_request, resync_request>;

  struct recent_op {
    op_record record;
    shared_frame frame;
  };
  struct in_flight {
    submit_entry entry;
    op_record committed;  // what was sent to the store
    std::vector<shared_frame> missed;
    bool already_submitted = false;
    std::optional<std::error_code> outcome;
    store::commit_request request;
    shared_frame frame;
  };

  // The head before the batch in flight, and how to get back to it: each
  // edit is undone by its inverse (cheap), a create or delete restores the
  // text it replaced; the steps are undone last first.
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

  void enqueue(request r);
  void drain();
  void start_load();
  void serve_read(read_request& r);
  bool prepare_batch();
  void on_batch_committed(std::chrono::steady_clock::time_point started);
  void finish_batch();
  void fail_queue(const protocol::error_info& error);
  void add_subscriber(const std::shared_ptr<subscriber>& who);
  void remove_subscriber(const subscriber* who);
  /// Applies committed ops from elsewhere (in version order) and broadcasts them.
  void apply_remote(std::vector<op_record> ops);
  /// Reads the op log from the head on and applies what is new (a gap, a resync).
  void catch_up(std::optional<std::uint64_t> until);
  void broadcast(const op_record& op, const shared_frame& frame);
  void update_busy_flag();
  /// Reports this document's memory (text, cached ops) to the registry's budget.
  void update_footprint();
  [[nodiscard]] snapshot head_snapshot() const;
  /// Applies `record` to the live head; cuts deletes that run past the end (in `record`).
  /// With `undo`, also records in it how to go back (see committed_state).
  std::optional<protocol::error_info> apply_to_head(op_record& record, committed_state* undo = nullptr);
  /// With a feed, after a failed commit: back to the committed head.
  bool roll_back(committed_state& before);
  void cache_push(recent_op op);
  void cache_clear();
  /// Drops the oldest cached ops beyond `recent_ops` or `recent_ops_bytes`.
  void cache_trim();
  [[nodiscard]] std::uint64_t recent_base() const noexcept { return head_version_ - recent_.size(); }

  boost::asio::strand<boost::asio::any_io_executor> strand_;
  registry& owner_;
  store::doc_key key_;

  enum class state { unloaded, loading, ready } state_ = state::unloaded;
  bool busy_ = false;  // a load, a history read or a batch is in flight
  bool evicted_ = false;
  bool stale_ = false;                        // with a feed but not on it: reload before serving
  std::optional<std::uint64_t> feed_token_;   // while subscribed to the op feed
  std::uint64_t broadcast_version_ = 0;       // subscribers have every op below this
  std::optional<committed_state> pre_batch_;  // with a feed: the head before the batch in flight
  std::atomic<bool> busy_flag_{false};
  std::deque<request> queue_;

  // The live head (tentative while a batch is in flight).
  std::uint64_t head_version_ = 0;
  std::optional<std::string> type_uri_;
  std::optional<create_record> created_;
  ot::rope text_;
  std::uint64_t last_snapshot_version_ = 0;

  std::deque<recent_op> recent_;  // committed ops [head_version_ - size, head_version_)
  std::size_t recent_bytes_ = 0;  // their frames' bytes
  std::size_t footprint_ = 0;     // counted in the registry's resident bytes
  std::vector<std::shared_ptr<subscriber>> subscribers_;
  std::vector<in_flight> batch_;
  std::size_t batch_pending_ = 0;
  std::chrono::steady_clock::time_point last_active_;
};

}  // namespace otsync::doc
