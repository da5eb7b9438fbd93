#include "reader.hpp"

#include <sqlite3.h>

#include <limits>

#include "../op_body_json.hpp"

namespace otsync::store::sqlite {
namespace {

constexpr std::uint64_t unbounded = std::numeric_limits<std::int64_t>::max();

/// A read transaction, so that a snapshot and the ops after it come from one
/// committed state. Ends (without writing anything) when the scope ends.
class read_transaction {
 public:
  read_transaction(statement& begin, statement& end) : end_(end) { ok_ = begin.run() == SQLITE_DONE; }
  ~read_transaction() {
    if (ok_) end_.run();
  }
  read_transaction(const read_transaction&) = delete;
  read_transaction& operator=(const read_transaction&) = delete;
  [[nodiscard]] bool ok() const noexcept { return ok_; }

 private:
  statement& end_;
  bool ok_ = false;
};

}  // namespace

ot::result<reader> reader::prepare(connection db, std::string* detail) {
  auto begin = statement::prepare(db, "BEGIN", detail);
  if (!begin) return begin.error();
  auto end = statement::prepare(db, "COMMIT", detail);
  if (!end) return end.error();
  auto snapshot_at = statement::prepare(db,
                                        "SELECT version, type, data, create_src, create_seq, create_version "
                                        "FROM snapshots WHERE collection = ?1 AND id = ?2 AND version <= ?3 "
                                        "ORDER BY version DESC LIMIT 1",
                                        detail);
  if (!snapshot_at) return snapshot_at.error();
  auto ops_range = statement::prepare(db,
                                      "SELECT version, src, seq, ts, body, author FROM ops "
                                      "WHERE collection = ?1 AND id = ?2 AND version >= ?3 AND version < ?4 "
                                      "ORDER BY version",
                                      detail);
  if (!ops_range) return ops_range.error();
  auto head = statement::prepare(db, "SELECT version FROM docs WHERE collection = ?1 AND id = ?2", detail);
  if (!head) return head.error();
  auto op_time =
      statement::prepare(db, "SELECT ts FROM ops WHERE collection = ?1 AND id = ?2 AND version = ?3", detail);
  if (!op_time) return op_time.error();
  auto list = statement::prepare(
      db, "SELECT id, version, type FROM docs WHERE collection = ?1 AND id > ?2 ORDER BY id LIMIT ?3", detail);
  if (!list) return list.error();
  return reader(std::move(db), std::move(*begin), std::move(*end), std::move(*snapshot_at), std::move(*ops_range),
                std::move(*head), std::move(*op_time), std::move(*list));
}

ot::result<std::vector<oplog::op_record>> reader::read_ops(const doc_key& key, std::uint64_t from, std::uint64_t to) {
  std::vector<oplog::op_record> ops;
  scoped_use use(ops_range_);
  ops_range_.bind(1, std::string_view(key.collection));
  ops_range_.bind(2, std::string_view(key.id));
  ops_range_.bind_count(3, from);
  ops_range_.bind_count(4, to);
  int code = SQLITE_OK;
  while ((code = ops_range_.step()) == SQLITE_ROW) {
    oplog::op_record record;
    record.version = ops_range_.unsigned_integer(0);
    // A gap in the log would make every later version wrong: refuse it.
    if (record.version != from + ops.size()) return errc::corrupt;
    record.src = ops_range_.text(1);
    record.seq = ops_range_.unsigned_integer(2);
    record.timestamp_ms = ops_range_.integer(3);
    auto body = detail::decode_op_body(ops_range_.text(4));
    if (!body) return body.error();
    record.body = std::move(*body);
    record.author = ops_range_.text(5);
    ops.push_back(std::move(record));
  }
  if (code != SQLITE_DONE) return error_from_sqlite(code);
  return ops;
}

ot::result<loaded_document> reader::load(const doc_key& key, std::optional<std::uint64_t> version) {
  read_transaction transaction(begin_, end_);
  if (!transaction.ok()) return errc::unavailable;
  const std::uint64_t target = version.value_or(unbounded);
  loaded_document result;
  {
    scoped_use use(snapshot_at_);
    snapshot_at_.bind(1, std::string_view(key.collection));
    snapshot_at_.bind(2, std::string_view(key.id));
    snapshot_at_.bind_count(3, target);
    const int code = snapshot_at_.step();
    if (code == SQLITE_ROW) {
      result.base.version = snapshot_at_.unsigned_integer(0);
      result.base.type_uri = snapshot_at_.optional_text(1);
      result.base.data = snapshot_at_.text(2);
      if (!snapshot_at_.is_null(3)) {
        result.base.created = oplog::create_record{snapshot_at_.text(3), snapshot_at_.unsigned_integer(4),
                                                   snapshot_at_.unsigned_integer(5)};
      }
    } else if (code != SQLITE_DONE) {
      return error_from_sqlite(code);
    }
  }
  if (result.base.version > 0) {
    auto time = op_time(key, result.base.version - 1);
    if (!time) return time.error();
    result.base_timestamp_ms = *time;
  }
  auto ops = read_ops(key, result.base.version, target);
  if (!ops) return ops.error();
  result.ops = std::move(*ops);
  return result;
}

ot::result<std::vector<oplog::op_record>> reader::load_ops(const doc_key& key, std::uint64_t from,
                                                           std::optional<std::uint64_t> to) {
  return read_ops(key, from, to.value_or(unbounded));
}

ot::result<std::int64_t> reader::op_time(const doc_key& key, std::uint64_t version) {
  scoped_use use(op_time_);
  op_time_.bind(1, std::string_view(key.collection));
  op_time_.bind(2, std::string_view(key.id));
  op_time_.bind_count(3, version);
  const int code = op_time_.step();
  if (code == SQLITE_DONE) return errc::corrupt;  // the log is kept in full below the head
  if (code != SQLITE_ROW) return error_from_sqlite(code);
  return op_time_.integer(0);
}

ot::result<std::uint64_t> reader::version_at(const doc_key& key, std::int64_t timestamp_ms) {
  read_transaction transaction(begin_, end_);
  if (!transaction.ok()) return errc::unavailable;
  std::uint64_t head = 0;
  {
    scoped_use use(head_);
    head_.bind(1, std::string_view(key.collection));
    head_.bind(2, std::string_view(key.id));
    const int code = head_.step();
    if (code == SQLITE_ROW) {
      head = head_.unsigned_integer(0);
    } else if (code != SQLITE_DONE) {
      return error_from_sqlite(code);
    }
  }
  // Timestamps never go back within a document (the submit pipeline keeps
  // them so), so the ops at or before the time are a prefix of the log: find
  // its end in O(log n) point reads, with no index on the time.
  std::uint64_t low = 0;
  std::uint64_t high = head;  // the answer is in [low, high]
  while (low < high) {
    const std::uint64_t middle = low + (high - low) / 2;
    auto time = op_time(key, middle);
    if (!time) return time.error();
    if (*time <= timestamp_ms) {
      low = middle + 1;
    } else {
      high = middle;
    }
  }
  return low;
}

ot::result<std::vector<document_summary>> reader::list_documents(const std::string& collection,
                                                                 const std::string& after_id, std::size_t limit) {
  std::vector<document_summary> result;
  scoped_use use(list_);
  list_.bind(1, std::string_view(collection));
  list_.bind(2, std::string_view(after_id));
  list_.bind_count(3, limit);
  int code = SQLITE_OK;
  while ((code = list_.step()) == SQLITE_ROW) {
    result.push_back({list_.text(0), list_.unsigned_integer(1), list_.optional_text(2)});
  }
  if (code != SQLITE_DONE) return error_from_sqlite(code);
  return result;
}

}  // namespace otsync::store::sqlite
