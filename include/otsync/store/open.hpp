// Opens the store a URI names, as `otsyncd --store URI` does:
//   memory:        the in-memory store (nothing survives the process)
//   sqlite:        DATA_DIR/otsync.db
//   sqlite:PATH    PATH, relative to DATA_DIR unless absolute
//   redis://HOST[:PORT][/DB]  the Redis store (port 6379 and DB 0 by default;
//                  key prefix `otsync:`), connecting in the background
//
// Thread safety: may be called from any thread; the stores it returns are
// thread-safe as their headers say.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "otsync/ot/result.hpp"
#include "otsync/store/open_error.hpp"
#include "otsync/store/sqlite_store.hpp"
#include "otsync/store/store.hpp"

namespace otsync::store {

/// How a sqlite: store is tuned (its path comes from the URI); the defaults are sqlite_options's.
struct sqlite_tuning {
  std::size_t cache_mib = sqlite_options{}.writer_cache_kib >> 10;         ///< the writer's page cache
  std::uint32_t checkpoint_pages = sqlite_options{}.wal_checkpoint_pages;  ///< log pages before the copy-back
};

/// Opens the store `uri` names, creating the directory the database file goes
/// in. Errors are `open_errc` values (`unknown_scheme`, `invalid_option` for a
/// malformed redis:// URI, `cannot_open`, ...); `detail`, when given, receives the specifics (the
/// path, SQLite's message); `sqlite` tunes a sqlite: store.
ot::result<std::unique_ptr<store>> open_store(std::string_view uri, const std::string& data_dir,
                                              std::string* detail = nullptr, const sqlite_tuning& sqlite = {});

}  // namespace otsync::store
