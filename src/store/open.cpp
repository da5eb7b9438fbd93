#include "otsync/store/open.hpp"

#include <filesystem>
#include <limits>

#include "otsync/store/memory_store.hpp"
#include "otsync/store/redis_store.hpp"
#include "otsync/store/sqlite_store.hpp"

namespace otsync::store {
namespace {

constexpr std::string_view memory_scheme = "memory:";
constexpr std::string_view sqlite_scheme = "sqlite:";
constexpr std::string_view redis_scheme = "redis://";
constexpr std::string_view sentinel_scheme = "redis-sentinel://";
constexpr std::string_view cluster_scheme = "redis-cluster://";
constexpr std::string_view default_database = "otsync.db";

ot::result<std::unique_ptr<store>> open_sqlite(std::string_view path_text, const std::string& data_dir,
                                               std::string* detail, const sqlite_tuning& tuning) {
  namespace fs = std::filesystem;
  // Checked before anything is created on disk.
  if (tuning.cache_mib > (static_cast<std::size_t>(std::numeric_limits<int>::max()) >> 10)) {
    // In KiB it would pass what SQLite reads (or wrap around to a small cache).
    if (detail) *detail = "the SQLite page cache of " + std::to_string(tuning.cache_mib) + " MiB is too large";
    return open_errc::invalid_option;
  }
  fs::path path = path_text.empty() ? fs::path(default_database) : fs::path(path_text);
  if (path.is_relative()) path = fs::path(data_dir) / path;
  if (const fs::path directory = path.parent_path(); !directory.empty()) {
    std::error_code error;
    fs::create_directories(directory, error);
    if (error) {
      if (detail) *detail = "cannot create directory " + directory.string() + ": " + error.message();
      return open_errc::cannot_open;
    }
  }
  sqlite_options options;
  options.path = path.string();
  options.writer_cache_kib = tuning.cache_mib << 10;
  options.wal_checkpoint_pages = tuning.checkpoint_pages;
  return open_sqlite_store(options, detail);
}

}  // namespace

ot::result<std::unique_ptr<store>> open_store(std::string_view uri, const std::string& data_dir, std::string* detail,
                                              const sqlite_tuning& sqlite) {
  if (uri == memory_scheme) return make_memory_store();
  if (uri.starts_with(sqlite_scheme)) return open_sqlite(uri.substr(sqlite_scheme.size()), data_dir, detail, sqlite);
  if (uri.starts_with(redis_scheme) || uri.starts_with(sentinel_scheme) || uri.starts_with(cluster_scheme)) {
    auto options = parse_redis_uri(uri);
    if (!options) {
      if (detail) {
        *detail =
            "expected redis://HOST:PORT[/DB], redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB] or "
            "redis-cluster://HOST:PORT[,HOST:PORT...], got '" +
            std::string(uri) + "'";
      }
      return open_errc::invalid_option;
    }
    return std::unique_ptr<store>(open_redis_store(*options));
  }
  if (detail) *detail = "store URI '" + std::string(uri) + "'";
  return open_errc::unknown_scheme;
}

}  // namespace otsync::store
