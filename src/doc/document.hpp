// The per-document actor: one live copy of a document (its text on a rope),
// its subscribers and its submit queue, all touched only on the document's
// executor (one I/O thread's context, or a strand: one handler at a time). Submissions are rebased, applied and
// committed in batches: while one batch is being made durable, new requests queue, and the next batch goes to the store
// as soon as the previous one completes, so a busy document costs one store round trip per batch, not per op. Nothing
// is acknowledged or broadcast before the store reports it durable.
//
// Thread safety: public member functions may be called from any thread; they
// post to the document's executor. Handlers and subscriber callbacks run on
// it: callers post back to their own executor.
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

#include "otsync/doc/types.hpp"
#include "otsync/ot/result.hpp"
#include "otsync/protocol/message.hpp"
#include "otsync/store/store.hpp"
#include "submit_pipeline.hpp"

namespace otsync::doc {

class registry;

class document : public std::enable_shared_from_this<document> {
 public:
  document(boost::asio::any_io_executor executor, registry& owner, store::doc_key key);
  ~document();
  document(const document&) = delete;
  document& operator=(const document&) = delete;

  [[nodiscard]] const store::doc_key& key() const noexcept { return key_; }

  /// `f`: the snapshot (no version) or the committed ops from `from` on.
  /// `asked`: when the client asked (document_service::fetch).
  void fetch(std::optional<std::uint64_t> from, read_handler done,
             std::chrono::steady_clock::time_point asked = std::chrono::steady_clock::now());
  /// `s`: registers `who` and reads as `fetch`, atomically: every op after
  /// the read reaches `who` through `on_op`.
  void subscribe(std::shared_ptr<subscriber> who, std::optional<std::uint64_t> from, read_handler done,
                 std::chrono::steady_clock::time_point asked = std::chrono::steady_clock::now());
  /// `u`, or a closed connection. `done` (optional) runs once removed.
  void unsubscribe(const subscriber* who, std::function<void()> done = {});
  /// `op`: the submit pipeline.
  void submit(submission op, submit_handler done);
  /// `p`: a presence moved to the head (submit_pipeline::transform_presence).
  void transform_presence(std::uint64_t version, std::string src, std::optional<ot::selection> range,
                          presence_handler done);

  /// On the executor: true when nothing is queued, loading or committing and
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
    std::chrono::steady_clock::time_point received;
    bool held = false;  // kept while the store did not answer (hold_reads)
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
  struct resync_request {
    /// Read after the store refused a commit: an empty read then means the store's log is shorter
    /// than this copy. A feed's resubscription (a reconnection, maybe a failover) checks the same;
    /// its first subscription does not.
    bool after_refusal = false;
  };
  struct presence_request {
    std::uint64_t version;
    std::string src;
    std::optional<ot::selection> range;
    presence_handler done;
  };
  using request = std::variant<read_request, submit_entry, unsubscribe_request, remote_op_request, resync_request,
                               presence_request>;

  void enqueue(request r);
  void drain();
  void start_load();
  void on_loaded(ot::result<store::loaded_document> loaded);
  void serve_read(read_request& r);
  /// Reads ops older than the cache from the store, then serves the read at the queue's front.
  void serve_old_read(std::uint64_t from);
  /// Batches the submissions at the queue's front and sends their commits;
  /// false while the batch (or a history read) is in flight.
  bool run_batch();
  void load_history(std::uint64_t from, std::uint64_t until);
  void on_batch_committed(std::chrono::steady_clock::time_point started, const std::vector<std::error_code>& outcomes);
  void answer(submit_entry& entry, const protocol::error_info& error);
  void fail_queue(const protocol::error_info& error);
  /// Answers one request with `error` (an unsubscribe is done).
  void fail_request(request& r, const protocol::error_info& error);
  void answer_read(read_request& r, read_result result);
  /// The store did not answer a load: fetches and subscriptions younger than max_store_wait stay
  /// queued for the next load; everything else is answered with `error`.
  void hold_reads(const protocol::error_info& error);
  /// The queue after a store error: reads held when the store is unavailable (`cause`), else all failed.
  void fail_or_hold(std::error_code cause, const protocol::error_info& error);
  /// The wait before the next load after a failed one (backoff; shorter while reads are held).
  [[nodiscard]] std::chrono::milliseconds next_load_retry_delay() const;
  static bool is_held_read(const request& r);
  void add_subscriber(const std::shared_ptr<subscriber>& who);
  void remove_subscriber(const subscriber* who);
  /// Applies committed ops from elsewhere (in version order) and broadcasts them.
  void apply_remote(std::vector<op_record> ops);
  /// After a failed load with subscribers on a shared store: loads again after a backoff.
  void retry_load_later();
  /// The end of a load: subscribers get what they lack, the document is ready, the queue drains.
  void finish_load();
  submit_pipeline::lost_ops lost_ops_for(const store::loaded_document& loaded);
  /// On a load that found the store's log shorter than what this copy broadcast: commits the lost
  /// ops again (after reading the store's last op when the load did not show it), so that every
  /// client's history holds.
  void restore_lost_ops(submit_pipeline::lost_ops lost);
  void commit_lost_ops(std::vector<op_record> lost);
  /// The store's shorter history is the one from now on: the loss is reported.
  void give_up_lost_ops(std::uint64_t stored_head);
  /// The store did not answer: fails the queue with `error` (holding reads when the store is
  /// unavailable), loads again after a backoff.
  void reload_later(std::error_code error);
  void report_lost_ops(std::uint64_t from_version, std::size_t ops, bool put_back);
  enum class head_check {
    none,     ///< a gap: read what is missing
    compare,  ///< a resubscription: the store must still hold this copy's last op, else reload
    refused,  ///< after a refused commit: as `compare`, and nothing past the head means reload too
  };
  /// Reads the op log from the head on and applies what is new (a gap, a resync).
  void catch_up(std::optional<std::uint64_t> until, head_check check = head_check::none);
  void broadcast(const op_record& op, const shared_frame& frame);
  void update_busy_flag();
  /// Reports this document's memory (text, cached ops) to the registry's budget.
  void update_footprint();
  void add_resident(std::int64_t delta) noexcept;

  /// Runs one handler at a time: a strand, or the context of the one I/O thread that runs it
  /// (registry::place_on), where a strand would only add a lock and a queue to each hand-off.
  boost::asio::any_io_executor executor_;
  registry& owner_;
  store::doc_key key_;

  enum class state { unloaded, loading, ready } state_ = state::unloaded;
  bool busy_ = false;  // a load, a history read or a batch is in flight
  bool evicted_ = false;
  std::chrono::milliseconds load_retry_delay_{0};  ///< the last wait of retry_load_later (0: none)
  bool stale_ = false;                             // with a feed but not on it: reload before serving
  std::optional<std::uint64_t> feed_token_;        // while subscribed to the op feed
  bool feed_caught_up_ = false;                    // the feed subscription's first catch-up is done
  std::uint64_t broadcast_version_ = 0;            // subscribers have every op below this
  unsigned restore_attempts_ = 0;                  // commits of lost ops tried since the store lost them
  std::optional<std::chrono::steady_clock::time_point> restore_waiting_since_;  // the store's first error meanwhile
  std::optional<submit_pipeline::lost_ops> pending_restore_;  // being put back (survives a store error)
  bool retry_armed_ = false;                                  // a retry_load_later timer is pending
  bool history_diverged_ = false;  // a head check found another op where this copy had its last
  std::atomic<bool> busy_flag_{false};
  std::deque<request> queue_;

  submit_pipeline pipeline_;               // the head, the cache and the batch in flight
  std::vector<std::error_code> outcomes_;  // the store's answers for the batch in flight
  std::size_t outcomes_pending_ = 0;

  std::size_t footprint_ = 0;                            // counted in the registry's resident bytes
  std::shared_ptr<std::atomic<std::int64_t>> resident_;  // the registry's count of them
  std::vector<std::shared_ptr<subscriber>> subscribers_;
  std::chrono::steady_clock::time_point last_active_;
};

}  // namespace otsync::doc
