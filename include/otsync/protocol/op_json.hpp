// JSON <-> text-unicode op conversion, at the protocol edge.
//
// Thread safety: all functions are pure.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "otsync/ot/op.hpp"
#include "otsync/ot/result.hpp"
#include "otsync/ot/text_unicode.hpp"

namespace otsync::protocol {

/// Reads an op as clients send it: numbers are skips, strings inserts, and
/// `{"d": N}` / `{"d": "text"}` deletes (other keys of a delete are ignored,
/// as in JS). Rejects what cannot be represented (non-arrays, null, booleans,
/// fractional or negative or too large numbers, objects without a numeric or
/// string `d`), then runs `ot::check`. When several components are bad, the
/// error is the one ot-text-unicode's checkOp would report first.
ot::result<ot::op> op_from_json(const nlohmann::json& value);

/// Like `op_from_json` without the final `ot::check`: for functions that
/// take unchecked ops (normalize, transform_position).
ot::result<ot::op> op_from_json_unchecked(const nlohmann::json& value);

/// Writes an op in the wire form.
nlohmann::json op_to_json(const ot::op& operation);

/// Reads a cursor position or an `[anchor, focus]` pair.
ot::result<ot::selection> selection_from_json(const nlohmann::json& value);

}  // namespace otsync::protocol
