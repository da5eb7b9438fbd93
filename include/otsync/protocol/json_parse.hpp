// Parsing JSON from the network without trusting its shape: nesting depth and
// the number of values are bounded before any tree is built, because
// nlohmann's copies, comparisons and encoder recurse once per level (a deep
// enough text overflows the stack) and a tree costs tens of bytes per value (a
// 16 MiB message of `[],[],…` would take ~30 times its size). Every JSON text
// that crosses a process boundary (client frames, server frames in the client
// library and otsync-load, store records) is read through here.
//
// Thread safety: pure.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace otsync::protocol {

/// Deep enough for every ShareDB message (an op is 3 levels, a presence value a few more).
inline constexpr std::size_t default_max_json_depth = 64;
/// Enough for every ShareDB message (an op of 10,000 components counts about 30,000).
inline constexpr std::size_t default_max_json_values = 100000;

/// What one pass over a JSON text finds, before anything is built: whether it
/// nests deeper than `max_depth` (exact for valid JSON) and whether it holds
/// more than `max_values` values (counted as commas + 2 × brackets + 1, an
/// upper bound on the values of valid JSON).
struct json_shape {
  bool too_deep = false;
  bool too_many_values = false;
};
[[nodiscard]] json_shape scan_json_shape(std::string_view text, std::size_t max_depth, std::size_t max_values) noexcept;

/// The parsed value, or a discarded value (`is_discarded()`) when `text` is
/// not JSON, nests deeper than `max_depth` or holds more than `max_values`
/// values. Never throws.
[[nodiscard]] nlohmann::json parse_json_bounded(std::string_view text, std::size_t max_depth = default_max_json_depth,
                                                std::size_t max_values = default_max_json_values);

/// The scalar members of a top-level object that `keep` selects; nested
/// values and other members are skipped as they are read: what can be read of
/// a message too deep or too large to parse (to answer it). A discarded value
/// when `text` is not a JSON object. Never recurses or throws.
[[nodiscard]] nlohmann::json parse_json_top_level(std::string_view text,
                                                  const std::function<bool(std::string_view)>& keep);

}  // namespace otsync::protocol
