// Ops as the Redis store keeps them in a document's list and publishes them
// on its channel: one JSON object with sorted keys, the ShareDB body (`op`,
// `create` or `del`) beside `seq`, `src`, `ts` and `v`, e.g.
// `{"op":[3,"x"],"seq":1,"src":"c1","ts":1700000000000,"v":4}`. These bytes
// are shared with other instances and with data already in Redis: they must
// not change.
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "otsync/oplog/op_record.hpp"

namespace otsync::redis {

/// The stored text of `op`, written in one pass; nullopt when it holds text
/// that is not valid UTF-8 (JSON cannot carry it).
std::optional<std::string> encode_stored_op(const oplog::op_record& op);

/// Reads what `encode_stored_op` wrote (bounded parse: the text may come from
/// anyone who can publish on the channel); nullopt for anything else.
std::optional<oplog::op_record> decode_stored_op(std::string_view text);

}  // namespace otsync::redis
