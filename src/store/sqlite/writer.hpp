// The write side of the SQLite store: one connection with its prepared
// statements, committing a batch of requests in one transaction (group
// commit: one fsync for the whole batch).
//
// Thread safety: one thread at a time (the store's writer thread owns it).
#pragma once

#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "connection.hpp"
#include "otsync/store/store.hpp"

namespace otsync::store::sqlite {

/// A commit request with its op body already encoded (done by the caller's
/// thread, so the writer thread only writes).
struct encoded_commit {
  commit_request request;
  std::string body_json;
};

/// What became of a batch: one result per request, and whether the
/// transaction committed (false: rolled back by an SQLite error).
struct batch_outcome {
  std::vector<std::error_code> results;
  bool committed = false;
};

class writer {
 public:
  static ot::result<writer> prepare(connection db, std::string* detail);

  /// Commits every request of `batch` that passes its compare-and-set, in
  /// order, in one transaction; returns one result per request. Several
  /// requests may target one document in sequence: each sees the head the
  /// earlier ones left. A conflict fails only its own request; a failed
  /// statement or COMMIT rolls the whole batch back and fails every request
  /// (`unavailable`, or `corrupt` for a damaged file).
  batch_outcome commit_batch(std::span<const encoded_commit> batch);

  /// Rolls back a transaction an exception left open (out of memory mid-batch).
  void abandon() noexcept {
    if (db_.in_transaction()) rollback_.run();
  }

 private:
  writer(connection db, statement begin, statement commit, statement rollback, statement head, statement insert_op,
         statement upsert_head, statement insert_snapshot)
      : db_(std::move(db)),
        begin_(std::move(begin)),
        commit_(std::move(commit)),
        rollback_(std::move(rollback)),
        head_(std::move(head)),
        insert_op_(std::move(insert_op)),
        upsert_head_(std::move(upsert_head)),
        insert_snapshot_(std::move(insert_snapshot)) {}

  /// Writes one request (its CAS already passed); an SQLite result code.
  int write(const encoded_commit& commit);

  connection db_;
  statement begin_;
  statement commit_;
  statement rollback_;
  statement head_;
  statement insert_op_;
  statement upsert_head_;
  statement insert_snapshot_;
};

}  // namespace otsync::store::sqlite
