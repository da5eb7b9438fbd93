// Structured logging on spdlog: one line per event, as text
// (`event key=value ...`) or as a JSON object per line.
//
// Thread safety: spdlog's multi-threaded sink; every function may be called
// from any thread.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace otsync::server::log {

enum class level { trace, debug, info, warn, error, critical, off };

/// Configures the process logger (stderr). Returns false for an unknown level or format.
bool setup(std::string_view level_name, std::string_view format);

using field = std::pair<std::string_view, std::string>;

/// Logs `event` with key/value fields (connection and document ids, etc.).
void write(level lvl, std::string_view event, std::initializer_list<field> fields = {});
bool enabled(level lvl);

inline void info(std::string_view event, std::initializer_list<field> fields = {}) {
  write(level::info, event, fields);
}
inline void warn(std::string_view event, std::initializer_list<field> fields = {}) {
  write(level::warn, event, fields);
}
inline void error(std::string_view event, std::initializer_list<field> fields = {}) {
  write(level::error, event, fields);
}
inline void debug(std::string_view event, std::initializer_list<field> fields = {}) {
  write(level::debug, event, fields);
}

}  // namespace otsync::server::log
