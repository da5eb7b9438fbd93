#include "writer.hpp"

#include <sqlite3.h>

#include <map>

namespace otsync::store::sqlite {

ot::result<writer> writer::prepare(connection db, std::string* detail) {
  // IMMEDIATE takes the write lock up front, so a batch never fails half-way
  // because another process started writing.
  auto begin = statement::prepare(db, "BEGIN IMMEDIATE", detail);
  if (!begin) return begin.error();
  auto commit = statement::prepare(db, "COMMIT", detail);
  if (!commit) return commit.error();
  auto rollback = statement::prepare(db, "ROLLBACK", detail);
  if (!rollback) return rollback.error();
  auto head = statement::prepare(db, "SELECT version FROM docs WHERE collection = ?1 AND id = ?2", detail);
  if (!head) return head.error();
  auto insert_op = statement::prepare(db,
                                      "INSERT INTO ops (collection, id, version, src, seq, ts, body, author) "
                                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                                      detail);
  if (!insert_op) return insert_op.error();
  auto upsert_head =
      statement::prepare(db,
                         "INSERT INTO docs (collection, id, version, type, create_src, create_seq, create_version) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (collection, id) DO UPDATE SET "
                         "version = excluded.version, type = excluded.type, create_src = excluded.create_src, "
                         "create_seq = excluded.create_seq, create_version = excluded.create_version",
                         detail);
  if (!upsert_head) return upsert_head.error();
  auto insert_snapshot = statement::prepare(
      db,
      "INSERT OR REPLACE INTO snapshots (collection, id, version, type, data, create_src, create_seq, create_version) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
      detail);
  if (!insert_snapshot) return insert_snapshot.error();
  return writer(std::move(db), std::move(*begin), std::move(*commit), std::move(*rollback), std::move(*head),
                std::move(*insert_op), std::move(*upsert_head), std::move(*insert_snapshot));
}

namespace {

void bind_creator(statement& stmt, int first, const std::optional<oplog::create_record>& created) {
  if (created) {
    stmt.bind(first, std::string_view(created->src));
    stmt.bind_bits(first + 1, created->seq);
    stmt.bind_count(first + 2, created->version);
  } else {
    stmt.bind_null(first);
    stmt.bind_null(first + 1);
    stmt.bind_null(first + 2);
  }
}

}  // namespace

int writer::write(const encoded_commit& commit) {
  const commit_request& request = commit.request;
  const std::string_view collection = request.key.collection;
  const std::string_view id = request.key.id;
  {
    scoped_use use(insert_op_);
    insert_op_.bind(1, collection);
    insert_op_.bind(2, id);
    insert_op_.bind_count(3, request.op.version);
    insert_op_.bind(4, std::string_view(request.op.src));
    insert_op_.bind_bits(5, request.op.seq);
    insert_op_.bind(6, request.op.timestamp_ms);
    insert_op_.bind(7, std::string_view(commit.body_json));
    insert_op_.bind(8, std::string_view(request.op.author));
    if (const int code = insert_op_.step(); code != SQLITE_DONE) return code;
  }
  {
    scoped_use use(upsert_head_);
    upsert_head_.bind(1, collection);
    upsert_head_.bind(2, id);
    upsert_head_.bind_count(3, request.after.version);
    upsert_head_.bind(4, request.after.type_uri);
    bind_creator(upsert_head_, 5, request.after.created);
    if (const int code = upsert_head_.step(); code != SQLITE_DONE) return code;
  }
  if (request.store_snapshot) {
    scoped_use use(insert_snapshot_);
    insert_snapshot_.bind(1, collection);
    insert_snapshot_.bind(2, id);
    insert_snapshot_.bind_count(3, request.after.version);
    insert_snapshot_.bind(4, request.after.type_uri);
    insert_snapshot_.bind(5, std::string_view(request.after.data));
    bind_creator(insert_snapshot_, 6, request.after.created);
    if (const int code = insert_snapshot_.step(); code != SQLITE_DONE) return code;
  }
  return SQLITE_DONE;
}

batch_outcome writer::commit_batch(std::span<const encoded_commit> batch) {
  batch_outcome outcome;
  std::vector<std::error_code>& results = outcome.results;
  results.resize(batch.size());
  auto fail_all = [&](int code) {
    if (db_.in_transaction()) rollback_.run();
    results.assign(batch.size(), error_from_sqlite(code));
    return std::move(outcome);
  };
  if (const int code = begin_.run(); code != SQLITE_DONE) return fail_all(code);

  // Heads this batch has moved; the table answers for the others.
  std::map<doc_key, std::uint64_t> heads;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const commit_request& request = batch[i].request;
    std::uint64_t head = 0;
    if (const auto moved = heads.find(request.key); moved != heads.end()) {
      head = moved->second;
    } else {
      scoped_use use(head_);
      head_.bind(1, std::string_view(request.key.collection));
      head_.bind(2, std::string_view(request.key.id));
      const int code = head_.step();
      if (code == SQLITE_ROW) {
        head = head_.unsigned_integer(0);
      } else if (code != SQLITE_DONE) {
        return fail_all(code);
      }
    }
    if (head != request.op.version) {
      results[i] = errc::version_conflict;
      continue;
    }
    const int code = write(batch[i]);
    if ((code & 0xff) == SQLITE_CONSTRAINT && code != SQLITE_DONE) {
      // The op log already holds this version while the head says otherwise:
      // the file disagrees with itself. Only the op insert, the first write,
      // can hit this, so nothing of this request was written.
      results[i] = errc::corrupt;
      continue;
    }
    if (code != SQLITE_DONE) return fail_all(code);
    heads.insert_or_assign(request.key, request.after.version);
  }
  if (const int code = commit_.run(); code != SQLITE_DONE) return fail_all(code);
  outcome.committed = true;
  return outcome;
}

}  // namespace otsync::store::sqlite
