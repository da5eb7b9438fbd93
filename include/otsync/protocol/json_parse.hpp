// Parsing JSON from the network without trusting its shape: nesting depth is
// bounded before any tree is built, because nlohmann's copies, comparisons
// and encoder recurse once per level and a deep enough text overflows the
// stack. Every JSON text that crosses a process boundary (client frames,
// server frames in the client library and otsync-load, store records) is
// read through here.
//
// Thread safety: pure.
#pragma once

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

namespace otsync::protocol {

/// Deep enough for every ShareDB message (an op is 3 levels, a presence value a few more).
inline constexpr std::size_t default_max_json_depth = 64;

/// True when `text` nests arrays and objects more than `max_depth` levels deep.
/// Counted on the text in one pass, without building anything; exact for valid JSON.
[[nodiscard]] bool json_nesting_exceeds(std::string_view text, std::size_t max_depth) noexcept;

/// The parsed value, or a discarded value (`is_discarded()`) when `text` is
/// not JSON or nests deeper than `max_depth`. Never throws.
[[nodiscard]] nlohmann::json parse_json_bounded(std::string_view text, std::size_t max_depth = default_max_json_depth);

/// The top level of an object only, members that are arrays or objects left
/// out: what can be read of a message too deep to parse (to answer it). A
/// discarded value when `text` is not a JSON object. Never recurses or throws.
[[nodiscard]] nlohmann::json parse_json_top_level(std::string_view text);

}  // namespace otsync::protocol
