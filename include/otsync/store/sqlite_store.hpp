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
  /// The writer's page cache (`PRAGMA cache_size`), in KiB (SQLite's own default, about 2 MiB);
  /// readers keep SQLite's.
  std::size_t writer_cache_kib = std::size_t{2} << 10;
  /// `PRAGMA wal_autocheckpoint`, in pages: the write-ahead log is copied back into the database
  /// once it holds this many (4 KiB each). With SQLite's 1000 the copy-back, a write per page, was
  /// about a third of the writes when many documents are edited at once; a page rewritten by many
  /// transactions is copied once per checkpoint. Much longer (16384) made single-document commits
  /// slower while the log file grows (each sync then also records its new size). The log file keeps
  /// the size it reached.
  std::uint32_t wal_checkpoint_pages = 4096;
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
