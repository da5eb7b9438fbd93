#include "schema.hpp"

#include <sqlite3.h>

#include <array>

#include "otsync/store/open_error.hpp"

namespace otsync::store::sqlite {
namespace {

// Never edit a released step: databases in the field ran it as written. Add a
// new step instead (and a test that migrates from the version before it).
constexpr std::array<migration, 4> steps{{
    // 1: the op log (kept in full), each document's head, stored snapshots.
    // Bodies are ShareDB JSON; creator records let a resent create be spotted.
    {1, R"sql(
      CREATE TABLE ops (
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        src TEXT NOT NULL,
        seq INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (collection, id, version)
      ) WITHOUT ROWID;
      CREATE TABLE docs (
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        type TEXT,
        create_src TEXT,
        create_seq INTEGER,
        create_version INTEGER,
        PRIMARY KEY (collection, id)
      ) WITHOUT ROWID;
      CREATE TABLE snapshots (
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        type TEXT,
        data TEXT NOT NULL,
        create_src TEXT,
        create_seq INTEGER,
        create_version INTEGER,
        PRIMARY KEY (collection, id, version)
      ) WITHOUT ROWID;
    )sql"},
    // 2: `nt` (version at a timestamp) counts ops by time without a scan of
    // the document's whole log.
    {2, R"sql(
      CREATE INDEX ops_by_time ON ops (collection, id, ts);
    )sql"},
    // 3: who wrote each op (the subject of the author's bearer token; '' without one).
    {3, R"sql(
      ALTER TABLE ops ADD COLUMN author TEXT NOT NULL DEFAULT '';
    )sql"},
    // 4: `nt` binary-searches the log by version instead (timestamps never go
    // back within a document): the index cost a page write per op, a third
    // of the log's writes when many documents are edited at once.
    {4, R"sql(
      DROP INDEX IF EXISTS ops_by_time;
    )sql"},
}};

}  // namespace

std::span<const migration> migrations() noexcept {
  return steps;
}

int current_schema_version() noexcept {
  return steps.back().version;
}

std::error_code migrate(connection& db, std::string* detail) {
  auto fail = [&](std::error_code error) {
    if (detail) *detail = db.last_message();
    if (db.in_transaction()) db.exec("ROLLBACK");
    return error;
  };
  // IMMEDIATE: two processes opening one file at once migrate one after the other.
  if (db.exec("BEGIN IMMEDIATE") != SQLITE_OK) return fail(open_errc::cannot_open);
  std::int64_t version = 0;
  if (db.query_integer("PRAGMA user_version", version) != SQLITE_OK) return fail(open_errc::cannot_open);
  if (version > current_schema_version()) {
    const std::error_code error = fail(open_errc::schema_too_new);
    if (detail) {
      *detail = "database schema version " + std::to_string(version) + ", this otsync supports up to " +
                std::to_string(current_schema_version());
    }
    return error;
  }
  for (const migration& step : steps) {
    if (step.version <= version) continue;
    if (db.exec(step.sql) != SQLITE_OK) return fail(open_errc::migration_failed);
  }
  const std::string set_version = "PRAGMA user_version = " + std::to_string(current_schema_version());
  if (db.exec(set_version.c_str()) != SQLITE_OK) return fail(open_errc::migration_failed);
  if (db.exec("COMMIT") != SQLITE_OK) return fail(open_errc::migration_failed);
  return {};
}

}  // namespace otsync::store::sqlite
