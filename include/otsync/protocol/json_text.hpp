// Appends JSON text to a string without building a DOM, byte for byte as
// nlohmann's dump(-1, ' ', false, replace) writes it (objects keep the
// caller's key order: callers write keys sorted, as nlohmann's std::map
// does). For the messages sent once per op (broadcasts, acks, and the load
// generator's submits), where a DOM costs an allocation per value.
//
// Thread safety: pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "otsync/ot/op.hpp"

namespace otsync::protocol::json_text {

/// `"value"`, escaped. Invalid UTF-8 goes through nlohmann (U+FFFD replacements).
void append_string(std::string& out, std::string_view value);
void append_uint(std::string& out, std::uint64_t value);
/// A text-unicode op in the wire form: numbers skip, strings insert, `{"d":N}` / `{"d":"text"}` delete.
void append_op(std::string& out, const ot::op& operation);

}  // namespace otsync::protocol::json_text
