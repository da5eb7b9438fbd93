// The database schema and its migrations, versioned by `PRAGMA user_version`.
//
// Thread safety: functions take the connection they use; one thread at a time.
#pragma once

#include <span>
#include <string>
#include <system_error>

#include "connection.hpp"

namespace otsync::store::sqlite {

/// One step from `version - 1` to `version`.
struct migration {
  int version;
  const char* sql;
};

/// Every step, oldest first; the last one's version is the current schema.
std::span<const migration> migrations() noexcept;
int current_schema_version() noexcept;

/// Brings the database to the current schema in one transaction (all steps or
/// none). `schema_too_new` when the file was written by a newer otsync,
/// `migration_failed` when a step fails (with SQLite's message in `detail`).
std::error_code migrate(connection& db, std::string* detail);

}  // namespace otsync::store::sqlite
