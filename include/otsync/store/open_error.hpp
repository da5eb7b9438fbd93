// Why a store could not be opened: the errors of `open_store` and of each
// backend's factory, with messages an operator can act on.
//
// Thread safety: all functions are pure.
#pragma once

#include <system_error>

namespace otsync::store {

enum class open_errc {
  cannot_open = 1,   ///< the file or directory cannot be opened or created
  schema_too_new,    ///< the database was written by a newer otsync
  migration_failed,  ///< upgrading the schema failed (nothing was changed)
  invalid_option,    ///< an option has a value the backend does not accept
  unknown_scheme,    ///< the store URI names no known backend
  redis_not_built,   ///< unused since the Redis store exists; kept so the values stay stable
};

const std::error_category& open_error_category() noexcept;
inline std::error_code make_error_code(open_errc e) noexcept {
  return {static_cast<int>(e), open_error_category()};
}

}  // namespace otsync::store

template <>
struct std::is_error_code_enum<otsync::store::open_errc> : std::true_type {};
