// The read side of the SQLite store: one connection with its prepared
// queries. In WAL mode readers see the last committed state and never wait
// for the writer's fsync.
//
// Thread safety: one thread at a time (each reader thread owns one).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "connection.hpp"
#include "otsync/store/store.hpp"

namespace otsync::store::sqlite {

class reader {
 public:
  /// Prepares the queries on `db` (already open on the current schema).
  static ot::result<reader> prepare(connection db, std::string* detail);

  ot::result<loaded_document> load(const doc_key& key, std::optional<std::uint64_t> version);
  ot::result<std::vector<oplog::op_record>> load_ops(const doc_key& key, std::uint64_t from,
                                                     std::optional<std::uint64_t> to);
  ot::result<std::uint64_t> version_at(const doc_key& key, std::int64_t timestamp_ms);
  ot::result<std::vector<document_summary>> list_documents(const std::string& collection, const std::string& after_id,
                                                           std::size_t limit);

 private:
  reader(connection db, statement begin, statement end, statement snapshot_at, statement ops_range, statement head,
         statement op_time, statement list)
      : db_(std::move(db)),
        begin_(std::move(begin)),
        end_(std::move(end)),
        snapshot_at_(std::move(snapshot_at)),
        ops_range_(std::move(ops_range)),
        head_(std::move(head)),
        op_time_(std::move(op_time)),
        list_(std::move(list)) {}

  /// The time of the op at `version` (`corrupt` if the log lacks it).
  ot::result<std::int64_t> op_time(const doc_key& key, std::uint64_t version);
  /// Ops [from, to) in order, checked to be exactly that contiguous run.
  ot::result<std::vector<oplog::op_record>> read_ops(const doc_key& key, std::uint64_t from, std::uint64_t to);

  connection db_;
  statement begin_;
  statement end_;
  statement snapshot_at_;
  statement ops_range_;
  statement head_;
  statement op_time_;
  statement list_;
};

}  // namespace otsync::store::sqlite
