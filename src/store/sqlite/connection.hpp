// Thin RAII wrappers over the SQLite C API: a connection and its prepared
// statements, with SQLite result codes turned into store errors.
//
// Thread safety: a connection and its statements belong to one thread at a
// time (connections are opened with SQLITE_OPEN_NOMUTEX).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "otsync/ot/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace otsync::store::sqlite {

/// The store error for an SQLite result code: `corrupt` for a damaged file,
/// `unavailable` for everything else (I/O, full disk, busy, out of memory).
std::error_code error_from_sqlite(int code) noexcept;

/// Clamps a version or count to SQLite's signed 64-bit integers.
std::int64_t to_sql_integer(std::uint64_t value) noexcept;

class connection {
 public:
  /// Opens (and, with `create`, creates) the database at `path`. On failure
  /// `detail` (when given) receives SQLite's message.
  static ot::result<connection> open(const std::string& path, bool create, std::string* detail);

  connection(connection&&) noexcept = default;
  connection& operator=(connection&&) noexcept = default;
  ~connection();

  /// Runs one or more statements without results (PRAGMAs, DDL). Returns the
  /// SQLite result code.
  int exec(const char* sql);
  /// Runs a statement that returns one text value (e.g. `PRAGMA journal_mode=WAL`).
  int query_text(const char* sql, std::string& out);
  int query_integer(const char* sql, std::int64_t& out);

  /// SQLite's message for the last failure on this connection.
  [[nodiscard]] std::string last_message() const;
  [[nodiscard]] bool in_transaction() const noexcept;
  [[nodiscard]] sqlite3* handle() const noexcept { return db_.get(); }

 private:
  struct closer {
    void operator()(sqlite3* db) const noexcept;
  };
  explicit connection(sqlite3* db) noexcept : db_(db) {}
  std::unique_ptr<sqlite3, closer> db_;
};

/// A prepared statement, compiled once and reused for every call.
class statement {
 public:
  static ot::result<statement> prepare(connection& db, std::string_view sql, std::string* detail);

  statement(statement&&) noexcept = default;
  statement& operator=(statement&&) noexcept = default;
  ~statement();

  /// Clears the previous run's state and bindings; every use starts with it
  /// (and `scoped_use` ends with a reset, so no read transaction stays open).
  void reset() noexcept;

  // Parameters are numbered from 1, as in SQL (`?1`).
  void bind(int index, std::int64_t value) noexcept;
  /// A version, count or bound: clamped to INT64_MAX (nothing real is larger).
  void bind_count(int index, std::uint64_t value) noexcept { bind(index, to_sql_integer(value)); }
  /// An opaque 64-bit value (a client's seq): stored bit for bit, read back
  /// with `unsigned_integer`.
  void bind_bits(int index, std::uint64_t value) noexcept { bind(index, static_cast<std::int64_t>(value)); }
  /// Binds text without copying: `value` must outlive the statement's run.
  void bind(int index, std::string_view value) noexcept;
  void bind(int index, const std::optional<std::string>& value) noexcept;
  void bind_null(int index) noexcept;

  /// SQLITE_ROW, SQLITE_DONE or an error code.
  int step() noexcept;
  /// Steps a statement that returns no rows; SQLITE_DONE on success.
  int run() noexcept;

  [[nodiscard]] bool is_null(int column) const noexcept;
  [[nodiscard]] std::int64_t integer(int column) const noexcept;
  [[nodiscard]] std::uint64_t unsigned_integer(int column) const noexcept {
    return static_cast<std::uint64_t>(integer(column));
  }
  [[nodiscard]] std::string text(int column) const;
  [[nodiscard]] std::optional<std::string> optional_text(int column) const;

 private:
  struct finalizer {
    void operator()(sqlite3_stmt* stmt) const noexcept;
  };
  explicit statement(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
  std::unique_ptr<sqlite3_stmt, finalizer> stmt_;
};

/// Resets a statement on entry and on exit of a scope.
class scoped_use {
 public:
  explicit scoped_use(statement& stmt) noexcept : stmt_(stmt) { stmt_.reset(); }
  ~scoped_use() { stmt_.reset(); }
  scoped_use(const scoped_use&) = delete;
  scoped_use& operator=(const scoped_use&) = delete;

 private:
  statement& stmt_;
};

}  // namespace otsync::store::sqlite
