// The storage interface every backend implements (memory, SQLite, later
// Redis): an append-only op log per document with compare-and-set commits,
// plus snapshots stored every so often so that loading a document, or
// reading it at an old version, never replays the whole history.
//
// Thread safety: every member function may be called from any thread at any
// time. Completion handlers run on a thread of the store's choosing — inline
// in the caller for the memory store, on the store's own threads for SQLite —
// so a caller that owns state posts back to its own executor. A handler is
// called exactly once, also when the store is shutting down (with
// `errc::closed`).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "otsync/oplog/op_record.hpp"
#include "otsync/oplog/snapshot.hpp"
#include "otsync/ot/result.hpp"

namespace otsync::store {

/// Why a store call failed.
enum class errc {
  version_conflict = 1,  ///< commit: the stored head is not at `op.version` (someone else committed)
  unavailable,           ///< the backend failed (I/O error, disk full, connection lost); retry later
  closed,                ///< the store is shutting down
  corrupt,               ///< stored data does not decode; never silently skipped
  invalid_argument,      ///< a malformed request (empty collection, inverted range, ...)
};

const std::error_category& error_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// A document's address.
struct doc_key {
  std::string collection;
  std::string id;
  friend bool operator==(const doc_key&, const doc_key&) = default;
  friend auto operator<=>(const doc_key&, const doc_key&) = default;
};

/// What `load` returns: a stored snapshot and the committed ops after it, so
/// that `oplog::replay(base, ops)` is the document at the version asked for (or
/// at the head). `base.version + ops.size()` is the version reached; it is
/// below the version asked for exactly when the log is shorter.
struct loaded_document {
  oplog::snapshot base;
  std::vector<oplog::op_record> ops;
  /// The time of the op just below `base` (0: none, or a store that does not
  /// say: Redis counts times exactly and needs no floor). The submit pipeline
  /// stamps no op before it, even when `ops` is empty.
  std::int64_t base_timestamp_ms = 0;
  [[nodiscard]] std::uint64_t version_reached() const noexcept { return base.version + ops.size(); }
};

/// One op to append. `op.version` must be the stored head version;
/// `after` describes the document once `op` is applied (its version is
/// `op.version + 1`, its type and creator record become the head's). Its
/// `data` is stored as a snapshot only when `store_snapshot` is set (the
/// caller decides how often; the store never applies ops itself).
struct commit_request {
  doc_key key;
  oplog::op_record op;
  oplog::snapshot after;
  bool store_snapshot = false;
};

/// One row of `list_documents`.
struct document_summary {
  std::string id;
  std::uint64_t version = 0;
  std::optional<std::string> type_uri;
  friend bool operator==(const document_summary&, const document_summary&) = default;
};

/// How /metrics exports a backend's value.
enum class health_kind {
  gauge,  ///< a level (1 while connected, ...)
  total,  ///< a running total since start: a Prometheus counter, named `*_total`
};

/// One number a backend reports for /metrics, under its own Prometheus name,
/// sampled when /metrics is served.
struct health_value {
  std::string_view name;  ///< e.g. `otsync_redis_commands_total` (static storage)
  std::string_view help;  ///< (static storage)
  health_kind kind = health_kind::gauge;
  std::uint64_t value = 0;
};

/// What a backend (a store or an op feed) says about itself, so the server
/// needs no concrete type: readiness, one line for people, numbers for metrics.
struct backend_health {
  /// False while a shared backend is unreachable: the instance is not ready.
  bool connected = true;
  /// One short line, e.g. "redis 127.0.0.1:6379/0 connected".
  std::string detail;
  std::vector<health_value> values;
};

template <class T>
using handler = std::function<void(ot::result<T>)>;
using commit_handler = std::function<void(std::error_code)>;

class store {
 public:
  virtual ~store() = default;

  /// The document at `version` (nullopt: the head), as a stored snapshot at or
  /// below that version plus the ops after it. A document never written loads
  /// as `{version 0, no type}` with no ops.
  virtual void load(const doc_key& key, std::optional<std::uint64_t> version, handler<loaded_document> done) = 0;

  /// Committed ops with versions in [from, to) (`to` nullopt: to the head),
  /// oldest first; fewer when the log ends sooner. `from > to` is invalid.
  virtual void load_ops(const doc_key& key, std::uint64_t from, std::optional<std::uint64_t> to,
                        handler<std::vector<oplog::op_record>> done) = 0;

  /// The version the document had at `timestamp_ms`: the number of committed
  /// ops whose timestamp is at or before it. Timestamps do not go back within a
  /// document (the submit pipeline keeps them so), and a store may rely on it:
  /// SQLite binary-searches the log. On a log written otherwise (by an older
  /// otsync, or past the pipeline's bound on a clock far behind the log) it
  /// answers some version v with the op below v at or before the time and the
  /// op at v after it.
  virtual void version_at(const doc_key& key, std::int64_t timestamp_ms, handler<std::uint64_t> done) = 0;

  /// Appends `request.op` if and only if the head is at `request.op.version`
  /// (compare-and-set), atomically with the new head and the optional
  /// snapshot; `version_conflict` otherwise, with nothing written. Success
  /// means durable: the op survives a crash of the process from then on.
  /// Commits to one document complete in the order they were issued.
  virtual void commit(commit_request request, commit_handler done) = 0;

  /// Consecutive ops of one document (`requests[i].op.version` is the first
  /// one's plus i) committed all together or not at all: `version_conflict`,
  /// with nothing written, when the head is not at the first version or any
  /// op's (src, seq) is already in the log. Offered by stores whose
  /// `atomic_batches()` is true (one round trip for the lot); the others
  /// take a single request and answer `invalid_argument` for more.
  virtual void commit_all(std::vector<commit_request> requests, commit_handler done);
  [[nodiscard]] virtual bool atomic_batches() const noexcept { return false; }

  /// Documents of `collection` with ids greater than `after_id`, in id order,
  /// at most `limit`.
  virtual void list_documents(const std::string& collection, const std::string& after_id, std::size_t limit,
                              handler<std::vector<document_summary>> done) = 0;

  /// Readiness and counters (cheap; any thread). A backend without a
  /// connection to lose is always connected and reports no values.
  [[nodiscard]] virtual backend_health health() const { return {}; }

  /// Completes queued work, then fails anything later with `closed`.
  /// Idempotent; the destructor calls it.
  virtual void close() = 0;
};

}  // namespace otsync::store

template <>
struct std::is_error_code_enum<otsync::store::errc> : std::true_type {};
