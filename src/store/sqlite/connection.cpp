#include "connection.hpp"

#include <sqlite3.h>

#include <limits>

#include "otsync/store/store.hpp"

namespace otsync::store::sqlite {

std::error_code error_from_sqlite(int code) noexcept {
  switch (code & 0xff) {  // the primary code of an extended one
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return errc::corrupt;
    default:
      return errc::unavailable;
  }
}

std::int64_t to_sql_integer(std::uint64_t value) noexcept {
  constexpr auto largest = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(value > largest ? largest : value);
}

void connection::closer::operator()(sqlite3* db) const noexcept {
  sqlite3_close_v2(db);
}

connection::~connection() = default;

ot::result<connection> connection::open(const std::string& path, bool create, std::string* detail) {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
  const int code = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  connection result(db);  // closes `db` on every path, also when opening failed
  if (code != SQLITE_OK) {
    if (detail) *detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(code);
    return error_from_sqlite(code);
  }
  sqlite3_extended_result_codes(db, 1);
  return result;
}

int connection::exec(const char* sql) {
  return sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
}

int connection::query_text(const char* sql, std::string& out) {
  std::string detail;
  auto stmt = statement::prepare(*this, sql, &detail);
  if (!stmt) return sqlite3_errcode(db_.get());
  const int code = stmt->step();
  if (code == SQLITE_ROW) {
    out = stmt->text(0);
    return SQLITE_OK;
  }
  return code == SQLITE_DONE ? SQLITE_ERROR : code;
}

int connection::query_integer(const char* sql, std::int64_t& out) {
  std::string detail;
  auto stmt = statement::prepare(*this, sql, &detail);
  if (!stmt) return sqlite3_errcode(db_.get());
  const int code = stmt->step();
  if (code == SQLITE_ROW) {
    out = stmt->integer(0);
    return SQLITE_OK;
  }
  return code == SQLITE_DONE ? SQLITE_ERROR : code;
}

std::string connection::last_message() const {
  return sqlite3_errmsg(db_.get());
}

bool connection::in_transaction() const noexcept {
  return sqlite3_get_autocommit(db_.get()) == 0;
}

void statement::finalizer::operator()(sqlite3_stmt* stmt) const noexcept {
  sqlite3_finalize(stmt);
}

statement::~statement() = default;

ot::result<statement> statement::prepare(connection& db, std::string_view sql, std::string* detail) {
  sqlite3_stmt* stmt = nullptr;
  const int code = sqlite3_prepare_v3(db.handle(), sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                      &stmt, nullptr);
  if (code != SQLITE_OK) {
    if (detail) *detail = db.last_message();
    sqlite3_finalize(stmt);
    return error_from_sqlite(code);
  }
  return statement(stmt);
}

void statement::reset() noexcept {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
}

void statement::bind(int index, std::int64_t value) noexcept {
  sqlite3_bind_int64(stmt_.get(), index, value);
}

void statement::bind(int index, std::string_view value) noexcept {
  sqlite3_bind_text64(stmt_.get(), index, value.data(), value.size(), SQLITE_STATIC, SQLITE_UTF8);
}

void statement::bind(int index, const std::optional<std::string>& value) noexcept {
  if (value) {
    bind(index, std::string_view(*value));
  } else {
    bind_null(index);
  }
}

void statement::bind_null(int index) noexcept {
  sqlite3_bind_null(stmt_.get(), index);
}

int statement::step() noexcept {
  return sqlite3_step(stmt_.get());
}

int statement::run() noexcept {
  const int code = sqlite3_step(stmt_.get());
  sqlite3_reset(stmt_.get());
  return code;
}

bool statement::is_null(int column) const noexcept {
  return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL;
}

std::int64_t statement::integer(int column) const noexcept {
  return sqlite3_column_int64(stmt_.get(), column);
}

std::string statement::text(int column) const {
  // The pointer first, then the size, as SQLite documents.
  const auto* data = sqlite3_column_text(stmt_.get(), column);
  const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), column));
  if (data == nullptr) return {};
  return {reinterpret_cast<const char*>(data), size};
}

std::optional<std::string> statement::optional_text(int column) const {
  if (is_null(column)) return std::nullopt;
  return text(column);
}

}  // namespace otsync::store::sqlite
