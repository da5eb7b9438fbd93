// The one way the edges (the WebSocket agent, the HTTP routes) reach
// documents: the head through the document actors (fetch, subscribe,
// submit), the past through the store (a snapshot at a version or a time, op
// ranges, listings), with the one "load at a version, check, replay" behind
// `snapshot_at`. The registry implements it; tests drive the agent with a
// fake.
//
// Errors: the head's answers carry the ShareDB error object the actor made
// (`read_result::error`, `submit_result::error`); reads of the past fail with
// a `std::error_code` (`store::errc`, `oplog::errc`, or a replay's OT error)
// that each edge maps: the WebSocket with `protocol::to_read_error_info`, HTTP to a status.
//
// Thread safety: every member function may be called from any thread.
// Handlers run on a thread of the service's choosing (a document's executor, a
// store thread, or inline): callers post back to their own executor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "otsync/doc/types.hpp"
#include "otsync/oplog/op_record.hpp"
#include "otsync/oplog/snapshot.hpp"
#include "otsync/ot/result.hpp"
#include "otsync/protocol/message.hpp"
#include "otsync/store/store.hpp"

namespace otsync::doc {

template <class T>
using result_handler = std::function<void(ot::result<T>)>;

/// Where a subscription lives, opaque to the subscriber: `subscribe` returns
/// it and `unsubscribe` takes it back, so the unsubscribe reaches the very
/// instance that took the subscribe (ordered after it), even when that
/// instance has since left the registry. Empty: nothing to unsubscribe.
class subscription_handle {
 public:
  subscription_handle() = default;
  explicit subscription_handle(std::shared_ptr<void> target) noexcept : target_(std::move(target)) {}
  [[nodiscard]] const std::shared_ptr<void>& target() const noexcept { return target_; }
  explicit operator bool() const noexcept { return target_ != nullptr; }

 private:
  std::shared_ptr<void> target_;
};

class document_service {
 public:
  virtual ~document_service() = default;

  /// `f`: the head snapshot (`from` nullopt) or the committed ops from `from` on. `asked`: when the
  /// client asked (a read waits for an unavailable store until document_options::max_store_wait
  /// after it; the reads of one bulk request share it).
  virtual void fetch(const store::doc_key& key, std::optional<std::uint64_t> from, read_handler done,
                     std::chrono::steady_clock::time_point asked) = 0;
  /// `s`: registers `who` and reads as `fetch`, atomically: every op after
  /// the read reaches `who` through `on_op`.
  [[nodiscard]] virtual subscription_handle subscribe(const store::doc_key& key, std::shared_ptr<subscriber> who,
                                                      std::optional<std::uint64_t> from, read_handler done,
                                                      std::chrono::steady_clock::time_point asked) = 0;
  /// `u`, or a closed connection: removes `who` from where `handle` (from
  /// `subscribe`) points. `done` (may be empty) runs once removed.
  virtual void unsubscribe(const subscription_handle& handle, const subscriber* who, std::function<void()> done) = 0;
  /// `op`: the submit pipeline.
  virtual void submit(const store::doc_key& key, oplog::submission op, submit_handler done) = 0;

  /// A presence sent at `version` by `src`, moved through the ops committed
  /// since (an op by `src` moves the caret past what it inserts at the
  /// caret); a version ahead of the head is left as it is. `range` nullopt:
  /// no range to move (a null or opaque value), only the version advances.
  virtual void transform_presence(const store::doc_key& key, std::uint64_t version, std::string src,
                                  std::optional<ot::selection> range, presence_handler done) = 0;

  /// `nf` at a version, REST `?v=N`: the document at `version`.
  /// `oplog::errc::version_from_the_future` when the log is shorter; a
  /// failed replay's error (stored ops that do not apply); store errors.
  virtual void snapshot_at(const store::doc_key& key, std::uint64_t version, result_handler<oplog::snapshot> done) = 0;
  /// `nt`: the document as it was at `timestamp_ms` (ops committed at or before it).
  virtual void snapshot_at_time(const store::doc_key& key, std::int64_t timestamp_ms,
                                result_handler<oplog::snapshot> done) = 0;
  /// Committed ops with versions in [from, to) (`to` nullopt: to the head), oldest first.
  virtual void ops(const store::doc_key& key, std::uint64_t from, std::optional<std::uint64_t> to,
                   result_handler<std::vector<oplog::op_record>> done) = 0;
  /// Documents of `collection` with ids after `after_id`, in id order, at most `limit`.
  virtual void list_documents(const std::string& collection, const std::string& after_id, std::size_t limit,
                              result_handler<std::vector<store::document_summary>> done) = 0;
};

}  // namespace otsync::doc
