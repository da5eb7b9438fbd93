// Opens the store a URI names, as `otsyncd --store URI` does:
//   memory:        the in-memory store (nothing survives the process)
//   sqlite:        DATA_DIR/otsync.db
//   sqlite:PATH    PATH, relative to DATA_DIR unless absolute
//   redis://...    reserved for the Redis store (not built yet)
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
/// in. Errors are `open_errc` values (`unknown_scheme`, `redis_not_built`,
/// `cannot_open`, ...); `detail`, when given, receives the specifics (the
/// path, SQLite's message).
ot::result<std::unique_ptr<store>> open_store(std::string_view uri, const std::string& data_dir,
                                              std::string* detail = nullptr);

}  // namespace otsync::store
