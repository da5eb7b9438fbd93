// The SQLite store, otsyncd's default: one database file in WAL mode, the op
// log kept in full, snapshots as the caller asks, schema migrations by
// `PRAGMA user_version`.
//
// Commits go through one writer thread that takes every queued request (up to
// `max_batch`) and commits them in one transaction: one fsync for the batch,
// so throughput with many active documents is not one fsync per op. Reads run
// on their own connections and threads and never wait behind an fsync.
//
// Thread safety: every member may be called from any thread. Handlers run on
// the store's threads (commits on the writer, reads on a reader), never with
// a store lock held. `close()` may be called from a handler; destroying the
// store from a handler is not allowed (it joins the threads handlers run on).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "otsync/ot/result.hpp"
#include "otsync/store/open_error.hpp"
#include "otsync/store/store.hpp"

namespace otsync::store {

struct sqlite_options {
  /// The database file; created if missing (its directory must exist).
  std::string path;
  /// `PRAGMA synchronous`: FULL (fsync on every commit, the default), NORMAL
  /// (WAL mode: may lose the last commits on power loss, never on a process
  /// crash), OFF or EXTRA.
  std::string synchronous = "FULL";
  /// The most commit requests one transaction takes.
  std::size_t max_batch = 512;
  /// How long a statement waits for a lock held by another process.
  int busy_timeout_ms = 5000;
  /// Read connections, each with its own thread.
  std::size_t reader_threads = 2;
};

/// Counters of the writer, for metrics and for tests that check batching.
struct sqlite_store_stats {
  std::uint64_t transactions = 0;    ///< write transactions run (one per batch)
  std::uint64_t commits = 0;         ///< commit requests taken by the writer
  std::uint64_t largest_batch = 0;   ///< most requests in one transaction
  std::uint64_t failed_batches = 0;  ///< batches rolled back by an SQLite error
};

/// The SQLite store's interface beyond `store`: what `open_sqlite_store`
/// returns is one (reach it with `dynamic_cast`).
class sqlite_store : public store {
 public:
  [[nodiscard]] virtual sqlite_store_stats stats() const = 0;
};

/// Opens (creating if needed) and migrates the database, then starts the
/// writer and reader threads. Errors are `open_errc` values (`cannot_open`,
/// `schema_too_new`, `migration_failed`, `invalid_option`); `detail`, when
/// given, receives SQLite's own message and the path.
ot::result<std::unique_ptr<store>> open_sqlite_store(const sqlite_options& options, std::string* detail = nullptr);

}  // namespace otsync::store
