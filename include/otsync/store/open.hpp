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

#include <memory>
#include <string>
#include <string_view>

#include "otsync/ot/result.hpp"
#include "otsync/store/open_error.hpp"
#include "otsync/store/store.hpp"

namespace otsync::store {

/// Opens the store `uri` names, creating the directory the database file goes
/// in. Errors are `open_errc` values (`unknown_scheme`, `invalid_option` for a
/// malformed redis:// URI, `cannot_open`, ...); `detail`, when given, receives the specifics (the
/// path, SQLite's message).
ot::result<std::unique_ptr<store>> open_store(std::string_view uri, const std::string& data_dir,
                                              std::string* detail = nullptr);

}  // namespace otsync::store
