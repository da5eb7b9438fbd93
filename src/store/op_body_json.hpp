// The op log's storage encoding of op bodies: ShareDB's own JSON shapes,
// `{"op":[...]}`, `{"create":{"type":URI,"data":TEXT}}` and `{"del":true}`, so
// a database can be read with any JSON tool.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "otsync/oplog/op_record.hpp"
#include "otsync/ot/result.hpp"

namespace otsync::store::detail {

/// The JSON text of `body`; `invalid_argument` when it holds text that is not
/// valid UTF-8 (JSON cannot carry it).
ot::result<std::string> encode_op_body(const oplog::op_body& body);

/// Reads what `encode_op_body` wrote; `corrupt` for anything else.
ot::result<oplog::op_body> decode_op_body(std::string_view json);

}  // namespace otsync::store::detail
